package gateway

import (
	"bufio"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestStripIdentityHeaders_AllSpellings(t *testing.T) {
	h := http.Header{}
	for _, n := range []string{"X-Auth-User-Id", "X_Auth_User_Id", "x_auth_phone", "X-AUTH-SESSION-ID", "X-Auth_Session-Id"} {
		h[n] = []string{"spoofed"}
	}
	h["X-Auth-Other"] = []string{"kept"}
	h["Accept"] = []string{"kept"}
	stripIdentityHeaders(h)
	if len(h) != 2 || h.Get("X-Auth-Other") != "kept" || h.Get("Accept") != "kept" {
		t.Fatalf("left %v", h)
	}
}

func TestStripIdentityHeaders_NoAllocations(t *testing.T) {
	h := http.Header{"Accept": {"*/*"}, "User-Agent": {"x"}, "Authorization": {"Bearer x"}}
	if n := testing.AllocsPerRun(100, func() { stripIdentityHeaders(h) }); n != 0 {
		t.Fatalf("%v allocs per request", n)
	}
}

func TestCheckDuplicateKeys(t *testing.T) {
	ok := []string{`{}`, `{"a":{},"b":{}}`, `{"data":{},"gotrue_meta_security":{}}`, `{"a":[{"x":1},{"x":1}]}`, `{"a":{"a":1}}`}
	bad := []string{`{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `{"a":[{"x":1,"x":2}]}`}
	for _, s := range ok {
		if err := checkDuplicateKeys([]byte(s)); err != nil {
			t.Errorf("%s refused: %v", s, err)
		}
	}
	for _, s := range bad {
		if err := checkDuplicateKeys([]byte(s)); err == nil {
			t.Errorf("%s accepted", s)
		}
	}
}

func TestStripSessionCookies_UpstreamNeverSeesTokens(t *testing.T) {
	h := http.Header{"Cookie": {"theme=dark; __Host-otpgate-access=eyJ.a.b; __Host-otpgate-refresh=k.s", "otpgate-refresh=x; lang=en"}}
	stripSessionCookies(h)
	if got := h.Get("Cookie"); got != "theme=dark; lang=en" {
		t.Fatalf("Cookie = %q", got)
	}
	h = http.Header{"Cookie": {"__Host-otpgate-access=a"}}
	stripSessionCookies(h)
	if _, ok := h["Cookie"]; ok {
		t.Fatal("empty Cookie header kept")
	}
}

func TestIPLimitKey_IPv6CountedPer64(t *testing.T) {
	a, b := ipLimitKey("2001:db8:1:2:aaaa::1"), ipLimitKey("2001:db8:1:2:bbbb::9")
	if a != b || a != "2001:db8:1:2::/64" {
		t.Fatalf("%s %s", a, b)
	}
	if ipLimitKey("2001:db8:1:3::1") == a {
		t.Fatal("another /64 shares the limit")
	}
	if ipLimitKey("203.0.113.7") != "203.0.113.7" || ipLimitKey("::ffff:203.0.113.7") != "::ffff:203.0.113.7" {
		t.Fatal("IPv4 keys changed")
	}
}

// rawGet sends a request-target exactly as given (no client cleaning or
// escaping) and returns the status code.
func rawGet(t *testing.T, srvURL, target string) int {
	t.Helper()
	u, err := url.Parse(srvURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\nConnection: close\r\n\r\n", target, u.Host); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// `public /assets/*` must not be escaped into the app: paths that a
// server behind the gate may resolve outside /assets (Tomcat's `..;`,
// IIS's backslash, encoded separators and dots) are gated. Plain asset
// paths stay public.
func TestSite_PublicPrefixEscapes_Gated(t *testing.T) {
	e := newEnv(t, openMemory(t))
	for _, target := range []string{
		"/assets/..;/app/admin",
		"/assets/..;jsessionid=x/app/admin",
		"/assets/;/../app/admin",
		"/assets/..%3b/app/admin",
		`/assets/..\app/admin`,
		"/assets/..%5capp/admin",
		"/assets/..%5Capp/admin",
		"/assets/%2e%2e/app/admin",
		"/assets/%2E%2E%2Fapp/admin",
		"/assets/.%2e/app/admin",
		"/assets/x%2f..%2f..%2fapp/admin",
		"/app%2f..%2fassets/x.js",
		"/app/..%2fassets/x.js",
		"/app/%2e%2e/assets/x.js",
		"/app/admin/../../assets/x.js",
		"/assets/%252e%252e/app/admin",
		"/assets/x%00/../../app/admin",
		"/healthz;.js",
	} {
		if got := rawGet(t, e.srv.URL, target); got != 401 {
			t.Errorf("%s: %d, want 401 (gated)", target, got)
		}
	}
	for _, target := range []string{"/assets/app.js", "/assets/img/logo.svg", "/assets/a%20b.css", "/healthz", "/assets/.well-known/x"} {
		if got := rawGet(t, e.srv.URL, target); got != 200 {
			t.Errorf("%s: %d, want 200 (public)", target, got)
		}
	}
}

// Every state-changing auth route refuses a cross-site or same-site (not
// same-origin) POST, a null or foreign Origin, and a text/plain body (a
// no-cors fetch or a form): nothing is sent, no session ends.
func TestSite_CrossSiteAuthPosts_RefusedOnEveryRoute(t *testing.T) {
	e := newEnv(t, openMemory(t))
	s := e.login(alice)
	before := e.sender.count()
	hdrs := [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Origin", "null"},
		{"Origin", "https://evil.example"},
		{"Origin", "https://" + strings.TrimPrefix(e.srv.URL, "http://") + ".evil.example"},
	}
	routes := map[string]string{
		"/auth/v1/otp":    `{"phone":"+14155550124"}`,
		"/auth/v1/resend": `{"type":"sms","phone":"+14155550124"}`,
		"/auth/v1/verify": `{"type":"sms","phone":"+14155550124","token":"123456"}`,
		"/auth/v1/token?grant_type=refresh_token": `{"refresh_token":"` + refreshOf(s) + `"}`,
		"/auth/v1/logout":                         "",
	}
	for route, body := range routes {
		for _, h := range hdrs {
			r := e.do("POST", route, body, append(append([]string{}, h...), bearer(s)...)...)
			if r.status != 403 {
				t.Errorf("%s with %v: %d %s", route, h, r.status, r.raw)
			}
		}
	}
	if e.sender.count() != before {
		t.Fatal("cross-site request sent an SMS")
	}
	if r := e.do("GET", "/app", "", bearer(s)...); r.status != 200 {
		t.Fatal("cross-site logout went through")
	}
	// text/plain (a no-cors fetch / form) is refused too
	r := e.do("POST", "/auth/v1/otp", "", "Content-Type", "text/plain")
	if r.status != 400 {
		t.Fatalf("text/plain: %d", r.status)
	}
}

var dataReturnTo = regexp.MustCompile(`data-return-to="([^"]*)"`)

// However return_to is spelled (encoded slashes and backslashes, dot
// segments, control characters, schemes), the login page and the gate's
// redirect keep it a path on this origin.
func TestSite_ReturnToTricks_StaySameOrigin(t *testing.T) {
	e := newEnv(t, openMemory(t))
	for _, rt := range []string{
		"//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example",
		"/%2F%2Fevil.example", "/%2f/evil.example", "/%5Cevil.example", "/%5C%5Cevil.example",
		"https://evil.example", "javascript:alert(1)", "/\t/evil.example", "/%09/evil.example",
		"/%0d%0a/evil.example", "/.//evil.example", "/%2e%2e//evil.example", "/x/..//evil.example",
		" //evil.example", "/%252F%252Fevil.example",
	} {
		page := e.do("GET", "/auth/login?return_to="+url.QueryEscape(rt), "")
		m := dataReturnTo.FindStringSubmatch(page.raw)
		if page.status != 200 || m == nil {
			t.Fatalf("%q: %d, no data-return-to", rt, page.status)
		}
		v := html.UnescapeString(m[1])
		dec, _ := url.PathUnescape(v)
		if !strings.HasPrefix(v, "/") || strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, "/\\") ||
			strings.ContainsAny(dec, "\t\r\n\\") {
			t.Errorf("return_to %q rendered as %q", rt, v)
		}
	}
	// the gate's own redirect
	c := noRedirect()
	for _, p := range []string{"/a/..//evil.example", "/%2e%2e/%2e%2e//evil.example"} {
		r := doWith(t, c, "GET", e.srv.URL+p, "", "Accept", "text/html")
		if r.status != 302 {
			continue
		}
		loc, _ := url.Parse(r.header.Get("Location"))
		if loc.Host != "" || loc.Path != "/auth/login" {
			t.Errorf("%s: Location %q", p, r.header.Get("Location"))
		}
		rt := loc.Query().Get("return_to")
		if dec, _ := url.PathUnescape(rt); !strings.HasPrefix(rt, "/") || strings.HasPrefix(dec, "//") {
			t.Errorf("%s: return_to %q", p, rt)
		}
	}
}

// A path that only looks public (dot segments and encoded slashes after a
// public prefix) is gated: it never reaches the upstream without a
// session.
func TestSite_PublicPathDotSegmentTricks_Gated(t *testing.T) {
	e := newEnv(t, openMemory(t))
	for _, p := range []string{"/assets/..%2fadmin", "/healthz/../admin", "/assets%2f..%2fadmin", "/healthz%2f..%2fadmin", "/auth/v1/../../admin"} {
		r := e.do("GET", p, "", "X-Auth-User-Id", "attacker")
		if r.status == 200 {
			t.Errorf("%s reached the upstream without a session: %s", p, r.raw)
		}
	}
}
