package otpgate

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/otpgate/otpgate/module/gateway"
	"github.com/otpgate/otpgate/module/loginpage"
	"github.com/otpgate/otpgate/module/phone"
	"github.com/otpgate/otpgate/module/session"
)

// Validate implements caddy.Validator, and runs as the Caddyfile is
// adapted, so that `caddy adapt` reports mistakes at their lines. It
// checks what is the adapter's own (the store, the sender module's JSON,
// sign-up, the users list) and has the engines check their settings,
// translated as Provision translates them (gatewaySettings,
// session.KeyConfig). Before Provision a value that holds a placeholder
// ({env.X}) is not known: it is checked only where its presence matters,
// and otherwise stands for a value that passes (see beforeExpansion).
// Provision checks the expanded values.
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
	// the sender's message text (sender.Templated), which has no Validate
	// of its own
	if t := a.MessageTemplate; t != "" && !strings.Contains(t, "{code}") {
		add("message_template: must contain {code}")
	}

	for _, lim := range []struct {
		name string
		l    *LimitConfig
	}{{"limit phone", a.PhoneLimit}, {"limit ip", a.IPLimit}} {
		// the engine takes the zero limit for "the default": one written
		// with zeros it cannot tell from none
		if lim.l != nil && *lim.l == (LimitConfig{}) {
			add("%s: events must be > 0 (got 0)", lim.name)
			add("%s: window must be > 0 (got 0s)", lim.name)
		}
	}

	settings, countries := a.beforeExpansion()
	errs = append(errs, flatten(settings.Validate())...)
	if countries != nil {
		errs = append(errs, flatten(countries.Validate())...)
	}
	// a placeholder stands for a secret or algorithm that passes: which
	// of the options are set is what is checked
	keys := session.KeyConfig{HMACSecret: a.HMACSecret, KeyFile: a.SigningKeyFile, Alg: a.SigningAlg}
	if hasPlaceholder(keys.HMACSecret) {
		keys.HMACSecret = strings.Repeat("x", session.MinHMACSecret)
	}
	if hasPlaceholder(keys.Alg) {
		keys.Alg = session.DefaultAlg
	}
	errs = append(errs, flatten(keys.Validate())...)

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
	return errors.Join(errs...)
}

// beforeExpansion is the engine's settings as far as they are known
// before placeholders are expanded. A value that holds one is left out,
// but for the captcha secret, whose presence is what is checked, and a
// test phone's code, for which a code of the otp length stands. When the
// countries allowlist holds a placeholder, the allowlist is left out and
// its written regions come apart, in countries, to be checked on their
// own.
func (a *App) beforeExpansion() (settings gateway.Config, countries *gateway.Config) {
	settings = a.gatewaySettings(func(s string) string {
		if hasPlaceholder(s) {
			return ""
		}
		return s
	})
	if c := settings.Captcha; c != nil {
		c.Secret = a.Captcha.Secret
	}
	if slices.ContainsFunc(a.Countries, hasPlaceholder) {
		settings.Policy.Countries = nil
		written := slices.DeleteFunc(slices.Clone(a.Countries), hasPlaceholder)
		countries = &gateway.Config{Policy: phone.Policy{Countries: written}}
	}
	length := settings.WithDefaults().CodeLength
	settings.TestPhones = make(map[string]string, len(a.TestPhones))
	for number, code := range a.TestPhones {
		if hasPlaceholder(number) {
			continue
		}
		if hasPlaceholder(code) {
			if length < gateway.MinCodeLength || length > gateway.MaxCodeLength {
				continue
			}
			code = strings.Repeat("0", length)
		}
		settings.TestPhones[number] = code
	}
	return settings, countries
}

// Validate implements caddy.Validator: the routes are the adapter's to
// check, the login page's options the page's (loginpage.Options).
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
	page := loginpage.Options{AccentColor: h.AccentColor, DefaultCountry: h.DefaultCountry, Language: h.Language}
	errs = append(errs, flatten(page.Validate())...)
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

// badRole explains why name is not a role.
func badRole(name string) string {
	return fmt.Sprintf("%q is not a role name (want 1 to 32 ASCII letters, digits, '_', '-', '.' or ':')", name)
}

var placeholder = regexp.MustCompile(`\{[^{}\s]+\}`)

// hasPlaceholder reports whether v holds a Caddy placeholder such as
// {env.X}, which is only known at provision time.
func hasPlaceholder(v string) bool { return placeholder.MatchString(v) }

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

// validatePlivo has the plivo engine check p (plivo.Config.Validate)
// before expansion: a URL, number or category that holds a placeholder is
// left out or stands for one that passes; the rest is checked for its
// presence only.
func validatePlivo(p *PlivoConfig) []error {
	c := p.engineConfig(func(s string) string { return s })
	for _, v := range []*string{&c.APIURL, &c.StatusURL, &c.VoiceFrom} {
		if hasPlaceholder(*v) {
			*v = ""
		}
	}
	if hasPlaceholder(c.DLTTemplateCategory) {
		c.DLTTemplateCategory = "transactional"
	}
	errs := flatten(prefixEach("sms ", c.Validate()))
	// written with neither, which the engine cannot tell from no template
	if t := p.WhatsAppTemplate; t != nil && t.Name == "" && t.Language == "" {
		errs = append(errs, errors.New("sms plivo whatsapp_template: name and language are required"))
	}
	return errs
}

var (
	_ caddy.Validator = (*App)(nil)
	_ caddy.Validator = (*Handler)(nil)
)
