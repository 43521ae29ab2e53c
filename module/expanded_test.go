package otpgate

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/otpgate/otpgate/module/gateway"
)

// A value given as a placeholder is checked, by the engine that owns its
// rule, once expanded: `caddy validate` refuses what would not run.
func TestCaddyValidate_PlaceholderValuesCheckedOnceExpanded(t *testing.T) {
	t.Setenv("OTPGATE_TEST_REGION", "UK")
	t.Setenv("OTPGATE_TEST_CODE", "1234")
	t.Setenv("OTPGATE_TEST_DOMAIN", "https://example.com")
	t.Setenv("OTPGATE_TEST_ALG", "HS512")
	for _, tt := range []struct{ name, app, want string }{
		{"countries", `{"countries":["{env.OTPGATE_TEST_REGION}"]}`, `otpgate: countries: unknown region "UK"`},
		{"test phone code", `{"test_phones":{"+12015550100":"{env.OTPGATE_TEST_CODE}"}}`, "otpgate: test_phone +12015550100: code must have otp length 6 digits (got 4)"},
		{"cookie domain", `{"cookie_domain":"{env.OTPGATE_TEST_DOMAIN}"}`, `otpgate: cookie_domain: "https://example.com" is not a domain name`},
		{"signing alg", `{"signing_alg":"{env.OTPGATE_TEST_ALG}"}`, `otpgate: signing_alg: unknown algorithm "HS512"`},
		{"captcha secret", `{"captcha":{"provider":"turnstile","secret":"{env.OTPGATE_TEST_SURELY_UNSET}"}}`, "otpgate: captcha: secret is required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := validateApp(t, tt.app); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("validate %s: %v\nwant an error containing %q", tt.app, err, tt.want)
			}
		})
	}
}

// validateApp runs caddy validate on a config whose otpgate app is app
// (JSON), with its own storage.
func validateApp(t *testing.T, app string) error {
	t.Helper()
	raw := fmt.Sprintf(`{"admin":{"disabled":true},"storage":{"module":"file_system","root":%q},"apps":{"otpgate":%s}}`, t.TempDir(), app)
	var cfg caddy.Config
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

// `resend_after 0` and `refresh_reuse_interval 0` mean no wait and no
// grace; leaving them out means the defaults.
func TestGatewaySettings_ZeroWaitsAreNoWait_UnsetAreDefaults(t *testing.T) {
	same := func(s string) string { return s }
	zero := caddy.Duration(0)
	set := (&App{OTP: &OTPConfig{ResendAfter: &zero}, RefreshReuseInterval: &zero}).gatewaySettings(same).WithDefaults()
	if set.ResendAfter != 0 || set.RefreshReuse != 0 {
		t.Errorf("written as 0: resend wait %v, reuse grace %v; want none", set.ResendAfter, set.RefreshReuse)
	}
	unset := (&App{}).gatewaySettings(same).WithDefaults()
	if unset.ResendAfter != gateway.DefaultResendAfter || unset.RefreshReuse != gateway.DefaultRefreshReuse {
		t.Errorf("left out: resend wait %v, reuse grace %v; want %v and %v",
			unset.ResendAfter, unset.RefreshReuse, gateway.DefaultResendAfter, gateway.DefaultRefreshReuse)
	}
}
