package loginpage

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
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// This file drives the page's JavaScript in headless Chromium against a
// stub of the auth API that answers per the contract with scripted
// responses. The end-to-end test against the real gateway lives elsewhere.

const (
	testPhone  = "+14155550100"
	testMasked = "+1***-***-0100"
)

type stubReply struct {
	status int
	body   string
	header map[string]string
	hangUp bool // drop the connection: a network error for fetch
}

func challenge(resendAfter int) stubReply {
	return stubReply{status: 200, body: fmt.Sprintf(
		`{"message_id":"msg-1","masked_phone":%q,"channel":"sms","expires_in":300,"resend_after":%d}`,
		testMasked, resendAfter)}
}

func apiError(status int, code, msg string) stubReply {
	return stubReply{status: status, body: fmt.Sprintf(`{"code":%d,"error_code":%q,"msg":%q}`, status, code, msg),
		header: map[string]string{"x-sb-error-code": code}}
}

type stubCall struct {
	path string
	body map[string]any
	// cookie is the session cookie the request carried; secFetchSite its
	// Sec-Fetch-Site header.
	cookie, secFetchSite string
}

// stubAPI fakes POST {prefix}/otp, /verify and /resend. Each path answers
// with its queued replies in order, then with a success.
type stubAPI struct {
	mu     sync.Mutex
	queued map[string][]stubReply
	calls  []stubCall
	appHit chan string // the session cookie seen by /app
}

func (s *stubAPI) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queued = map[string][]stubReply{}
	s.calls = nil
	s.appHit = make(chan string, 1)
}

func (s *stubAPI) queue(path string, replies ...stubReply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queued[path] = append(s.queued[path], replies...)
}

func (s *stubAPI) callsTo(path string) []stubCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []stubCall
	for _, c := range s.calls {
		if c.path == path {
			out = append(out, c)
		}
	}
	return out
}

// waitCalls polls until path saw n calls or d passed, and returns the
// count.
func (s *stubAPI) waitCalls(path string, n int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		got := len(s.callsTo(path))
		if got >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *stubAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, DefaultAPIPrefix)
	if path == "/logout" {
		s.serveLogout(w, r)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, `{"code":400,"error_code":"bad_json","msg":"want a JSON POST"}`, http.StatusBadRequest)
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, `{"code":400,"error_code":"bad_json","msg":"bad JSON"}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, stubCall{path: path, body: body})
	reply, ok := stubReply{}, false
	if q := s.queued[path]; len(q) > 0 {
		reply, ok, s.queued[path] = q[0], true, q[1:]
	}
	s.mu.Unlock()
	if !ok {
		switch path {
		case "/otp", "/resend":
			reply = challenge(30)
		case "/verify":
			// The real gateway sets __Host- cookies, which need https.
			http.SetCookie(w, &http.Cookie{Name: "otpgate-session", Value: "s3ss10n", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
			reply = stubReply{status: 200, body: `{"access_token":"never-read","token_type":"bearer","refresh_token":"nope","user":{}}`}
		default:
			reply = apiError(404, "not_found", "no such route")
		}
	}
	if reply.hangUp {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	}
	for k, v := range reply.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(reply.status)
	_, _ = w.Write([]byte(reply.body))
}

// serveLogout fakes POST {prefix}/logout: it takes no body, and answers
// 204 clearing the session cookie unless a reply is queued.
func (s *stubAPI) serveLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, `{"code":405,"error_code":"method_not_allowed","msg":"POST only"}`, http.StatusMethodNotAllowed)
		return
	}
	call := stubCall{path: "/logout", secFetchSite: r.Header.Get("Sec-Fetch-Site")}
	if c, err := r.Cookie("otpgate-session"); err == nil {
		call.cookie = c.Value
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	reply, ok := stubReply{}, false
	if q := s.queued["/logout"]; len(q) > 0 {
		reply, ok, s.queued["/logout"] = q[0], true, q[1:]
	}
	s.mu.Unlock()
	if !ok {
		http.SetCookie(w, &http.Cookie{Name: "otpgate-session", Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		w.WriteHeader(http.StatusNoContent)
		return
	}
	for k, v := range reply.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(reply.status)
	_, _ = w.Write([]byte(reply.body))
}

type fixture struct {
	browser context.Context
	srv     *httptest.Server
	api     *stubAPI
}

// noAccessPrefix is where the fixture's site refuses every session with
// the no-access page, as the gate does for a site whose roles the user
// lacks.
const noAccessPrefix = "/admin/"

func newFixture(t *testing.T) *fixture {
	return newFixtureWith(t, Options{AppName: "Acme"})
}

// newFixtureWith serves a page made with o.
func newFixtureWith(t *testing.T, o Options) *fixture {
	page := newPage(t, o)
	api := &stubAPI{}
	api.reset()
	mux := http.NewServeMux()
	mux.Handle("GET "+DefaultLoginPath, page)
	mux.Handle(DefaultAPIPrefix+"/", api)
	mux.HandleFunc("GET /app", func(w http.ResponseWriter, r *http.Request) {
		cookie := ""
		if c, err := r.Cookie("otpgate-session"); err == nil {
			cookie = c.Value
		}
		select {
		case api.appHit <- cookie:
		default:
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>App</title><p id="welcome">Welcome</p>`)
	})
	mux.HandleFunc("GET "+noAccessPrefix, func(w http.ResponseWriter, r *http.Request) {
		page.RenderNoAccess(w, r, testMasked, r.URL.RequestURI())
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Home</title><p id="home">Home</p>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{browser: testenv.Chromium(t), srv: srv, api: api}
}

// tab opens a fresh tab on the login page (reset stub, recording on) and
// checks at the end of the test that nothing left the origin and the page
// logged no error (such as a CSP violation).
func (f *fixture) tab(t *testing.T, query string) context.Context {
	t.Helper()
	return f.tabAs(t, query, visitor{})
}

// visitor is how the browser of a tab presents itself.
type visitor struct {
	// languages is its Accept-Language ("fr-FR,fr"); "" leaves
	// Chromium's own (en-US).
	languages string
	// dark asks for prefers-color-scheme: dark.
	dark bool
}

// tabAs is tab for a browser that presents itself as v.
func (f *fixture) tabAs(t *testing.T, query string, v visitor) context.Context {
	t.Helper()
	f.api.reset()
	ctx, cancel := chromedp.NewContext(f.browser)
	t.Cleanup(cancel)
	log := testenv.RecordPage(t, ctx)
	t.Cleanup(func() {
		log.AssertSameOrigin(t, f.srv.URL)
		log.AssertNoErrors(t)
	})
	present(t, ctx, v)
	do(t, ctx, chromedp.Navigate(f.srv.URL+DefaultLoginPath+query), chromedp.WaitVisible(chromedp.ID("phone")))
	return ctx
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// waitFor waits until the JavaScript expression is truthy.
func waitFor(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](
			`"error=" + JSON.stringify(document.getElementById("error").textContent) +
			 " status=" + JSON.stringify(document.getElementById("status").textContent) +
			 " focus=" + (document.activeElement && document.activeElement.id)`))
		t.Fatalf("waiting for %s: %v (%s)", what, err, state)
	}
}

func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	return js[string](t, ctx, fmt.Sprintf(`document.getElementById(%q).textContent`, id))
}

func waitErrorContains(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	waitFor(t, ctx, "#error to say "+want,
		fmt.Sprintf(`document.getElementById("error").textContent.includes(%q)`, want))
}

// toCodeStep types the phone number and sends it; the stub answers with
// the given challenge.
func toCodeStep(t *testing.T, ctx context.Context, f *fixture, reply stubReply) {
	t.Helper()
	f.api.queue("/otp", reply)
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("phone"), "+1 415 555 0100"),
		chromedp.Click(chromedp.ID("send")),
		chromedp.WaitVisible(chromedp.ID("code-0")),
	)
	waitFor(t, ctx, "focus on the first code box", `document.activeElement.id === "code-0"`)
}

const pasteJS = `(() => {
	const dt = new DataTransfer();
	dt.setData("text/plain", %q);
	const el = document.getElementById(%q);
	el.focus();
	return el.dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt, bubbles: true, cancelable: true}));
})()`

func TestLoginPage_Browser(t *testing.T) {
	f := newFixture(t)

	t.Run("PhoneStep_SendsE164_ShowsMaskedPhone", func(t *testing.T) {
		ctx := f.tab(t, "")
		if got := js[string](t, ctx, `document.activeElement.id`); got != "phone" {
			t.Errorf("focus on load: %q, want phone", got)
		}
		testenv.Screenshot(t, ctx, "", "phone-step")
		toCodeStep(t, ctx, f, challenge(30))

		calls := f.api.callsTo("/otp")
		if len(calls) != 1 || len(calls[0].body) != 2 || calls[0].body["phone"] != testPhone || calls[0].body["language"] != "en" {
			t.Fatalf("/otp calls: %+v, want one with only phone %s and language en", calls, testPhone)
		}
		if got := text(t, ctx, "masked-phone"); got != testMasked {
			t.Errorf("#masked-phone = %q, want %q", got, testMasked)
		}
		if got := text(t, ctx, "code-hint"); !strings.Contains(got, "If this number has access, a code is on its way to "+testMasked+".") {
			t.Errorf("code hint = %q", got)
		}
		if js[bool](t, ctx, `document.getElementById("phone-step").hidden`) != true {
			t.Error("phone step still shown")
		}
		testenv.Screenshot(t, ctx, "", "code-step")
	})

	t.Run("PhoneStep_RefusesNationalNumberWithoutCountry", func(t *testing.T) {
		// en-US, and the US is not offered: no country is chosen.
		f := newFixtureWith(t, Options{AppName: "Acme", Countries: []string{"GB", "DE"}})
		ctx := f.tab(t, "")
		if got := text(t, ctx, "country-code"); got != "Country" {
			t.Errorf("country button shows %q, want no country", got)
		}
		do(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), "415 555 0100"), chromedp.KeyEvent(kb.Enter))
		waitErrorContains(t, ctx, "country code")
		if n := len(f.api.callsTo("/otp")); n != 0 {
			t.Errorf("%d /otp calls for an invalid number, want 0", n)
		}
		if got := js[string](t, ctx, `document.getElementById("phone").getAttribute("aria-invalid")`); got != "true" {
			t.Errorf("aria-invalid = %q", got)
		}
	})

	t.Run("PhoneStep_ErrorsAreHuman", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			reply stubReply
			want  string
		}{
			{"send failed", apiError(502, "sms_send_failed", "plivo said no"), "We couldn't send the code. Try again in a moment."},
			{"provider timeout", apiError(504, "provider_timeout", "slow"), "We couldn't send the code. Try again in a moment."},
			{"opted out", apiError(403, "phone_opted_out", "opted out"), "Text START"},
			{"not allowed", apiError(403, "phone_not_allowed", "Numbers in this country are not allowed."), "This phone number can't be used to sign in."},
			{"validation", apiError(400, "validation_failed", "Phone number is not valid."), "Check the number"},
			{"network", stubReply{hangUp: true}, "couldn't reach the server"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := f.tab(t, "")
				// Chromium retries a POST once when a reused connection
				// drops, so a hang-up must happen more than once.
				f.api.queue("/otp", tc.reply, tc.reply, tc.reply)
				do(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), "+14155550100"), chromedp.Click(chromedp.ID("send")))
				waitErrorContains(t, ctx, tc.want)
				if js[bool](t, ctx, `document.getElementById("code-step").hidden`) != true {
					t.Error("moved to the code step after an error")
				}
			})
		}
	})

	t.Run("PhoneStep_RateLimited_ShowsTimeLeft", func(t *testing.T) {
		ctx := f.tab(t, "")
		limited := apiError(429, "over_sms_send_rate_limit", "too many")
		limited.header["Retry-After"] = "42"
		f.api.queue("/otp", limited)
		do(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), "+14155550100"), chromedp.Click(chromedp.ID("send")))
		waitErrorContains(t, ctx, "Too many codes requested. Try again in ")
		if got := text(t, ctx, "retry-seconds"); got == "" || strings.Trim(got, "0123456789") != "" {
			t.Errorf("seconds left = %q, want a number", got)
		}
		if !js[bool](t, ctx, `document.getElementById("send").disabled`) {
			t.Error("#send enabled while rate limited")
		}
		testenv.Screenshot(t, ctx, "", "rate-limited")
	})

	t.Run("CodeStep_DigitByDigit_AutoSubmits_WrongCodeClears", func(t *testing.T) {
		ctx := f.tab(t, "")
		toCodeStep(t, ctx, f, challenge(30))
		f.api.queue("/verify", apiError(403, "otp_expired", "Token has expired or is invalid"))

		do(t, ctx, chromedp.SendKeys(chromedp.ID("code-0"), "123456"))
		waitErrorContains(t, ctx, "That code is wrong or has expired. Check it or request a new one.")
		calls := f.api.callsTo("/verify")
		if len(calls) != 1 {
			t.Fatalf("/verify calls: %d, want 1 (auto-submit once)", len(calls))
		}
		if b := calls[0].body; b["type"] != "sms" || b["phone"] != testPhone || b["token"] != "123456" {
			t.Errorf("/verify body = %v", b)
		}
		waitFor(t, ctx, "cleared boxes and focus on the first",
			`[...document.querySelectorAll(".digits input")].every(b => b.value === "") && document.activeElement.id === "code-0"`)
		testenv.Screenshot(t, ctx, "", "wrong-code")
	})

	t.Run("CodeStep_AutoAdvanceAndBackspace", func(t *testing.T) {
		ctx := f.tab(t, "")
		toCodeStep(t, ctx, f, challenge(30))
		do(t, ctx, chromedp.SendKeys(chromedp.ID("code-0"), "12"))
		waitFor(t, ctx, "focus on box 3", `document.activeElement.id === "code-2"`)
		do(t, ctx, chromedp.KeyEvent(kb.Backspace))
		waitFor(t, ctx, "backspace to box 2, clearing it",
			`document.activeElement.id === "code-1" && document.getElementById("code-1").value === "" && document.getElementById("code-0").value === "1"`)
		do(t, ctx, chromedp.KeyEvent("7"))
		if got := js[string](t, ctx, `document.getElementById("code-0").value + document.getElementById("code-1").value`); got != "17" {
			t.Errorf("boxes = %q, want 17", got)
		}
		if n := len(f.api.callsTo("/verify")); n != 0 {
			t.Errorf("%d /verify calls before the code is complete", n)
		}
	})

	t.Run("CodeStep_PasteWholeCode_SignsInAndReturns", func(t *testing.T) {
		ctx := f.tab(t, "?return_to=%2Fapp%3Fx%3D1")
		toCodeStep(t, ctx, f, challenge(30))
		// Paste into a middle box, with the words and spaces of an SMS.
		if notCancelled := js[bool](t, ctx, fmt.Sprintf(pasteJS, "Your code: 654 321", "code-3")); notCancelled {
			t.Error("the page let the browser paste the raw text")
		}
		var cookie string
		select {
		case cookie = <-f.api.appHit:
		case <-time.After(10 * time.Second):
			t.Fatalf("never reached /app; /verify calls: %+v", f.api.callsTo("/verify"))
		}
		do(t, ctx, chromedp.WaitVisible(chromedp.ID("welcome")))
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		if loc != f.srv.URL+"/app?x=1" {
			t.Errorf("location = %s, want %s/app?x=1", loc, f.srv.URL)
		}
		if cookie != "s3ss10n" {
			t.Errorf("/app got session cookie %q", cookie)
		}
		calls := f.api.callsTo("/verify")
		if len(calls) != 1 || calls[0].body["token"] != "654321" {
			t.Errorf("/verify calls = %+v, want one with token 654321", calls)
		}
		if strings.Contains(loc, "token") || strings.Contains(loc, "never-read") {
			t.Errorf("token in the URL: %s", loc)
		}
		if n := js[int](t, ctx, `localStorage.length + sessionStorage.length`); n != 0 {
			t.Errorf("page stored %d items in web storage", n)
		}
		testenv.Screenshot(t, ctx, "", "returned")
	})

	t.Run("CodeStep_UnsafeReturnToGoesHome", func(t *testing.T) {
		ctx := f.tab(t, "?return_to=%2F%2Fevil.example%2F")
		toCodeStep(t, ctx, f, challenge(30))
		js[bool](t, ctx, fmt.Sprintf(pasteJS, "123456", "code-0"))
		do(t, ctx, chromedp.WaitVisible(chromedp.ID("home")))
		if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != f.srv.URL+"/" {
			t.Errorf("location = %s, want %s/", loc, f.srv.URL)
		}
	})

	t.Run("CodeStep_ResendCountdown", func(t *testing.T) {
		ctx := f.tab(t, "")
		// Record what the countdown showed, and whether resend was disabled
		// then, so nothing below depends on how fast the test runs.
		js[bool](t, ctx, `(() => {
			const c = document.getElementById("countdown"), r = document.getElementById("resend");
			window.seen = [];
			new MutationObserver(() => seen.push({text: c.textContent, disabled: r.disabled}))
				.observe(c, {childList: true, characterData: true, subtree: true});
			return true;
		})()`)
		toCodeStep(t, ctx, f, challenge(1))
		do(t, ctx, chromedp.WaitEnabled(chromedp.ID("resend")))
		if !js[bool](t, ctx, `seen.some(s => s.text === "Resend code in 1s" && s.disabled)`) {
			t.Errorf("never showed 'Resend code in 1s' with resend disabled; saw %s", js[string](t, ctx, `JSON.stringify(seen)`))
		}
		if got := text(t, ctx, "countdown"); got != "" {
			t.Errorf("#countdown = %q after it ended", got)
		}

		f.api.queue("/resend", challenge(30))
		do(t, ctx, chromedp.Click(chromedp.ID("resend")))
		waitFor(t, ctx, "a new countdown", `/^Resend code in [0-9]+s$/.test(document.getElementById("countdown").textContent)`)
		if !js[bool](t, ctx, `document.getElementById("resend").disabled`) {
			t.Error("#resend enabled after a resend")
		}
		calls := f.api.callsTo("/resend")
		if len(calls) != 1 || calls[0].body["type"] != "sms" || calls[0].body["phone"] != testPhone || calls[0].body["language"] != "en" || len(calls[0].body) != 3 {
			t.Errorf("/resend calls = %+v", calls)
		}
		testenv.Screenshot(t, ctx, "", "resent")
	})

	t.Run("CodeStep_ResendAfterZero_EnabledAtOnce", func(t *testing.T) {
		ctx := f.tab(t, "")
		toCodeStep(t, ctx, f, challenge(0))
		if js[bool](t, ctx, `document.getElementById("resend").disabled`) {
			t.Error("#resend disabled with resend_after 0")
		}
	})

	t.Run("CodeStep_ResendRateLimited", func(t *testing.T) {
		ctx := f.tab(t, "")
		toCodeStep(t, ctx, f, challenge(0))
		limited := apiError(429, "over_request_rate_limit", "slow down")
		limited.header["Retry-After"] = "120"
		f.api.queue("/resend", limited)
		do(t, ctx, chromedp.Click(chromedp.ID("resend")))
		waitErrorContains(t, ctx, "Try again in")
		if !js[bool](t, ctx, `document.getElementById("resend").disabled`) {
			t.Error("#resend enabled while rate limited")
		}
	})

	t.Run("CodeStep_UseDifferentNumber", func(t *testing.T) {
		ctx := f.tab(t, "")
		toCodeStep(t, ctx, f, challenge(30))
		do(t, ctx, chromedp.Click(chromedp.ID("change-number")))
		waitFor(t, ctx, "the phone step, focused",
			`!document.getElementById("phone-step").hidden && document.getElementById("code-step").hidden && document.activeElement.id === "phone"`)
		if got := text(t, ctx, "countdown"); got != "" {
			t.Errorf("#countdown = %q after leaving the code step", got)
		}
	})

	t.Run("Layout_Phone", func(t *testing.T) {
		ctx := f.tab(t, "")
		do(t, ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch), chromedp.Reload(),
			chromedp.WaitVisible(chromedp.ID("phone")))
		if w := js[int](t, ctx, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("page scrolls sideways on a phone: width %d", w)
		}
		testenv.Screenshot(t, ctx, "", "phone-step-mobile")
		toCodeStep(t, ctx, f, challenge(30))
		if w := js[int](t, ctx, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("code step scrolls sideways on a phone: width %d", w)
		}
		testenv.Screenshot(t, ctx, "", "code-step-mobile")
	})

	// Pasting the whole SMS takes the code, even when the app name has
	// digits ("Your 23andMe code is 654321"), not the text's first six
	// digits.
	t.Run("CodeStep_PasteWholeSMS_TakesCodeNotAppNameDigits", func(t *testing.T) {
		ctx := f.tab(t, "")
		toCodeStep(t, ctx, f, challenge(30))
		f.api.queue("/verify", apiError(403, "otp_expired", "Token has expired or is invalid."))
		js[bool](t, ctx, fmt.Sprintf(pasteJS, "Your 23andMe code is 654321", "code-0"))
		if n := f.api.waitCalls("/verify", 1, 5*time.Second); n != 1 {
			t.Fatalf("/verify calls %d", n)
		}
		if got := f.api.callsTo("/verify")[0].body["token"]; got != "654321" {
			t.Errorf("token sent = %v, want 654321", got)
		}
	})

	// While resends are rate limited (429 with Retry-After), a wrong code's
	// error keeps the time left and Resend stays disabled.
	t.Run("CodeStep_ResendRateLimited_WrongCodeKeepsTimeLeft", func(t *testing.T) {
		ctx := f.tab(t, "")
		toCodeStep(t, ctx, f, challenge(0))
		limited := apiError(429, "over_sms_send_rate_limit", "Too many codes were sent to this number. Try again in 120 seconds.")
		limited.header["Retry-After"] = "120"
		f.api.queue("/resend", limited)
		do(t, ctx, chromedp.Click(chromedp.ID("resend")))
		waitErrorContains(t, ctx, "Try again in")
		f.api.queue("/verify", apiError(403, "otp_expired", "Token has expired or is invalid."))
		do(t, ctx, chromedp.Focus(chromedp.ID("code-0")), chromedp.SendKeys(chromedp.ID("code-0"), "111111"))
		waitErrorContains(t, ctx, "That code is wrong")
		if !js[bool](t, ctx, `document.getElementById("resend").disabled`) {
			t.Error("#resend enabled again while the server still refuses resends for ~120 s")
		}
	})

	// over_sms_send_rate_limit is per phone: after a mistyped number hits
	// it, the person can still send to the right number.
	t.Run("PhoneStep_RateLimited_OtherNumberStillSends", func(t *testing.T) {
		ctx := f.tab(t, "")
		limited := apiError(429, "over_sms_send_rate_limit", "Too many codes were sent to this number. Try again in 300 seconds.")
		limited.header["Retry-After"] = "300"
		f.api.queue("/otp", limited)
		do(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), "+14155550100"), chromedp.Click(chromedp.ID("send")))
		waitErrorContains(t, ctx, "Try again in")
		js[bool](t, ctx, `(() => { const p = document.getElementById("phone"); p.value = ""; p.focus(); return true; })()`)
		do(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), "+442071838750"), chromedp.KeyEvent(kb.Enter))
		if n := f.api.waitCalls("/otp", 2, 3*time.Second); n != 2 {
			t.Errorf("/otp calls = %d after changing the number, want 2 (per-phone limit blocks every number)", n)
		}
	})

	// When Resend becomes available, a live region says so for
	// screen-reader users.
	t.Run("CodeStep_ResendAvailable_Announced", func(t *testing.T) {
		ctx := f.tab(t, "")
		toCodeStep(t, ctx, f, challenge(1))
		do(t, ctx, chromedp.WaitEnabled(chromedp.ID("resend")))
		live := js[string](t, ctx, `[...document.querySelectorAll("[aria-live],[role=status],[role=alert]")].map(e => e.textContent).join(" ")`)
		if !strings.Contains(strings.ToLower(live), "code") {
			t.Errorf("no live-region announcement when resend became available (live text %q)", live)
		}
	})

	// Every error_code of the contract (and unknown ones, and non-JSON
	// bodies) gives a human sentence, never a raw code, and keeps the
	// person on the phone step with focus in the phone field.
	t.Run("PhoneStep_EveryErrorCode_HumanSentenceFocusOnPhone", func(t *testing.T) {
		for _, tc := range []struct {
			status int
			code   string
			msg    string
		}{
			{400, "validation_failed", ""}, {400, "bad_json", ""}, {413, "request_too_large", ""},
			{400, "captcha_failed", ""}, {403, "phone_not_allowed", ""}, {429, "over_request_rate_limit", ""},
			{403, "phone_opted_out", ""}, {502, "sms_send_failed", ""}, {504, "provider_timeout", ""},
			{503, "store_unavailable", ""}, {403, "cross_site_request", ""}, {500, "unexpected_failure", ""},
			{418, "brand_new_code", ""},
		} {
			t.Run(tc.code, func(t *testing.T) {
				ctx := f.tab(t, "")
				f.api.queue("/otp", apiError(tc.status, tc.code, tc.msg))
				do(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), "+14155550100"), chromedp.Click(chromedp.ID("send")))
				waitFor(t, ctx, "an error", `document.getElementById("error").textContent.length > 10`)
				got := text(t, ctx, "error")
				if strings.Contains(got, tc.code) || strings.Contains(got, "_") {
					t.Errorf("error shows a raw code: %q", got)
				}
				if js[string](t, ctx, `document.activeElement.id`) != "phone" {
					t.Error("focus not back in #phone")
				}
			})
		}
		t.Run("non-JSON 502", func(t *testing.T) {
			ctx := f.tab(t, "")
			f.api.queue("/otp", stubReply{status: 502, body: "<html>Bad Gateway</html>"})
			do(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), "+14155550100"), chromedp.Click(chromedp.ID("send")))
			waitErrorContains(t, ctx, "Something went wrong")
		})
	})
}

// A signed-in person on a site their account may not use sees whom they
// are signed in as and, with "Use a different number" (by mouse or by
// keyboard), is signed out and brought to the login page, which returns
// to the refused page after the next sign-in.
func TestNoAccessPage_Browser(t *testing.T) {
	f := newFixture(t)
	const refused = "/admin/reports?x=1&y=2"

	// toNoAccess signs in through the login page (the stub's /verify sets
	// an HttpOnly session cookie) and lands on the refused page.
	toNoAccess := func(t *testing.T) context.Context {
		t.Helper()
		ctx := f.tab(t, "?return_to="+url.QueryEscape(refused))
		toCodeStep(t, ctx, f, challenge(30))
		js[bool](t, ctx, fmt.Sprintf(pasteJS, "123456", "code-0"))
		do(t, ctx, chromedp.WaitVisible(chromedp.ID("change-number")))
		waitFor(t, ctx, "the no-access page", `document.getElementById("otpgate-noaccess") !== null`)
		if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != f.srv.URL+refused {
			t.Fatalf("location = %s, want %s", loc, f.srv.URL+refused)
		}
		return ctx
	}

	checkLoggedOutToLogin := func(t *testing.T, ctx context.Context) {
		t.Helper()
		do(t, ctx, chromedp.WaitVisible(chromedp.ID("phone")))
		want := f.srv.URL + DefaultLoginPath + "?return_to=" + url.QueryEscape(refused)
		if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != want {
			t.Errorf("location = %s, want %s", loc, want)
		}
		if got := js[string](t, ctx, `document.getElementById("otpgate").getAttribute("data-return-to")`); got != refused {
			t.Errorf("login page data-return-to = %q, want %q", got, refused)
		}
		calls := f.api.callsTo("/logout")
		if len(calls) != 1 {
			t.Fatalf("/logout calls = %d, want 1", len(calls))
		}
		if calls[0].cookie != "s3ss10n" {
			t.Errorf("/logout carried session cookie %q, want the HttpOnly session", calls[0].cookie)
		}
		if calls[0].secFetchSite != "same-origin" {
			t.Errorf("/logout Sec-Fetch-Site = %q, want same-origin", calls[0].secFetchSite)
		}
		// The cookie the server cleared is gone: the next page sees none.
		select {
		case <-f.api.appHit:
		default:
		}
		do(t, ctx, chromedp.Navigate(f.srv.URL+"/app"), chromedp.WaitVisible(chromedp.ID("welcome")))
		select {
		case cookie := <-f.api.appHit:
			if cookie != "" {
				t.Errorf("session cookie %q still sent after logout", cookie)
			}
		case <-time.After(5 * time.Second):
			t.Error("never reached /app")
		}
	}

	t.Run("ShowsMaskedPhone_ButtonLogsOutToLogin", func(t *testing.T) {
		ctx := toNoAccess(t)
		if got := text(t, ctx, "masked-phone"); got != testMasked {
			t.Errorf("#masked-phone = %q, want %q", got, testMasked)
		}
		msg := strings.Join(strings.Fields(text(t, ctx, "no-access-message")), " ")
		if want := "You're signed in as " + testMasked + ", and this account has no access to this site."; msg != want {
			t.Errorf("message = %q, want %q", msg, want)
		}
		if got := js[string](t, ctx, `document.querySelector("h1").textContent`); got != "No access to Acme" {
			t.Errorf("heading = %q", got)
		}
		if got := js[string](t, ctx, `(b => b.tagName + " " + b.type + " " + b.textContent)(document.getElementById("change-number"))`); got != "BUTTON button Use a different number" {
			t.Errorf("change-number = %q, want a real button", got)
		}
		testenv.Screenshot(t, ctx, "", "no-access")
		do(t, ctx, chromedp.Click(chromedp.ID("change-number")))
		checkLoggedOutToLogin(t, ctx)
	})

	t.Run("Keyboard", func(t *testing.T) {
		ctx := toNoAccess(t)
		// Tab reaches the button; Enter activates it.
		do(t, ctx, chromedp.KeyEvent(kb.Tab))
		waitFor(t, ctx, "focus on the button", `document.activeElement.id === "change-number"`)
		do(t, ctx, chromedp.KeyEvent(kb.Enter))
		checkLoggedOutToLogin(t, ctx)
	})

	t.Run("LogoutFails_StaysAndSaysSo", func(t *testing.T) {
		ctx := toNoAccess(t)
		f.api.queue("/logout", apiError(503, "store_unavailable", "down"))
		do(t, ctx, chromedp.Click(chromedp.ID("change-number")))
		waitErrorContains(t, ctx, "Try again shortly")
		if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != f.srv.URL+refused {
			t.Errorf("left the page after a failed logout: %s", loc)
		}
		waitFor(t, ctx, "the button enabled and focused again",
			`!document.getElementById("change-number").disabled && document.activeElement.id === "change-number"`)
		// A second try that works goes on to the login page.
		do(t, ctx, chromedp.Click(chromedp.ID("change-number")))
		do(t, ctx, chromedp.WaitVisible(chromedp.ID("phone")))
		if n := len(f.api.callsTo("/logout")); n != 2 {
			t.Errorf("/logout calls = %d, want 2", n)
		}
	})
}
