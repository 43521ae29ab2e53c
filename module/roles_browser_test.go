package otpgate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// rolesUpstream echoes the path and headers it received as JSON, and
// records the paths (but /favicon.ico, which Chromium asks for on its own
// schedule after showing the JSON), so a test can tell that a refused
// request never reached it.
type rolesUpstream struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
}

func newRolesUpstream(t *testing.T) *rolesUpstream {
	u := &rolesUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/favicon.ico" {
			u.mu.Lock()
			u.paths = append(u.paths, r.URL.RequestURI())
			u.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.RequestURI(), "headers": r.Header})
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *rolesUpstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.paths...)
}

// documentStatuses records the HTTP status of every page the tab loads,
// by URL, latest last.
type documentStatuses struct {
	mu     sync.Mutex
	status map[string][]int64
}

func recordDocumentStatuses(t *testing.T, ctx context.Context) *documentStatuses {
	t.Helper()
	d := &documentStatuses{status: map[string][]int64{}}
	if err := chromedp.Listen(ctx, func(ev any) {
		if ev, ok := ev.(*network.EventResponseReceived); ok && ev.Type == network.ResourceTypeDocument {
			d.mu.Lock()
			d.status[ev.Response.URL] = append(d.status[ev.Response.URL], ev.Response.Status)
			d.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("listen: %v", err)
	}
	return d
}

func (d *documentStatuses) last(u string) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.status[u]
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}

// signInThroughLoginPage types phone and code on the login page the tab
// is on; the page submits the code by itself on its last digit.
func signInThroughLoginPage(t *testing.T, ctx context.Context, phone, code, masked string) {
	t.Helper()
	run(t, ctx, chromedp.WaitVisible(chromedp.ID("phone")),
		chromedp.SendKeys(chromedp.ID("phone"), phone), chromedp.Click(chromedp.ID("send")),
		chromedp.WaitVisible(chromedp.ID("code-0")))
	if got := eval[string](t, ctx, `document.getElementById("masked-phone").textContent`); got != masked {
		t.Fatalf("code step shows %q, want %q", got, masked)
	}
	typeDigits(t, ctx, code)
}

// A site with `roles admin` refuses a signed-in user who lacks the role
// with the no-access page, which names the user's masked phone; "Use a
// different number" signs out and opens that site's login page, and a
// user holding the role then gets through to the upstream. The phones are
// test phones (nothing is sent), listed in `users` to give them roles;
// signup is closed, so only listed phones sign in at all.
func TestBrowser_RolesSite_NoAccessPage_UseDifferentNumber(t *testing.T) {
	const (
		viewer, viewerCode, viewerMasked = "+12015550100", "111111", "+1***-***-0100"
		admin, adminCode                 = "+12015550101", "222222"
	)
	appUp, adminUp := newRolesUpstream(t), newRolesUpstream(t)
	appPort, adminPort := testenv.FreePort(t), testenv.FreePort(t)
	cfg := fmt.Sprintf(`{
	storage file_system %s
	admin off
	auto_https off
	otpgate {
		store memory
		sms console
		signup closed
		test_phone %s %s
		test_phone %s %s
		users {
			%s viewer
			%s admin ops
		}
	}
}

http://127.0.0.1:%d {
	otpgate {
		app_name "Acme"
	}
	reverse_proxy %s
}

http://127.0.0.1:%d {
	otpgate {
		app_name "Acme Admin"
		roles admin
	}
	reverse_proxy %s
}
`, t.TempDir(), viewer, viewerCode, admin, adminCode, viewer, admin,
		appPort, strings.TrimPrefix(appUp.URL, "http://"),
		adminPort, strings.TrimPrefix(adminUp.URL, "http://"))
	testenv.LoadCaddyfile(t, cfg)
	// Two sites of one host: cookies are scoped to the host, not the
	// port, so a session started on one is presented to the other, as
	// with one site and a path-restricted handler or cookie_domain.
	appBase := fmt.Sprintf("http://127.0.0.1:%d", appPort)
	adminBase := fmt.Sprintf("http://127.0.0.1:%d", adminPort)

	ctx, cancel := chromedp.NewContext(testenv.Chromium(t))
	defer cancel()
	log := testenv.RecordPage(t, ctx)
	docs := recordDocumentStatuses(t, ctx)
	dir := testenv.ScreenshotDir(t)

	// 1. A listed phone without the admin role signs in on the open site.
	run(t, ctx, chromedp.Navigate(appBase+"/home"))
	signInThroughLoginPage(t, ctx, "+1 201 555 0100", viewerCode, viewerMasked)
	waitJS(t, ctx, fmt.Sprintf(`location.href === %q`, appBase+"/home"))
	if body := eval[string](t, ctx, `document.body.innerText`); !strings.Contains(body, `"X-Auth-Phone":["`+viewer+`"]`) ||
		!strings.Contains(body, `"X-Auth-Roles":["viewer"]`) {
		t.Fatalf("the open site's upstream did not see the viewer: %s", body)
	}

	// 2. On the admin site the same session is refused with the
	// no-access page, and the upstream never sees the request.
	const refused = "/reports?x=1&y=2"
	run(t, ctx, chromedp.Navigate(adminBase+refused))
	waitJS(t, ctx, `document.getElementById("otpgate-noaccess") !== null`)
	if st := docs.last(adminBase + refused); st != http.StatusForbidden {
		t.Errorf("admin site answered the viewer with %d, want 403", st)
	}
	if got := eval[string](t, ctx, `document.getElementById("masked-phone").textContent`); got != viewerMasked {
		t.Errorf("no-access page names %q, want %q", got, viewerMasked)
	}
	msg := strings.Join(strings.Fields(eval[string](t, ctx, `document.getElementById("no-access-message").textContent`)), " ")
	if !strings.Contains(msg, "signed in as "+viewerMasked) || !strings.Contains(msg, "no access to this site") {
		t.Errorf("no-access message = %q", msg)
	}
	if h1 := eval[string](t, ctx, `document.querySelector("h1").textContent`); h1 != "No access to Acme Admin" {
		t.Errorf("heading = %q", h1)
	}
	testenv.Screenshot(t, ctx, dir, "roles-1-no-access")
	if seen := adminUp.seen(); len(seen) != 0 {
		t.Errorf("the admin upstream was reached by a user without the role: %v", seen)
	}

	// 3. "Use a different number" signs out and opens the admin site's
	// login page, which will return to the refused page.
	run(t, ctx, chromedp.Click(chromedp.ID("change-number")))
	wantLogin := adminBase + "/auth/login?return_to=" + url.QueryEscape(refused)
	waitJS(t, ctx, fmt.Sprintf(`location.href === %q && document.getElementById("phone") !== null`, wantLogin))
	if rt := eval[string](t, ctx, `document.getElementById("otpgate").getAttribute("data-return-to")`); rt != refused {
		t.Errorf("login page return_to = %q, want %q", rt, refused)
	}
	// Signed out: the open site sends the browser to its login page again.
	// (Checked in a second tab of the same browser, sharing its cookies,
	// so this tab stays on the login page.)
	other, cancelOther := chromedp.NewContext(ctx)
	defer cancelOther()
	run(t, other, chromedp.Navigate(appBase+"/home"))
	waitJS(t, other, `document.getElementById("phone") !== null`)
	if loc := location(t, other); !strings.HasPrefix(loc, appBase+"/auth/login?return_to=") {
		t.Errorf("after signing out, the open site served %s instead of its login page", loc)
	}
	cancelOther()
	testenv.Screenshot(t, ctx, dir, "roles-2-login-after-sign-out")

	// 4. A listed phone holding admin signs in there and reaches the
	// admin upstream, on the page first refused.
	signInThroughLoginPage(t, ctx, "+1 201 555 0101", adminCode, "+1***-***-0101")
	waitJS(t, ctx, fmt.Sprintf(`location.href === %q`, adminBase+refused))
	body := eval[string](t, ctx, `document.body.innerText`)
	if !strings.Contains(body, `"X-Auth-Phone":["`+admin+`"]`) || !strings.Contains(body, `"X-Auth-Roles":["admin,ops"]`) {
		t.Fatalf("the admin upstream did not see the admin: %s", body)
	}
	if st := docs.last(adminBase + refused); st != http.StatusOK {
		t.Errorf("admin site answered the admin with %d, want 200", st)
	}
	if seen := adminUp.seen(); len(seen) != 1 || seen[0] != refused {
		t.Errorf("admin upstream saw %v, want exactly %s", seen, refused)
	}
	testenv.Screenshot(t, ctx, dir, "roles-3-admin-through")

	for _, u := range log.Requests() {
		if !strings.HasPrefix(u, appBase+"/") && !strings.HasPrefix(u, adminBase+"/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("request left the two test sites: %s", u)
		}
	}
	log.AssertNoErrors(t)
}
