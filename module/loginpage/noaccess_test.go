package loginpage

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func renderNoAccess(t *testing.T, p *Page, method, masked, returnTo string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	p.RenderNoAccess(w, httptest.NewRequest(method, "/admin/reports?x=1", nil), masked, returnTo)
	if w.Code != http.StatusForbidden {
		t.Fatalf("RenderNoAccess: status %d, want 403", w.Code)
	}
	return w
}

func TestNoAccess_StatusAndSecurityHeaders(t *testing.T) {
	p := newPage(t, Options{})
	w := renderNoAccess(t, p, http.MethodGet, "+1***-***-0123", "/admin")
	h := w.Header()
	csp, nonce := securityHeaders(t, h)
	if csp != CSP(nonce) {
		t.Errorf("CSP = %q, want the login page's policy %q", csp, CSP(nonce))
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
	if strings.Contains(body, " style=") || strings.Contains(body, " onclick=") {
		t.Error("inline style or handler attributes are blocked by the CSP")
	}
	if other := renderNoAccess(t, p, http.MethodGet, "+1***-***-0123", "/admin").Header().Get("Content-Security-Policy"); other == csp {
		t.Error("two responses share a nonce")
	}
}

func TestNoAccess_Head_HeadersOnly(t *testing.T) {
	w := renderNoAccess(t, newPage(t, Options{}), http.MethodHead, "+1***-***-0123", "/admin")
	if w.Body.Len() != 0 || w.Header().Get("Content-Security-Policy") == "" || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("HEAD: %d body bytes, headers %v", w.Body.Len(), w.Header())
	}
}

func TestNoAccess_NamesMaskedPhone_SameLook(t *testing.T) {
	p := newPage(t, Options{AppName: "Acme", AccentColor: "#0f766e"})
	body := renderNoAccess(t, p, http.MethodGet, "+1***-***-0123", "/admin").Body.String()
	for _, want := range []string{
		`<html lang="en" dir="ltr">`,
		"<title>No access to Acme</title>",
		`<h1 id="title" tabindex="-1">No access to Acme</h1>`,
		// html/template writes + as &#43; in text; browsers show "+".
		`You&#39;re signed in as <strong id="masked-phone" dir="ltr">&#43;1***-***-0123</strong>, and this account has no access to this site.`,
		`<button id="change-number" class="primary" type="button">Use a different number</button>`,
		`id="error" role="alert" aria-live="assertive"`,
		`id="status" role="status" aria-live="polite"`,
		"--accent: #0f766e;", // the login page's stylesheet and accent
		`class="card"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no-access page lacks %s", want)
		}
	}
	if m := externalRef.FindString(body); m != "" || strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Errorf("page references another host: %q", m)
	}

	body = renderNoAccess(t, newPage(t, Options{}), http.MethodGet, "", "/admin").Body.String()
	if !strings.Contains(body, "You&#39;re signed in, but this account has no access to this site.") || strings.Contains(body, `id="masked-phone"`) {
		t.Error("without a masked phone the page should say so without an empty number")
	}
}

func TestNoAccess_EscapesEverything(t *testing.T) {
	evil := `"><script>window.pwned=1</script><img src=x onerror=alert(1)>`
	p := newPage(t, Options{AppName: evil})
	body := renderNoAccess(t, p, http.MethodGet, evil, `/x"><script>alert(2)</script>`).Body.String()
	if strings.Contains(body, "<script>window.pwned") || strings.Contains(body, "<img src=x") || strings.Contains(body, "<script>alert(2)") {
		t.Error("markup injected into the no-access page")
	}
	if !strings.Contains(body, `&lt;script&gt;window.pwned=1&lt;/script&gt;`) {
		t.Error("masked phone or app name not shown escaped")
	}
}

func TestNoAccess_ButtonLogsOutThenOpensLoginWithReturnTo(t *testing.T) {
	p := newPage(t, Options{APIPrefix: "/api/auth", LoginPath: "/signin"})
	body := renderNoAccess(t, p, http.MethodGet, "+1***-***-0123", "/admin/reports?x=1&y=2#top").Body.String()
	for _, want := range []string{
		`data-api-prefix="/api/auth"`,
		// return_to query-encoded, then attribute-escaped
		`data-login-url="/signin?return_to=%2Fadmin%2Freports%3Fx%3D1%26y%3D2%23top"`,
		`fetch(api + "/logout", {`,
		`method: "POST"`,
		`credentials: "same-origin"`,
		`window.location.assign(loginURL)`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no-access page lacks %s", want)
		}
	}
}

func TestNoAccess_UnsafeReturnToGoesHome(t *testing.T) {
	p := newPage(t, Options{})
	for _, rt := range []string{"//evil.example/", "https://evil.example/", "/%2F%2Fevil", `/\evil`, ""} {
		body := renderNoAccess(t, p, http.MethodGet, "+1***-***-0123", rt).Body.String()
		if !strings.Contains(body, `data-login-url="/auth/login?return_to=%2F"`) {
			t.Errorf("return_to %q: login URL not reset to /", rt)
		}
	}
}

func TestNoAccess_OverrideFile(t *testing.T) {
	t.Run("WithoutNoAccessDefinition_BuiltInPage", func(t *testing.T) {
		file := writeFile(t, `<!doctype html><title>custom</title>{{template "otpgate.style" .}}{{template "otpgate.body" .}}{{template "otpgate.script" .}}`)
		body := renderNoAccess(t, newPage(t, Options{TemplateFile: file}), http.MethodGet, "+1***-***-0123", "/admin").Body.String()
		if !strings.Contains(body, `id="otpgate-noaccess"`) || strings.Contains(body, "<title>custom</title>") {
			t.Error("an override without otpgate.noaccess should leave the built-in no-access page")
		}
	})

	t.Run("WithNoAccessDefinition_Used", func(t *testing.T) {
		file := writeFile(t, `<!doctype html><title>custom</title>{{template "otpgate.body" .}}{{template "otpgate.script" .}}
{{define "otpgate.noaccess"}}<!doctype html><title>Custom no access</title>{{template "otpgate.style" .}}
<p id="who">{{.MaskedPhone}} {{.ReturnTo}} {{.LoginURL}} {{.AppName}}</p>
{{template "otpgate.noaccess.body" .}}{{template "otpgate.noaccess.script" .}}{{end}}`)
		p := newPage(t, Options{AppName: "Acme", TemplateFile: file})
		w := renderNoAccess(t, p, http.MethodGet, "+1***-***-0123", "/admin?a=b")
		body := w.Body.String()
		for _, want := range []string{
			"<title>Custom no access</title>",
			`<p id="who">&#43;1***-***-0123 /admin?a=b /auth/login?return_to=%2Fadmin%3Fa%3Db Acme</p>`,
			`<button id="change-number"`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("override no-access page lacks %s:\n%s", want, body)
			}
		}
		nonce := regexp.MustCompile(`'nonce-([^']+)'`).FindStringSubmatch(w.Header().Get("Content-Security-Policy"))[1]
		if !strings.Contains(body, `<script nonce="`+nonce+`">`) {
			t.Error("override's reused script lacks the nonce")
		}
		if w.Code != http.StatusForbidden || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("override: status %d, Cache-Control %q", w.Code, w.Header().Get("Cache-Control"))
		}
		// The login page itself is still the override's.
		if body := get(t, p, "/auth/login").Body.String(); !strings.Contains(body, "<title>custom</title>") {
			t.Error("login page no longer the override")
		}
	})

	t.Run("BrokenNoAccessDefinition_RefusedAtLoad", func(t *testing.T) {
		file := writeFile(t, `<p>{{.AppName}}</p>{{define "otpgate.noaccess"}}<p>{{.Secret}}</p>{{end}}`)
		_, err := New(Options{TemplateFile: file})
		if err == nil {
			t.Fatal("override with a broken otpgate.noaccess accepted")
		}
		if !strings.Contains(err.Error(), "login.html") || !strings.Contains(err.Error(), "otpgate.noaccess") {
			t.Errorf("error does not name the file and template: %v", err)
		}
	})
}
