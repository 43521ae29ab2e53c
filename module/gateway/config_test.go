package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/captcha"
	"github.com/otpgate/otpgate/module/phone"
	"github.com/otpgate/otpgate/module/store"
)

func TestConfig_ZeroSettingsTakeTheDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.CodeLength != DefaultCodeLength || c.CodeTTL != DefaultCodeTTL || c.MaxAttempts != DefaultMaxAttempts ||
		c.ResendAfter != DefaultResendAfter || c.PhoneLimit != DefaultPhoneLimit || c.IPLimit != DefaultIPLimit ||
		c.AccessTTL != DefaultAccessTTL || c.RefreshTTL != DefaultRefreshTTL || c.RefreshReuse != DefaultRefreshReuse ||
		c.Issuer != DefaultIssuer || c.Audience != DefaultAudience || c.AppName != DefaultAppName {
		t.Errorf("defaults: %+v", c)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("the defaults do not validate: %v", err)
	}
}

func TestConfig_NoResendWaitAndNoReuseGrace_ResolveToZero(t *testing.T) {
	c := Config{NoResendWait: true, NoReuseGrace: true}.WithDefaults()
	if c.ResendAfter != 0 || c.RefreshReuse != 0 {
		t.Errorf("resend after %v, reuse %v; want 0 and 0", c.ResendAfter, c.RefreshReuse)
	}
	if err := (Config{NoResendWait: true, ResendAfter: time.Minute}).Validate(); err == nil {
		t.Error("NoResendWait with a wait accepted")
	}
}

func TestConfig_Validate_NamesTheOption(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{CodeLength: 11}, "otp length: must be 6..10 (got 11)"},
		{Config{ResendAfter: -time.Second}, "otp resend_after: must not be negative (got -1s)"},
		{Config{PhoneLimit: store.Limit{Window: time.Minute}}, "limit phone: events must be > 0 (got 0)"},
		{Config{LockoutBase: time.Hour, LockoutMax: time.Minute}, "lockout: the longest lock (1m0s) must not be shorter than the first (1h0m0s)"},
		{Config{AccessTTL: 48 * time.Hour}, "access_ttl: must be at most 24h (got 48h0m0s)"},
		{Config{RefreshTTL: time.Minute}, "refresh_ttl: must be longer than access_ttl (1m0s <= 1h0m0s)"},
		{Config{Policy: phone.Policy{Countries: []string{"UK"}}}, `countries: unknown region "UK"`},
		{Config{CodeLength: 8, TestPhones: map[string]string{"+12015550100": "123456"}}, "test_phone +12015550100: code must have otp length 8 digits (got 6)"},
		{Config{Captcha: &captcha.Verifier{Provider: "turnstile"}}, "captcha: secret is required"},
		{Config{ServiceKey: "short"}, "service_key: must be at least 32 bytes (got 5)"},
		{Config{MessageTemplates: map[string]string{"fr": "Bonjour"}}, "message_template fr: must contain {code}"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
}
