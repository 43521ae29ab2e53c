package otpgate

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/text/language"

	"github.com/otpgate/otpgate/module/gateway"
	"github.com/otpgate/otpgate/module/loginpage"
	"github.com/otpgate/otpgate/module/phone"
	"github.com/otpgate/otpgate/module/sender/plivo"
)

// Validate implements caddy.Validator. It checks only the values that are
// set, so it holds for explicit config before and after defaults are
// applied; values holding a placeholder ({env.X}) are checked only for
// presence, since they are expanded at provision time.
func (a *App) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if s := a.Store; s != nil {
		switch s.Type {
		case "memory":
			if s.URL != "" {
				add("store memory: url is not allowed")
			}
		case "redis":
			if err := checkRedisURL(s.URL); err != nil {
				add("store redis: %v", err)
			}
		case "":
			add("store: type is required (memory or redis)")
		default:
			add("store: unknown type %q (want memory or redis)", s.Type)
		}
	}

	if len(a.SMS) > 0 && string(a.SMS) != "null" {
		errs = append(errs, validateSender(a.SMS)...)
	}

	otpLength := 6 // the default, which test codes must match when length is unset
	if o := a.OTP; o != nil {
		if o.Length != 0 {
			if o.Length < 6 || o.Length > 10 {
				add("otp length: must be 6..10 (got %d)", o.Length)
			}
			otpLength = o.Length
		}
		if o.TTL < 0 {
			add("otp ttl: must be positive (got %v)", time.Duration(o.TTL))
		}
		if o.MaxAttempts < 0 {
			add("otp max_attempts: must be > 0 (got %d)", o.MaxAttempts)
		}
		if o.ResendAfter != nil && *o.ResendAfter < 0 {
			add("otp resend_after: must not be negative (got %v)", time.Duration(*o.ResendAfter))
		}
	}

	for _, lim := range []struct {
		name string
		l    *LimitConfig
	}{{"limit phone", a.PhoneLimit}, {"limit ip", a.IPLimit}} {
		name, l := lim.name, lim.l
		if l == nil {
			continue
		}
		if l.Events <= 0 {
			add("%s: events must be > 0 (got %d)", name, l.Events)
		}
		if l.Window <= 0 {
			add("%s: window must be > 0 (got %v)", name, time.Duration(l.Window))
		}
	}

	for _, region := range a.Countries {
		if !hasPlaceholder(region) && !phone.ValidRegion(region) {
			add("countries: unknown region %q (want an ISO 3166-1 alpha-2 code such as US)", region)
		}
	}

	// test phones are checked as a send to them is: the runtime parser,
	// then the countries policy (unless a region is a placeholder)
	policy := phone.Policy{Countries: a.Countries}
	if slices.ContainsFunc(a.Countries, hasPlaceholder) {
		policy.Countries = nil
	}
	for _, number := range slices.Sorted(maps.Keys(a.TestPhones)) {
		code := a.TestPhones[number]
		if !hasPlaceholder(number) {
			if !e164.MatchString(number) {
				add("test_phone: %q is not an E.164 number (want + then 7 to 15 digits)", number)
			} else if num, err := phone.Parse(number); err != nil {
				why := strings.TrimSuffix(err.Error(), ": "+phone.ErrInvalid.Error())
				add("test_phone: %q would be refused when a code is requested (%s)", number, why)
			} else if err := policy.Allow(num); err != nil {
				add("test_phone: %q would be refused when a code is requested (%v)", number, err)
			}
		}
		if hasPlaceholder(code) {
			continue
		}
		if !allDigits(code) {
			add("test_phone %s: code must be digits only", number)
		} else if len(code) != otpLength {
			add("test_phone %s: code must have otp length %d digits (got %d)", number, otpLength, len(code))
		}
	}

	if c := a.Captcha; c != nil {
		switch c.Provider {
		case "turnstile", "hcaptcha", "recaptcha":
		case "":
			add("captcha: provider is required (turnstile, hcaptcha or recaptcha)")
		default:
			add("captcha: unknown provider %q (want turnstile, hcaptcha or recaptcha)", c.Provider)
		}
		if c.Secret == "" {
			add("captcha: secret is required")
		}
		if err := checkHTTPURL(c.VerifyURL); err != nil {
			add("captcha verify_url: %v", err)
		}
	}

	switch a.SigningAlg {
	case "", "ES256", "EdDSA", "RS256":
	default:
		if !hasPlaceholder(a.SigningAlg) {
			add("signing_alg: unknown algorithm %q (want ES256, EdDSA or RS256; HS256 is set by hmac_secret)", a.SigningAlg)
		}
	}
	if a.HMACSecret != "" {
		if a.SigningKeyFile != "" || a.SigningAlg != "" {
			add("hmac_secret: cannot be combined with signing_key_file or signing_alg")
		}
		if !hasPlaceholder(a.HMACSecret) && len(a.HMACSecret) < minHMACSecret {
			add("hmac_secret: must be at least %d bytes (got %d)", minHMACSecret, len(a.HMACSecret))
		}
	}

	if a.AccessTTL < 0 {
		add("access_ttl: must be positive (got %v)", time.Duration(a.AccessTTL))
	}
	if time.Duration(a.AccessTTL) > 24*time.Hour {
		// revocations are replayed to reconnecting instances for 25h
		add("access_ttl: must be at most 24h (got %v)", time.Duration(a.AccessTTL))
	}
	if a.RefreshTTL < 0 {
		add("refresh_ttl: must be positive (got %v)", time.Duration(a.RefreshTTL))
	}
	if a.AccessTTL > 0 && a.RefreshTTL > 0 && a.RefreshTTL <= a.AccessTTL {
		add("refresh_ttl: must be longer than access_ttl (%v <= %v)", time.Duration(a.RefreshTTL), time.Duration(a.AccessTTL))
	}
	if r := a.RefreshReuseInterval; r != nil && *r < 0 {
		add("refresh_reuse_interval: must not be negative (got %v)", time.Duration(*r))
	}

	if d := a.CookieDomain; d != "" && !hasPlaceholder(d) && !domainName.MatchString(strings.TrimPrefix(d, ".")) {
		add("cookie_domain: %q is not a domain name (want e.g. example.com, no scheme or port)", d)
	}
	if t := a.MessageTemplate; t != "" && !strings.Contains(t, "{code}") {
		add("message_template: must contain {code}")
	}
	for _, lang := range slices.Sorted(maps.Keys(a.MessageTemplates)) {
		if _, err := language.Parse(lang); err != nil || strings.ContainsAny(lang, "_ ") {
			add("message_template %s: %q is not a language tag such as fr or pt-BR", lang, lang)
		} else if !strings.Contains(a.MessageTemplates[lang], "{code}") {
			add("message_template %s: must contain {code}", lang)
		}
	}
	if err := checkHTTPURL(a.PublicURL); err != nil {
		add("public_url: %v", err)
	}

	switch a.Signup {
	case "", "closed", "open":
	default:
		add("signup: want open or closed (got %q)", a.Signup)
	}
	if u := a.Users; u != nil {
		list := make(map[string][]string)
		for _, number := range slices.Sorted(maps.Keys(u.Phones)) {
			if err := gateway.AddUser(list, number, u.Phones[number]); err != nil {
				add("users: %v", err)
			}
		}
	}
	if a.InactivityTimeout < 0 {
		add("inactivity_timeout: must not be negative (got %v)", time.Duration(a.InactivityTimeout))
	}
	if k := a.ServiceKey; k != "" && !hasPlaceholder(k) && len(k) < minServiceKey {
		add("service_key: must be at least %d bytes (got %d)", minServiceKey, len(k))
	}

	return errors.Join(errs...)
}

// Validate implements caddy.Validator.
func (h *Handler) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if h.APIPrefix != "" {
		if err := checkRoutePath(h.APIPrefix); err != nil {
			add("api_prefix: %v", err)
		} else if h.APIPrefix == "/" {
			add("api_prefix: must not be the site root")
		}
	}
	if h.LoginPath != "" {
		if err := checkRoutePath(h.LoginPath); err != nil {
			add("login_path: %v", err)
		} else if h.APIPrefix != "" && pathUnder(h.LoginPath, h.APIPrefix) {
			add("login_path: %q must not be under api_prefix %q", h.LoginPath, h.APIPrefix)
		}
	}
	for _, p := range h.Public {
		if !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "*") {
			add("public: %q must start with '/' or '*'", p)
		}
	}
	if c := h.AccentColor; c != "" && !hexColor.MatchString(c) {
		add("accent_color: must be a CSS hex colour such as #4f46e5 (got %q)", c)
	}
	if c := h.DefaultCountry; c != "" && !phone.ValidRegion(c) {
		add("default_country: %q is not a region code such as GB or US", c)
	}
	if l := h.Language; l != "" && loginpage.SupportedLanguage(l) == "" {
		add("language: %q is not one of %s", l, strings.Join(loginpage.Languages, " "))
	}
	for _, r := range h.Roles {
		if !gateway.ValidRole(r) {
			add("roles: %s", badRole(r))
		}
	}
	for _, o := range h.CORSOrigins {
		if _, err := gateway.NormalizeOrigin(o); err != nil {
			add("cors_origins: %v", err)
		}
	}
	return errors.Join(errs...)
}

// minHMACSecret is the shortest HS256 secret accepted: the hash's size
// (RFC 7518 section 3.2).
const minHMACSecret = 32

// minServiceKey is the shortest service key accepted: like an HS256
// secret, it must not be guessable.
const minServiceKey = 32

// badRole explains why name is not a role.
func badRole(name string) string {
	return fmt.Sprintf("%q is not a role name (want 1 to 32 ASCII letters, digits, '_', '-', '.' or ':')", name)
}

var (
	e164        = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	hexColor    = regexp.MustCompile(`^#([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$`)
	placeholder = regexp.MustCompile(`\{[^{}\s]+\}`)
	domainName  = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)
)

// hasPlaceholder reports whether v holds a Caddy placeholder such as
// {env.X}, which is only known at provision time.
func hasPlaceholder(v string) bool { return placeholder.MatchString(v) }

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkRoutePath accepts a plain absolute path, without a trailing slash,
// matcher wildcards, query or fragment.
func checkRoutePath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("must start with '/' (got %q)", p)
	case strings.ContainsAny(p, "*?#% \t\r\n{}\\"):
		return fmt.Errorf("must be a plain path without wildcards, query or spaces (got %q)", p)
	case strings.HasPrefix(p, "//"):
		return fmt.Errorf("must not start with '//' (got %q)", p)
	case len(p) > 1 && strings.HasSuffix(p, "/"):
		return fmt.Errorf("must not end with '/' (got %q)", p)
	}
	return nil
}

// pathUnder reports whether p is prefix or a path below it.
func pathUnder(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, strings.TrimSuffix(prefix, "/")+"/")
}

func checkRedisURL(raw string) error {
	if raw == "" {
		return errors.New("url is required")
	}
	if hasPlaceholder(raw) {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid url: %v", err)
	}
	switch u.Scheme {
	case "redis", "rediss", "redis-sentinel":
	default:
		return fmt.Errorf("url scheme must be redis, rediss or redis-sentinel (got %q)", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("url %q has no host", u.Redacted())
	}
	return nil
}

// checkHTTPURL accepts an empty value, a placeholder or an absolute
// http(s) URL without query or fragment.
func checkHTTPURL(raw string) error {
	if raw == "" || hasPlaceholder(raw) {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an absolute http or https URL (got %q)", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("must not have credentials, a query or a fragment (got %q)", raw)
	}
	return nil
}

func validatePlivo(p *PlivoConfig) []error {
	if p == nil {
		return []error{errors.New("sms plivo: auth_id and auth_token are required")}
	}
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if p.AuthID == "" {
		add("sms plivo: auth_id is required")
	}
	if p.AuthToken == "" {
		add("sms plivo: auth_token is required")
	}
	if (p.From == "") == (p.PowerpackUUID == "") {
		add("sms plivo: exactly one of from and powerpack_uuid is required")
	}
	if err := checkHTTPURL(p.APIURL); err != nil {
		add("sms plivo api_url: %v", err)
	}
	if err := checkHTTPURL(p.StatusURL); err != nil {
		add("sms plivo status_url: %v", err)
	}
	if p.Timeout < 0 {
		add("sms plivo timeout: must be positive (got %v)", time.Duration(p.Timeout))
	}
	if t := p.WhatsAppTemplate; t != nil && (t.Name == "" || t.Language == "") {
		add("sms plivo whatsapp_template: name and language are required")
	}
	if v := p.VoiceFrom; v != "" && !hasPlaceholder(v) && !e164.MatchString(v) {
		add("sms plivo voice_from: %q is not an E.164 number (want + then 7 to 15 digits)", v)
	}
	if (p.DLTEntityID == "") != (p.DLTTemplateID == "") {
		add("sms plivo: dlt_entity_id and dlt_template_id go together; set both")
	}
	if c := p.DLTTemplateCategory; c != "" {
		if p.DLTTemplateID == "" {
			add("sms plivo dlt_template_category: needs dlt_entity_id and dlt_template_id")
		}
		if !hasPlaceholder(c) && !plivo.DLTCategories[c] {
			add("sms plivo dlt_template_category: want transactional, service_implicit, service_explicit or promotional (got %q)", c)
		}
	}
	return errs
}

var (
	_ caddy.Validator = (*App)(nil)
	_ caddy.Validator = (*Handler)(nil)
)
