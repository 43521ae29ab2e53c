package otpgate

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func dur(d time.Duration) caddy.Duration     { return caddy.Duration(d) }
func durPtr(d time.Duration) *caddy.Duration { return new(caddy.Duration(d)) }

func validPlivo() *PlivoConfig {
	return &PlivoConfig{AuthID: "{env.PLIVO_AUTH_ID}", AuthToken: "{env.PLIVO_AUTH_TOKEN}", From: "+14155550100"}
}

func TestAppValidate_EmptyIsValid(t *testing.T) {
	if err := new(App).Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil: every field is optional", err)
	}
	if err := new(Handler).Validate(); err != nil {
		t.Errorf("Handler.Validate() = %v, want nil", err)
	}
}

func TestAppValidate_AcceptsGoodConfig(t *testing.T) {
	tests := map[string]App{
		"memory store":       {Store: &StoreConfig{Type: "memory"}},
		"redis":              {Store: &StoreConfig{Type: "redis", URL: "redis://127.0.0.1:6379/0"}},
		"rediss with auth":   {Store: &StoreConfig{Type: "redis", URL: "rediss://user:pw@redis:6380/1"}},
		"redis cluster":      {Store: &StoreConfig{Type: "redis", URL: "redis://h1:6379,h2:6379?cluster=true"}},
		"redis sentinel":     {Store: &StoreConfig{Type: "redis", URL: "redis-sentinel://h1:26379,h2:26379/0?master=mymaster"}},
		"redis placeholder":  {Store: &StoreConfig{Type: "redis", URL: "{env.REDIS_URL}"}},
		"console":            {SMS: smsJSON("console", nil)},
		"plivo from":         {SMS: smsJSON("plivo", validPlivo())},
		"plivo powerpack":    {SMS: smsJSON("plivo", &PlivoConfig{AuthID: "a", AuthToken: "b", PowerpackUUID: "u"})},
		"otp bounds low":     {OTP: &OTPConfig{Length: 6}},
		"otp bounds high":    {OTP: &OTPConfig{Length: 10}},
		"resend disabled":    {OTP: &OTPConfig{ResendAfter: durPtr(0)}},
		"reuse 0s":           {RefreshReuseInterval: durPtr(0)},
		"regions":            {Countries: []string{"US", "GB", "DE"}},
		"test phone default": {TestPhones: map[string]string{"+12015550100": "123456"}},
		"test phone length":  {OTP: &OTPConfig{Length: 8}, TestPhones: map[string]string{"+12015550100": "12345678"}},
		"hmac placeholder":   {HMACSecret: "{env.HMAC}"},
		"hmac 32 bytes":      {HMACSecret: strings.Repeat("k", 32)},
		"key file and alg":   {SigningKeyFile: "/k.pem", SigningAlg: "RS256"},
		"cookie domain":      {CookieDomain: "example.com"},
		"leading dot domain": {CookieDomain: ".example.co.uk"},
		"template":           {MessageTemplate: "{code} is your {app} code"},
		"public url":         {PublicURL: "https://app.example.com"},
		"captcha":            {Captcha: &CaptchaConfig{Provider: "recaptcha", Secret: "s", VerifyURL: "http://127.0.0.1:9/verify"}},
		"ttls":               {AccessTTL: dur(time.Hour), RefreshTTL: dur(720 * time.Hour)},
		"signup open":        {Signup: "open"},
		"signup closed":      {Signup: "closed"},
		"users":              {Users: &UsersConfig{Phones: map[string][]string{"+14155550123": {"admin", "ops"}, "+447400123456": {}}, File: "{env.USERS_FILE}"}},
		"inactivity":         {InactivityTimeout: dur(30 * time.Minute)},
		"service key":        {ServiceKey: strings.Repeat("k", 32)},
		"service key env":    {ServiceKey: "{env.OTPGATE_SERVICE_KEY}"},
	}
	for name, app := range tests {
		t.Run(name, func(t *testing.T) {
			if err := app.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestAppValidate_RefusesBadConfig_NamingTheField(t *testing.T) {
	tests := []struct {
		name string
		app  App
		want string
	}{
		{"store type missing", App{Store: &StoreConfig{}}, "store: type is required"},
		{"store type unknown", App{Store: &StoreConfig{Type: "etcd"}}, `store: unknown type "etcd" (want memory or redis)`},
		{"memory with url", App{Store: &StoreConfig{Type: "memory", URL: "redis://x"}}, "store memory: url is not allowed"},
		{"redis without url", App{Store: &StoreConfig{Type: "redis"}}, "store redis: url is required"},
		{"redis bad scheme", App{Store: &StoreConfig{Type: "redis", URL: "http://x:6379"}}, `store redis: url scheme must be redis, rediss or redis-sentinel (got "http")`},
		{"redis no host", App{Store: &StoreConfig{Type: "redis", URL: "redis:///0"}}, "store redis: url \"redis:///0\" has no host"},
		{"redis password redacted", App{Store: &StoreConfig{Type: "redis", URL: "redis://:hunter2@/0"}}, "xxxxx"},
		{"sms type missing", App{SMS: json.RawMessage(`{}`)}, "sms: type is required"},
		{"sms unknown sender", App{SMS: smsJSON("twilio", nil)}, `sms: unknown sender "twilio" (want console, plivo, webhook or another installed otpgate.senders module)`},
		{"console with plivo", App{SMS: smsJSON("console", validPlivo())}, `sms console: json: unknown field "auth_id"`},
		{"plivo empty", App{SMS: smsJSON("plivo", nil)}, "sms plivo: auth_id is required"},
		{"plivo auth_id", App{SMS: smsJSON("plivo", &PlivoConfig{AuthToken: "t", From: "f"})}, "sms plivo: auth_id is required"},
		{"plivo auth_token", App{SMS: smsJSON("plivo", &PlivoConfig{AuthID: "i", From: "f"})}, "sms plivo: auth_token is required"},
		{"plivo no sender", App{SMS: smsJSON("plivo", &PlivoConfig{AuthID: "i", AuthToken: "t"})}, "sms plivo: exactly one of from and powerpack_uuid is required"},
		{"plivo two senders", App{SMS: smsJSON("plivo", &PlivoConfig{AuthID: "i", AuthToken: "t", From: "f", PowerpackUUID: "u"})}, "sms plivo: exactly one of from and powerpack_uuid is required"},
		{"plivo api_url", App{SMS: smsJSON("plivo", &PlivoConfig{AuthID: "i", AuthToken: "t", From: "f", APIURL: "api.plivo.com"})}, "sms plivo api_url: must be an absolute http or https URL"},
		{"plivo timeout", App{SMS: smsJSON("plivo", &PlivoConfig{AuthID: "i", AuthToken: "t", From: "f", Timeout: dur(-time.Second)})}, "sms plivo timeout: must be positive"},
		{"plivo whatsapp", App{SMS: smsJSON("plivo", &PlivoConfig{AuthID: "i", AuthToken: "t", From: "f", WhatsAppTemplate: &WhatsAppTemplate{Name: "otp"}})}, "sms plivo whatsapp_template: name and language are required"},
		{"otp length short", App{OTP: &OTPConfig{Length: 5}}, "otp length: must be 6..10 (got 5)"},
		{"otp length long", App{OTP: &OTPConfig{Length: 11}}, "otp length: must be 6..10 (got 11)"},
		{"otp length negative", App{OTP: &OTPConfig{Length: -6}}, "otp length: must be 6..10 (got -6)"},
		{"otp ttl", App{OTP: &OTPConfig{TTL: dur(-time.Minute)}}, "otp ttl: must be positive"},
		{"otp max_attempts", App{OTP: &OTPConfig{MaxAttempts: -1}}, "otp max_attempts: must be > 0"},
		{"otp resend_after", App{OTP: &OTPConfig{ResendAfter: durPtr(-time.Second)}}, "otp resend_after: must not be negative"},
		{"limit phone events", App{PhoneLimit: &LimitConfig{Window: dur(time.Minute)}}, "limit phone: events must be > 0 (got 0)"},
		{"limit phone window", App{PhoneLimit: &LimitConfig{Events: 3}}, "limit phone: window must be > 0"},
		{"limit ip events", App{IPLimit: &LimitConfig{Events: -1, Window: dur(time.Minute)}}, "limit ip: events must be > 0 (got -1)"},
		{"limit ip window", App{IPLimit: &LimitConfig{Events: 1, Window: dur(-time.Minute)}}, "limit ip: window must be > 0"},
		{"country unknown", App{Countries: []string{"US", "XX"}}, `countries: unknown region "XX"`},
		{"country alpha-3", App{Countries: []string{"USA"}}, `countries: unknown region "USA"`},
		{"test phone not e164", App{TestPhones: map[string]string{"0044 20 7183 8750": "123456"}}, `test_phone: "0044 20 7183 8750" is not an E.164 number`},
		{"test phone too long", App{TestPhones: map[string]string{"+1234567890123456": "123456"}}, "is not an E.164 number"},
		{"test code letters", App{TestPhones: map[string]string{"+12015550100": "12345a"}}, "test_phone +12015550100: code must be digits only"},
		{"test code default length", App{TestPhones: map[string]string{"+12015550100": "1234"}}, "test_phone +12015550100: code must have otp length 6 digits (got 4)"},
		{"test code set length", App{OTP: &OTPConfig{Length: 8}, TestPhones: map[string]string{"+12015550100": "123456"}}, "code must have otp length 8 digits (got 6)"},
		{"test phone fictional range", App{TestPhones: map[string]string{"+15555550100": "123456"}}, `test_phone: "+15555550100" would be refused when a code is requested (unassigned or impossible number`},
		{"test phone toll-free", App{TestPhones: map[string]string{"+18005550100": "123456"}}, `test_phone: "+18005550100" would be refused when a code is requested (number type toll_free`},
		{"test phone outside countries", App{Countries: []string{"GB"}, TestPhones: map[string]string{"+12015550100": "123456"}}, `test_phone: "+12015550100" would be refused when a code is requested (country "US" not in allowlist`},
		{"captcha provider", App{Captcha: &CaptchaConfig{Provider: "arkose", Secret: "s"}}, `captcha: unknown provider "arkose"`},
		{"captcha provider missing", App{Captcha: &CaptchaConfig{Secret: "s"}}, "captcha: provider is required"},
		{"captcha secret", App{Captcha: &CaptchaConfig{Provider: "turnstile"}}, "captcha: secret is required"},
		{"captcha verify_url", App{Captcha: &CaptchaConfig{Provider: "turnstile", Secret: "s", VerifyURL: "ftp://x/"}}, "captcha verify_url: must be an absolute http or https URL"},
		{"signing_alg", App{SigningAlg: "HS256"}, `signing_alg: unknown algorithm "HS256"`},
		{"hmac short", App{HMACSecret: "0123456789ab"}, "hmac_secret: must be at least 32 bytes (got 12)"},
		{"hmac with key file", App{HMACSecret: "{env.S}", SigningKeyFile: "/k.pem"}, "hmac_secret: cannot be combined with signing_key_file or signing_alg"},
		{"hmac with alg", App{HMACSecret: "{env.S}", SigningAlg: "ES256"}, "hmac_secret: cannot be combined with signing_key_file or signing_alg"},
		{"access_ttl", App{AccessTTL: dur(-time.Hour)}, "access_ttl: must be positive"},
		{"refresh_ttl", App{RefreshTTL: dur(-time.Hour)}, "refresh_ttl: must be positive"},
		{"refresh shorter than access", App{AccessTTL: dur(time.Hour), RefreshTTL: dur(time.Minute)}, "refresh_ttl: must be longer than access_ttl"},
		{"refresh_reuse_interval", App{RefreshReuseInterval: durPtr(-time.Second)}, "refresh_reuse_interval: must not be negative"},
		{"cookie_domain scheme", App{CookieDomain: "https://example.com"}, `cookie_domain: "https://example.com" is not a domain name`},
		{"cookie_domain port", App{CookieDomain: "example.com:443"}, "cookie_domain: "},
		{"message_template", App{MessageTemplate: "Your {app} code"}, "message_template: must contain {code}"},
		{"public_url relative", App{PublicURL: "/auth"}, "public_url: must be an absolute http or https URL"},
		{"public_url query", App{PublicURL: "https://x.example/?a=b"}, "public_url: must not have credentials, a query or a fragment"},
		{"signup", App{Signup: "maybe"}, `signup: want open or closed (got "maybe")`},
		{"users phone without plus", App{Users: &UsersConfig{Phones: map[string][]string{"14155550123": nil}}}, `users: "14155550123" is not a phone number in E.164 form`},
		{"users phone not real", App{Users: &UsersConfig{Phones: map[string][]string{"+1415555": nil}}}, `users: "+1415555" is not a phone number`},
		{"users role", App{Users: &UsersConfig{Phones: map[string][]string{"+14155550123": {"ad min"}}}}, `users: +14155550123: role "ad min"`},
		{"inactivity_timeout", App{InactivityTimeout: dur(-time.Minute)}, "inactivity_timeout: must not be negative"},
		{"service_key", App{ServiceKey: "short"}, "service_key: must be at least 32 bytes (got 5)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.app.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestAppValidate_RedisPasswordNotInError(t *testing.T) {
	err := (&App{Store: &StoreConfig{Type: "redis", URL: "redis://:hunter2@/0"}}).Validate()
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Validate() = %v, want an error without the password", err)
	}
}

func TestAppValidate_ReportsEveryProblem(t *testing.T) {
	err := (&App{HMACSecret: "short", OTP: &OTPConfig{Length: 3}, Countries: []string{"ZZ"}}).Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	for _, want := range []string{"hmac_secret:", "otp length:", "countries:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %q, want it to mention %q", err, want)
		}
	}
}

func TestAppValidate_PlaceholdersSkipValueChecks(t *testing.T) {
	app := App{
		Store:        &StoreConfig{Type: "redis", URL: "{env.REDIS_URL}"},
		SMS:          smsJSON("plivo", &PlivoConfig{AuthID: "{env.A}", AuthToken: "{env.B}", From: "{env.FROM}", APIURL: "{env.PLIVO_URL}"}),
		Countries:    []string{"{env.COUNTRY}"},
		TestPhones:   map[string]string{"{env.TEST_PHONE}": "{env.TEST_CODE}"},
		Captcha:      &CaptchaConfig{Provider: "turnstile", Secret: "{env.S}", VerifyURL: "{env.V}"},
		HMACSecret:   "{env.HMAC}",
		CookieDomain: "{env.DOMAIN}",
		PublicURL:    "{env.PUBLIC_URL}",
	}
	if err := app.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil: placeholders are checked after expansion", err)
	}
}

func TestHandlerValidate_AcceptsGoodConfig(t *testing.T) {
	h := Handler{
		APIPrefix:   "/auth/v1",
		LoginPath:   "/auth/login",
		Public:      []string{"/healthz", "/assets/*", "*.css"},
		Gate:        new(false),
		AccentColor: "#4F46E5",
	}
	if err := h.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
	for _, c := range []string{"#fff", "#ffff", "#a1b2c3", "#a1b2c3d4"} {
		if err := (&Handler{AccentColor: c}).Validate(); err != nil {
			t.Errorf("accent_color %q: %v", c, err)
		}
	}
}

func TestHandlerValidate_RefusesBadConfig_NamingTheField(t *testing.T) {
	tests := []struct {
		name string
		h    Handler
		want string
	}{
		{"api_prefix relative", Handler{APIPrefix: "auth/v1"}, `api_prefix: must start with '/' (got "auth/v1")`},
		{"api_prefix root", Handler{APIPrefix: "/"}, "api_prefix: must not be the site root"},
		{"api_prefix trailing slash", Handler{APIPrefix: "/auth/v1/"}, "api_prefix: must not end with '/'"},
		{"api_prefix wildcard", Handler{APIPrefix: "/auth/*"}, "api_prefix: must be a plain path"},
		{"api_prefix query", Handler{APIPrefix: "/auth?x=1"}, "api_prefix: must be a plain path"},
		{"api_prefix scheme-relative", Handler{APIPrefix: "//evil.example"}, "api_prefix: must not start with '//'"},
		{"login_path relative", Handler{LoginPath: "login"}, `login_path: must start with '/' (got "login")`},
		{"login_path space", Handler{LoginPath: "/log in"}, "login_path: must be a plain path"},
		{"login_path is api_prefix", Handler{APIPrefix: "/auth", LoginPath: "/auth"}, "login_path: \"/auth\" must not be under api_prefix"},
		{"login_path under api_prefix", Handler{APIPrefix: "/auth", LoginPath: "/auth/login"}, "login_path: \"/auth/login\" must not be under api_prefix \"/auth\""},
		{"public relative", Handler{Public: []string{"/ok", "healthz"}}, `public: "healthz" must start with '/' or '*'`},
		{"public empty", Handler{Public: []string{""}}, `public: "" must start with '/' or '*'`},
		{"accent_color name", Handler{AccentColor: "red"}, `accent_color: must be a CSS hex colour such as #4f46e5 (got "red")`},
		{"accent_color no hash", Handler{AccentColor: "4f46e5"}, "accent_color: must be a CSS hex colour"},
		{"accent_color length", Handler{AccentColor: "#12345"}, "accent_color: must be a CSS hex colour"},
		{"accent_color css injection", Handler{AccentColor: "#fff;}body{display:none"}, "accent_color: must be a CSS hex colour"},
		{"roles", Handler{Roles: []string{"admin", "ops,dev"}}, `roles: "ops,dev" is not a role name`},
		{"roles empty name", Handler{Roles: []string{""}}, `roles: "" is not a role name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.h.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
}
