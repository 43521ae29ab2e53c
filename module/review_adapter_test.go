package otpgate

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// validate.go accepts a placeholder in `countries` ("checked only for
// presence, since they are expanded at provision time"), but App.Provision
// passes a.Countries to the gateway unexpanded, so the literal
// "{env.X}" becomes the allowlist and every number is refused.
func TestReview2_CountriesPlaceholderIsExpanded(t *testing.T) {
	t.Setenv("OTPGATE_R2_COUNTRIES", "US")
	g := startGateway(t, "countries {env.OTPGATE_R2_COUNTRIES}", "")
	st, _, body := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550123"}`)
	if st != 200 {
		t.Fatalf("US number with countries {env.X}=US: %d %v (placeholder not expanded)", st, body)
	}
}

// Same for test_phone: validate skips the digit check of a placeholder
// code, Provision never expands it, so the fixed code never verifies.
func TestReview2_TestPhoneCodePlaceholderIsExpanded(t *testing.T) {
	t.Setenv("OTPGATE_R2_CODE", "654321")
	g := startGateway(t, "test_phone +12015550100 {env.OTPGATE_R2_CODE}", "")
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

// cookie_domain with a placeholder passes validation but is used verbatim:
// net/http drops the invalid Domain attribute, while the cookie names lose
// their __Host- prefix, so the session is not shared across subdomains.
func TestReview2_CookieDomainPlaceholderIsExpanded(t *testing.T) {
	t.Setenv("OTPGATE_R2_DOMAIN", "example.com")
	g := startGateway(t, "test_phone +12015550100 123456\n\t\tcookie_domain {env.OTPGATE_R2_DOMAIN}", "")
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

// signing_alg with a placeholder passes validation but LoadKeyRing gets the
// literal "{env.X}" and provisioning fails.
func TestReview2_SigningAlgPlaceholderIsExpanded(t *testing.T) {
	t.Setenv("OTPGATE_R2_ALG", "EdDSA")
	cfg := minimalCaddyfile(t, "signing_alg {env.OTPGATE_R2_ALG}")
	if err := caddy.Load(testenv.AdaptCaddyfile(t, cfg), true); err != nil {
		t.Fatalf("signing_alg {env.X}=EdDSA refused: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
}

// A secret whose placeholder expands to "" must be refused (the spec:
// hmac_secret shorter than 32 bytes is refused), not silently replaced by
// a generated ES256 key (or, for signing_key_file, a generated key): the
// operator asked for specific keys and upstreams verify with them.
func TestReview2_EmptyExpandedKeyConfigRefused(t *testing.T) {
	for _, opt := range []string{
		"hmac_secret {env.OTPGATE_R2_SURELY_UNSET}",
		"signing_key_file {env.OTPGATE_R2_SURELY_UNSET}",
	} {
		t.Run(strings.Fields(opt)[0], func(t *testing.T) {
			cfg := minimalCaddyfile(t, opt)
			err := caddy.Load(testenv.AdaptCaddyfile(t, cfg), true)
			if err == nil {
				_ = caddy.Stop()
				t.Fatalf("%q with the variable unset was accepted (silently falls back to a generated key)", opt)
			}
		})
	}
}

// The IP limit keys on Caddy's client_ip: without trusted_proxies a spoofed
// X-Forwarded-For must not buy a fresh per-IP budget.
func TestReview2_IPLimitIgnoresUntrustedXFF(t *testing.T) {
	g := startGateway(t, "limit ip 2 10m", "")
	c := http.DefaultClient
	for i := 0; i < 3; i++ {
		st, _, b := call(t, c, "POST", g.base+"/auth/v1/otp", fmt.Sprintf(`{"phone":"+1415555012%d"}`, i),
			"X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1), "X-Real-IP", fmt.Sprintf("198.51.100.%d", i+1))
		want := 200
		if i == 2 {
			want = 429
		}
		if st != want {
			t.Fatalf("send %d: %d %v, want %d", i, st, b, want)
		}
	}
}

func minimalCaddyfile(t *testing.T, global string) string {
	return fmt.Sprintf(`{
	storage file_system %s
	admin off
	auto_https off
	otpgate {
		%s
	}
}

http://127.0.0.1:%d {
	otpgate
	respond "ok"
}
`, t.TempDir(), global, testenv.FreePort(t))
}

// A reload whose provisioning fails after the store was acquired must give
// its hold back (Caddy calls Cleanup on a failed Provision), and the
// running config keeps exactly one hold; a successful reload does not
// pile up holds either.
func TestReview2_StorePoolHoldsAfterFailedAndGoodReloads(t *testing.T) {
	g := startGateway(t, "", "")
	key := "redis:" + g.redis.URL()
	if n, ok := stores.References(key); !ok || n != 1 {
		t.Fatalf("refs after start: %d %v", n, ok)
	}
	bad := strings.Replace(g.caddyfile, "create_user true", "create_user true\n\t\tsigning_key_file /nonexistent/review2.pem", 1)
	if err := caddy.Load(testenv.AdaptCaddyfile(t, bad), true); err == nil {
		t.Fatal("config with a missing signing_key_file loaded")
	}
	if n, ok := stores.References(key); !ok || n != 1 {
		t.Fatalf("refs after a failed reload: %d %v", n, ok)
	}
	good := strings.Replace(g.caddyfile, "create_user true", "create_user true\n\t\tapp_name review2", 1)
	if err := caddy.Load(testenv.AdaptCaddyfile(t, good), true); err != nil {
		t.Fatal(err)
	}
	if n, ok := stores.References(key); !ok || n != 1 {
		t.Fatalf("refs after a good reload: %d %v", n, ok)
	}
	if st, _, b := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550123"}`); st != 200 {
		t.Fatalf("send after reloads: %d %v", st, b)
	}
}
