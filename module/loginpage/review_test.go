package loginpage

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// review3WaitCalls polls the stub until path saw n calls or d passed.
func review3WaitCalls(f *fixture, path string, n int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		got := len(f.api.callsTo(path))
		if got >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestReview3_Browser(t *testing.T) {
	f := newFixture(t)

	// Pasting the whole SMS must yield the code even when the app name has
	// digits ("Your 23andMe code is 654321"): today every digit of the text
	// is taken and the first six ("236543") are sent.
	t.Run("PasteWholeSMS_AppNameWithDigits", func(t *testing.T) {
		ctx := f.tab(t, "")
		toCodeStep(t, ctx, f, challenge(30))
		f.api.queue("/verify", apiError(403, "otp_expired", "Token has expired or is invalid."))
		js[bool](t, ctx, fmt.Sprintf(pasteJS, "Your 23andMe code is 654321", "code-0"))
		if n := review3WaitCalls(f, "/verify", 1, 5*time.Second); n != 1 {
			t.Fatalf("/verify calls %d", n)
		}
		if got := f.api.callsTo("/verify")[0].body["token"]; got != "654321" {
			t.Errorf("token sent = %v, want 654321", got)
		}
	})

	// While resend is rate limited (429 with Retry-After), a wrong code
	// must not wipe the time left and re-enable Resend: showError ->
	// clearError stops the retry countdown.
	t.Run("RateLimitSurvivesWrongCode", func(t *testing.T) {
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
	// it, the person must still be able to send to the right number. Today
	// the whole phone form is blocked (send disabled, submit ignored).
	t.Run("PerPhoneLimitDoesNotBlockOtherNumber", func(t *testing.T) {
		ctx := f.tab(t, "")
		limited := apiError(429, "over_sms_send_rate_limit", "Too many codes were sent to this number. Try again in 300 seconds.")
		limited.header["Retry-After"] = "300"
		f.api.queue("/otp", limited)
		do(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), "+14155550100"), chromedp.Click(chromedp.ID("send")))
		waitErrorContains(t, ctx, "Try again in")
		js[bool](t, ctx, `(() => { const p = document.getElementById("phone"); p.value = ""; p.focus(); return true; })()`)
		do(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), "+442071838750"), chromedp.KeyEvent(kb.Enter))
		if n := review3WaitCalls(f, "/otp", 2, 3*time.Second); n != 2 {
			t.Errorf("/otp calls = %d after changing the number, want 2 (per-phone limit blocks every number)", n)
		}
	})

	// Screen-reader users get no announcement when Resend becomes
	// available: #countdown is not live and the status region stays empty.
	t.Run("ResendAvailableIsAnnounced", func(t *testing.T) {
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
	t.Run("EveryErrorCodeIsHuman", func(t *testing.T) {
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

// AppName and return_to cannot inject markup or script; the CSP is the
// strict nonce policy; the nonce differs per response.
func TestReview3_XSSAndCSP(t *testing.T) {
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
