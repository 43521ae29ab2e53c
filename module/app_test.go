package otpgate

import (
	"net/http"
	"strings"
	"testing"
)

// Provision expands placeholders in every option before the gateway uses
// it: validation checks a placeholder only for presence, so the value that
// runs is the expanded one.

// `countries {env.X}` is the allowlist X names, not the literal text.
func TestCaddy_CountriesPlaceholder_ExpandedAtProvision(t *testing.T) {
	t.Setenv("OTPGATE_TEST_COUNTRIES", "US")
	g := startGateway(t, "countries {env.OTPGATE_TEST_COUNTRIES}", "")
	st, _, body := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550123"}`)
	if st != 200 {
		t.Fatalf("US number with countries {env.X}=US: %d %v (placeholder not expanded)", st, body)
	}
}

// A test phone's fixed code may be a placeholder: the expanded code
// verifies, and no SMS is sent.
func TestCaddy_TestPhoneCodePlaceholder_ExpandedAtProvision(t *testing.T) {
	t.Setenv("OTPGATE_TEST_CODE", "654321")
	g := startGateway(t, "test_phone +12015550100 {env.OTPGATE_TEST_CODE}", "")
	c := http.DefaultClient
	if st, _, b := call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+12015550100"}`); st != 200 {
		t.Fatalf("send %d %v", st, b)
	}
	if n := len(g.plivo.Messages()); n != 0 {
		t.Fatalf("a test phone must never be sent an SMS; plivo got %d", n)
	}
	st, _, b := call(t, c, "POST", g.base+"/auth/v1/verify", `{"type":"sms","phone":"+12015550100","token":"654321"}`)
	if st != 200 {
		t.Fatalf("verify with the expanded test code: %d %v", st, b)
	}
}

// `cookie_domain {env.X}` puts the expanded Domain on every session cookie
// (a literal placeholder would be dropped by net/http, leaving host-only
// cookies that subdomains do not share).
func TestCaddy_CookieDomainPlaceholder_ExpandedIntoCookies(t *testing.T) {
	t.Setenv("OTPGATE_TEST_DOMAIN", "example.com")
	g := startGateway(t, "test_phone +12015550100 123456\n\t\tcookie_domain {env.OTPGATE_TEST_DOMAIN}", "")
	c := http.DefaultClient
	call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+12015550100"}`, "Origin", g.base)
	st, h, b := call(t, c, "POST", g.base+"/auth/v1/verify", `{"type":"sms","phone":"+12015550100","token":"123456"}`, "Origin", g.base)
	if st != 200 {
		t.Fatalf("verify %d %v", st, b)
	}
	sc := h.Values("Set-Cookie")
	if len(sc) == 0 {
		t.Fatal("no session cookies")
	}
	for _, v := range sc {
		if !strings.Contains(strings.ToLower(v), "domain=example.com") {
			t.Errorf("cookie without Domain=example.com: %s", v)
		}
	}
}
