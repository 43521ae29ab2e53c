package loginpage

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

func newPage(t *testing.T, o Options) *Page {
	t.Helper()
	p, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: status %d", target, w.Code)
	}
	return w
}

func TestPage_HasAccessibleInputsAndStableIDs(t *testing.T) {
	body := get(t, newPage(t, Options{}), "/auth/login").Body.String()
	for _, want := range []string{
		`type="tel"`, `autocomplete="tel"`, `inputmode="tel"`,
		`<label for="phone">Phone number</label>`,
		`Country code first, e.g. +1 415 555 0100`,
		`aria-describedby="phone-hint"`,
		`autocomplete="one-time-code"`, `inputmode="numeric"`, `pattern="[0-9]*"`,
		`id="error" role="alert" aria-live="assertive"`,
		`id="send"`, `id="resend"`, `id="change-number"`, `id="masked-phone"`, `id="countdown"`,
		`id="code-0"`, `id="code-5"`,
		`<button id="send"`, `<button id="resend"`, `<button id="change-number"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, `id="code-6"`) {
		t.Error("page has a seventh code box for a 6-digit code")
	}
	if n := strings.Count(body, `autocomplete="one-time-code"`); n != 1 {
		t.Errorf("one-time-code inputs: %d, want exactly 1 (the first box)", n)
	}
}

func TestPage_CodeLengthSetsBoxes(t *testing.T) {
	body := get(t, newPage(t, Options{CodeLength: 8}), "/").Body.String()
	if !strings.Contains(body, `id="code-7"`) || strings.Contains(body, `id="code-8"`) {
		t.Error("want boxes code-0..code-7 for an 8-digit code")
	}
	if !strings.Contains(body, `data-code-length="8"`) {
		t.Error("script does not learn the code length")
	}
}

var externalRef = regexp.MustCompile(`(?i)(src|href|action|url\()\s*=?\s*["']?\s*(https?:)?//`)

func TestPage_SelfContained(t *testing.T) {
	body := get(t, newPage(t, Options{}), "/").Body.String()
	if m := externalRef.FindString(body); m != "" {
		t.Errorf("page references another host: %s", m)
	}
	for _, bad := range []string{"http://", "https://", "@import", "<link rel=\"stylesheet\"", "<img "} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(body, -1) {
		if strings.Contains(tag, "src=") {
			t.Errorf("external script: %s", tag)
		}
	}
}

func TestPage_SecurityHeadersAndNonce(t *testing.T) {
	p := newPage(t, Options{})
	w := get(t, p, "/")
	h := w.Header()
	csp, nonce := securityHeaders(t, h)
	if want := CSP(nonce); csp != want {
		t.Errorf("CSP = %q, want %q", csp, want)
	}
	for _, d := range []string{"default-src 'none'", "style-src 'nonce-" + nonce + "'", "connect-src 'self'",
		"img-src 'self' data:", "form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP lacks %s", d)
		}
	}
	body := w.Body.String()
	tags := regexp.MustCompile(`<(script|style)\b[^>]*>`).FindAllString(body, -1)
	if len(tags) < 2 {
		t.Fatalf("found %d script/style tags, want both", len(tags))
	}
	for _, tag := range tags {
		if !strings.Contains(tag, `nonce="`+nonce+`"`) {
			t.Errorf("tag %s lacks the response's nonce %s", tag, nonce)
		}
	}
	if strings.Contains(body, " style=") {
		t.Error("inline style attributes are blocked by the CSP")
	}

	other := get(t, p, "/").Header().Get("Content-Security-Policy")
	if other == csp {
		t.Error("two responses share a nonce")
	}
}

func TestPage_ReturnToSanitised(t *testing.T) {
	p := newPage(t, Options{})
	for target, want := range map[string]string{
		"/auth/login?return_to=%2Fapp%3Fx%3D1":        `data-return-to="/app?x=1"`,
		"/auth/login?return_to=%2F%2Fevil.com":        `data-return-to="/"`,
		"/auth/login?return_to=https%3A%2F%2Fevil":    `data-return-to="/"`,
		"/auth/login?return_to=%2F%252F%252Fevil":     `data-return-to="/"`, // the param decodes to /%2F%2Fevil
		"/auth/login?return_to=%2F%22%3E%3Cscript%3E": `data-return-to="/&#34;&gt;&lt;script&gt;"`,
		"/auth/login": `data-return-to="/"`,
	} {
		if body := get(t, p, target).Body.String(); !strings.Contains(body, want) {
			t.Errorf("GET %s: page lacks %s", target, want)
		}
	}
}

func TestRender_UsesGivenReturnTo(t *testing.T) {
	p := newPage(t, Options{})
	w := httptest.NewRecorder()
	p.Render(w, httptest.NewRequest(http.MethodGet, "/anything?return_to=/ignored", nil), "/dashboard")
	if !strings.Contains(w.Body.String(), `data-return-to="/dashboard"`) {
		t.Error("Render ignored its returnTo")
	}
}

func TestPage_OptionsReachThePage(t *testing.T) {
	body := get(t, newPage(t, Options{
		AppName: "Acme <Corp>", AccentColor: "#FFCC00", APIPrefix: "/api/auth/", LoginPath: "/signin",
	}), "/").Body.String()
	for _, want := range []string{
		"<title>Sign in to Acme &lt;Corp&gt;</title>",
		"--accent: #ffcc00;",
		"--accent-text: #111827;", // dark text on a light accent
		`data-api-prefix="/api/auth"`,
		`action="/signin"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if body := get(t, newPage(t, Options{}), "/").Body.String(); !strings.Contains(body, "--accent: #4f46e5;") ||
		!strings.Contains(body, "--accent-text: #ffffff;") || !strings.Contains(body, `data-api-prefix="/auth/v1"`) {
		t.Error("defaults missing from the page")
	}
}

func TestPage_MethodsOtherThanGetAndHead(t *testing.T) {
	p := newPage(t, Options{})
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest(m, "/auth/login", strings.NewReader("phone=1")))
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405", m, w.Code)
		}
		if got := w.Header().Get("Allow"); got != "GET, HEAD" {
			t.Errorf("%s: Allow = %q", m, got)
		}
	}
	w := httptest.NewRecorder()
	p.ServeHTTP(w, httptest.NewRequest(http.MethodHead, "/auth/login", nil))
	if w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("HEAD: status %d, %d body bytes, CSP %q", w.Code, w.Body.Len(), w.Header().Get("Content-Security-Policy"))
	}
}

func TestNew_RefusesBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"accent name":        {AccentColor: "red"},
		"accent css escape":  {AccentColor: "#fff;}body{display:none"},
		"accent 5 digits":    {AccentColor: "#12345"},
		"accent no hash":     {AccentColor: "4f46e5"},
		"relative prefix":    {APIPrefix: "auth/v1"},
		"other-host prefix":  {APIPrefix: "//evil.com/auth"},
		"login path query":   {LoginPath: "/login?x=1"},
		"code length short":  {CodeLength: 4},
		"code length long":   {CodeLength: 11},
		"missing template":   {TemplateFile: filepath.Join(t.TempDir(), "nope.html")},
		"login path with \\": {LoginPath: `/\evil`},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
	for _, c := range []string{"#abc", "#ABCDEF", "#4f46e5"} {
		if _, err := New(Options{AccentColor: c}); err != nil {
			t.Errorf("accent %s refused: %v", c, err)
		}
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "login.html")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTemplateOverride_ReplacesPage(t *testing.T) {
	file := writeFile(t, `<!doctype html><title>{{.AppName}} custom</title>
{{template "otpgate.style" .}}<p id="custom">{{.APIPrefix}} {{.LoginPath}} {{.ReturnTo}} {{.CodeLength}} {{.AccentColor}}</p>
{{template "otpgate.body" .}}{{template "otpgate.script" .}}`)
	p := newPage(t, Options{AppName: "Acme", TemplateFile: file})
	w := get(t, p, "/auth/login?return_to=/inbox")
	body := w.Body.String()
	for _, want := range []string{"<title>Acme custom</title>", `<p id="custom">/auth/v1 /auth/login /inbox 6 #4f46e5</p>`, `id="code-0"`} {
		if !strings.Contains(body, want) {
			t.Errorf("override page lacks %s", want)
		}
	}
	nonce := regexp.MustCompile(`'nonce-([^']+)'`).FindStringSubmatch(w.Header().Get("Content-Security-Policy"))[1]
	if !strings.Contains(body, `<script nonce="`+nonce+`">`) {
		t.Error("override's reused script lacks the nonce")
	}
}

func TestTemplateOverride_RefusedWhenBroken(t *testing.T) {
	for name, content := range map[string]string{
		"syntax":          `<p>{{.AppName</p>`,
		"unknown field":   `<p>{{.Secret}}</p>`,
		"unknown func":    `<p>{{nosuch .AppName}}</p>`,
		"unknown include": `{{template "nosuch" .}}`,
	} {
		_, err := New(Options{TemplateFile: writeFile(t, content)})
		if err == nil {
			t.Errorf("%s: broken template accepted", name)
		} else if !strings.Contains(err.Error(), "login.html") {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
	}
}

func TestTextColorOn(t *testing.T) {
	for bg, want := range map[string]string{
		"#4f46e5": "#ffffff", "#000": "#ffffff", "#b91c1c": "#ffffff",
		"#fff": "#111827", "#ffcc00": "#111827", "#a3e635": "#111827",
	} {
		if got := textColorOn(bg); got != want {
			t.Errorf("textColorOn(%s) = %s, want %s", bg, got, want)
		}
	}
}

// A hostile app name or return_to cannot inject markup or script, in the
// served HTML or in the browser; the CSP is the strict nonce policy with a
// fresh nonce per response; an accent colour with markup and unsafe
// return_to paths are refused.
func TestPage_HostileAppNameAndReturnTo_NoInjectionUnderStrictCSP(t *testing.T) {
	evil := `"><img src=x onerror="window.pwned=1"></title><script>window.pwned=2</script>{{.Nonce}}`
	page := newPage(t, Options{AppName: evil})
	mux := http.NewServeMux()
	mux.Handle("GET "+DefaultLoginPath, page)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	rt := `/x"><script>window.pwned=3</script>'-alert(1)-'`
	a := get(t, page, DefaultLoginPath+"?return_to="+url.QueryEscape(rt))
	b := get(t, page, DefaultLoginPath)
	csp := a.Header().Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'", "connect-src 'self'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %q", csp, d)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || csp == b.Header().Get("Content-Security-Policy") {
		t.Errorf("CSP not a fresh strict nonce policy: %q", csp)
	}
	if strings.Contains(a.Body.String(), "<script>window.pwned") || strings.Contains(a.Body.String(), "<img src=x") {
		t.Error("markup injected")
	}

	ctx, cancel := chromedp.NewContext(testenv.Chromium(t))
	defer cancel()
	do(t, ctx, chromedp.Navigate(srv.URL+DefaultLoginPath+"?return_to="+url.QueryEscape(rt)), chromedp.WaitVisible(chromedp.ID("phone")))
	time.Sleep(200 * time.Millisecond)
	if v := js[string](t, ctx, `String(window.pwned)`); v != "undefined" {
		t.Errorf("script ran: pwned=%s", v)
	}
	if got := text(t, ctx, "title"); got != "Sign in to "+evil {
		t.Errorf("h1 = %q", got)
	}
	if got := js[string](t, ctx, `document.getElementById("otpgate").getAttribute("data-return-to")`); got != rt {
		t.Errorf("data-return-to = %q, want %q", got, rt)
	}
	if n := js[int](t, ctx, `document.querySelectorAll('script:not([type="application/json"])').length`); n != 1 {
		t.Errorf("%d script elements", n)
	}

	if _, err := New(Options{AccentColor: `red;}</style><script>alert(1)</script>`}); err == nil {
		t.Error("accent colour with markup accepted")
	}
	for _, p := range []string{"javascript:alert(1)", "https://evil.example/", "//evil.example", "/\\evil.example", "/%2F%2Fevil.example", "/%5Cevil", "/\t/evil", "/a/../..//evil", "/%2e%2e/%2fevil", " /x"} {
		if got := SafeReturnTo(p); got != "/" {
			t.Errorf("SafeReturnTo(%q) = %q", p, got)
		}
	}
}

// securityHeaders checks the headers every page of this package sends and
// returns its Content-Security-Policy and the script nonce in it.
func securityHeaders(t *testing.T, h http.Header) (csp, nonce string) {
	t.Helper()
	for k, v := range map[string]string{
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"Content-Type":           "text/html; charset=utf-8",
	} {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	csp = h.Get("Content-Security-Policy")
	m := regexp.MustCompile(`script-src 'nonce-([A-Za-z0-9+/_=-]+)'`).FindStringSubmatch(csp)
	if m == nil {
		t.Fatalf("CSP has no script nonce: %q", csp)
	}
	nonce = m[1]
	return csp, nonce
}
