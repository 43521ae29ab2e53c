package gateway

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/text/language"

	"github.com/otpgate/otpgate/module/captcha"
	"github.com/otpgate/otpgate/module/phone"
	"github.com/otpgate/otpgate/module/sender"
	"github.com/otpgate/otpgate/module/session"
	"github.com/otpgate/otpgate/module/store"
)

// The codes: how many digits they may have, and have by default.
const (
	MinCodeLength     = 6
	MaxCodeLength     = 10
	DefaultCodeLength = 6
)

// Defaults of Config: what a zero field means.
const (
	DefaultCodeTTL        = 5 * time.Minute
	DefaultMaxAttempts    = 5
	DefaultResendAfter    = 30 * time.Second
	DefaultFailureLockout = 100 // NIST 800-63B
	DefaultFailureTTL     = 24 * time.Hour
	DefaultLockoutBase    = 15 * time.Minute
	DefaultLockoutMax     = 24 * time.Hour
	DefaultRosterPoll     = 5 * time.Second
	DefaultAccessTTL      = time.Hour
	DefaultRefreshTTL     = 720 * time.Hour
	DefaultRefreshReuse   = 10 * time.Second
	DefaultAnnounceRetry  = time.Second
	DefaultIssuer         = "otpgate"
	DefaultAudience       = "authenticated"
	DefaultAppName        = "otpgate"
)

// Default send limits.
var (
	DefaultPhoneLimit = store.Limit{N: 3, Window: 5 * time.Minute}
	DefaultIPLimit    = store.Limit{N: 10, Window: 10 * time.Minute}
)

// MaxAccessTTL bounds AccessTTL: revocations are replayed to reconnecting
// instances for 25 hours.
const MaxAccessTTL = 24 * time.Hour

// MinServiceKey is the shortest service key accepted: like an HS256
// secret, it must not be guessable.
const MinServiceKey = 32

// Config is everything the gateway needs. A zero setting takes its
// default (WithDefaults); Validate checks the settings as they will run.
type Config struct {
	Store  store.Store
	Sender sender.Sender
	// Tokens and Secret are read through the Gateway afterwards (Rekey
	// may replace them): never through its cfg.
	Tokens *session.Tokens

	// Secret keys the code MACs and the pseudonymous user keys. Every
	// instance sharing a store must use the same secret (>= 32 bytes).
	Secret []byte

	Logger  *zap.Logger
	Metrics *Metrics

	CodeLength  int           // digits, MinCodeLength..MaxCodeLength; default DefaultCodeLength
	CodeTTL     time.Duration // default DefaultCodeTTL
	MaxAttempts int           // wrong codes per challenge; default DefaultMaxAttempts
	// ResendAfter is the wait before another code may be sent to a phone;
	// default DefaultResendAfter, or none with NoResendWait.
	ResendAfter  time.Duration
	NoResendWait bool
	PhoneLimit   store.Limit // sends per phone; the zero Limit: DefaultPhoneLimit
	IPLimit      store.Limit // sends per client IP; the zero Limit: DefaultIPLimit
	// FailureLockout is the number of consecutive failed verifies per
	// phone that lock it out; FailureTTL how long failures (and locks)
	// are remembered; LockoutBase the first lock, each further one twice
	// the one before, up to LockoutMax.
	FailureLockout int
	FailureTTL     time.Duration
	LockoutBase    time.Duration
	LockoutMax     time.Duration

	Policy     phone.Policy
	TestPhones map[string]string // E.164 -> fixed code
	CreateUser bool
	Captcha    *captcha.Verifier

	// OpenSignup lets a phone that is not a known user become one when the
	// request (or CreateUser) asks for it. Closed (false): only known users
	// and listed phones sign in.
	OpenSignup bool
	// Roster is the users list (nil: nobody is listed).
	Roster *Roster
	// RosterPoll is how often a users file is checked for changes.
	RosterPoll time.Duration
	// Inactivity ends a session unused for this long; 0: never.
	Inactivity time.Duration
	// ServiceKey enables the Supabase admin routes under the API prefix
	// for requests that carry it as a bearer token ("": no such routes).
	ServiceKey string

	AccessTTL  time.Duration // at most MaxAccessTTL
	RefreshTTL time.Duration // longer than AccessTTL
	// RefreshReuse is how long a used refresh token may be used again
	// (concurrent tabs); default DefaultRefreshReuse, or no grace with
	// NoReuseGrace (any reuse revokes the session).
	RefreshReuse time.Duration
	NoReuseGrace bool
	CookieDomain string
	AppName      string
	Issuer       string
	Audience     string
	// PublicURL ("https://auth.example.com") is the scheme and host the
	// outside world reaches this server at, when a proxy in front changes
	// them; providers are given callback URLs on it (sender.Origin).
	// Default: the request's own.
	PublicURL string
	// MessageTemplates are message texts ({app}, {code}) by language
	// ("fr", "pt-BR"), chosen by a send request's language; other
	// requests get the sender's template (message_template).
	MessageTemplates map[string]string

	// AnnounceRetry is how often revocations whose announcement failed are
	// announced again.
	AnnounceRetry time.Duration

	// Now is the clock; default time.Now.
	Now func() time.Time
	// Sleep waits for d unless ctx ends first; used to give unknown
	// phones the timing of real sends. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration)
}

// WithDefaults returns c with every zero setting at its default.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.CodeLength == 0 {
		c.CodeLength = DefaultCodeLength
	}
	def(&c.CodeTTL, DefaultCodeTTL)
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if !c.NoResendWait {
		def(&c.ResendAfter, DefaultResendAfter)
	}
	if c.PhoneLimit == (store.Limit{}) {
		c.PhoneLimit = DefaultPhoneLimit
	}
	if c.IPLimit == (store.Limit{}) {
		c.IPLimit = DefaultIPLimit
	}
	if c.FailureLockout == 0 {
		c.FailureLockout = DefaultFailureLockout
	}
	def(&c.FailureTTL, DefaultFailureTTL)
	def(&c.LockoutBase, DefaultLockoutBase)
	def(&c.LockoutMax, DefaultLockoutMax)
	def(&c.RosterPoll, DefaultRosterPoll)
	def(&c.AccessTTL, DefaultAccessTTL)
	def(&c.RefreshTTL, DefaultRefreshTTL)
	if !c.NoReuseGrace {
		def(&c.RefreshReuse, DefaultRefreshReuse)
	}
	def(&c.AnnounceRetry, DefaultAnnounceRetry)
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.AppName == "" {
		c.AppName = DefaultAppName
	}
	return c
}

// Validate checks the settings of c as they will run, its defaults
// applied, and reports every problem. Each error names the Caddyfile
// option at fault ("otp length: must be 6..10 (got 11)"). The parts New
// is given to work with (Store, Sender, Tokens, Secret) are New's to
// check.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.CodeLength < MinCodeLength || c.CodeLength > MaxCodeLength {
		add("otp length: must be %d..%d (got %d)", MinCodeLength, MaxCodeLength, c.CodeLength)
	}
	if c.CodeTTL < 0 {
		add("otp ttl: must be positive (got %v)", c.CodeTTL)
	}
	if c.MaxAttempts < 0 {
		add("otp max_attempts: must be > 0 (got %d)", c.MaxAttempts)
	}
	switch {
	case c.ResendAfter < 0:
		add("otp resend_after: must not be negative (got %v)", c.ResendAfter)
	case c.NoResendWait && c.ResendAfter != 0:
		add("otp resend_after: a wait of %v, yet no wait asked for", c.ResendAfter)
	}
	for _, l := range []struct {
		name  string
		limit store.Limit
	}{{"limit phone", c.PhoneLimit}, {"limit ip", c.IPLimit}} {
		if l.limit.N <= 0 {
			add("%s: events must be > 0 (got %d)", l.name, l.limit.N)
		}
		if l.limit.Window <= 0 {
			add("%s: window must be > 0 (got %v)", l.name, l.limit.Window)
		}
	}
	if c.FailureLockout < 0 {
		add("failure lockout: must be > 0 (got %d)", c.FailureLockout)
	}
	if c.FailureTTL < 0 || c.LockoutBase < 0 {
		add("lockout: durations must be positive (failures remembered %v, first lock %v)", c.FailureTTL, c.LockoutBase)
	}
	if c.LockoutMax < c.LockoutBase {
		add("lockout: the longest lock (%v) must not be shorter than the first (%v)", c.LockoutMax, c.LockoutBase)
	}
	if c.RosterPoll < 0 || c.AnnounceRetry < 0 {
		add("gateway: roster poll and announce retry must be positive (got %v and %v)", c.RosterPoll, c.AnnounceRetry)
	}

	for _, region := range c.Policy.Countries {
		if !phone.ValidRegion(region) {
			add("countries: unknown region %q (want an ISO 3166-1 alpha-2 code such as US)", region)
		}
	}
	// a test phone is checked as a send to it is: the number as the
	// runtime parses it, then the countries policy
	for _, number := range slices.Sorted(maps.Keys(c.TestPhones)) {
		if !e164.MatchString(number) {
			add("test_phone: %q is not an E.164 number (want + then 7 to 15 digits)", number)
		} else if num, err := phone.Parse(number); err != nil {
			why := strings.TrimSuffix(err.Error(), ": "+phone.ErrInvalid.Error())
			add("test_phone: %q would be refused when a code is requested (%s)", number, why)
		} else if err := c.Policy.Allow(num); err != nil {
			add("test_phone: %q would be refused when a code is requested (%v)", number, err)
		}
		if code := c.TestPhones[number]; !isDigits(code) {
			add("test_phone %s: code must be digits only", number)
		} else if len(code) != c.CodeLength {
			add("test_phone %s: code must have otp length %d digits (got %d)", number, c.CodeLength, len(code))
		}
	}

	if v := c.Captcha; v != nil {
		switch {
		case v.Provider == "":
			add("captcha: provider is required (turnstile, hcaptcha or recaptcha)")
		case !captcha.ValidProvider(v.Provider):
			add("captcha: unknown provider %q (want turnstile, hcaptcha or recaptcha)", v.Provider)
		}
		if v.Secret == "" {
			add("captcha: secret is required")
		}
		if err := checkHTTPURL(v.VerifyURL); err != nil {
			add("captcha verify_url: %v", err)
		}
	}

	if c.AccessTTL < 0 {
		add("access_ttl: must be positive (got %v)", c.AccessTTL)
	}
	if c.AccessTTL > MaxAccessTTL {
		add("access_ttl: must be at most %gh (got %v)", MaxAccessTTL.Hours(), c.AccessTTL)
	}
	if c.RefreshTTL < 0 {
		add("refresh_ttl: must be positive (got %v)", c.RefreshTTL)
	}
	if c.AccessTTL > 0 && c.RefreshTTL > 0 && c.RefreshTTL <= c.AccessTTL {
		add("refresh_ttl: must be longer than access_ttl (%v <= %v)", c.RefreshTTL, c.AccessTTL)
	}
	switch {
	case c.RefreshReuse < 0:
		add("refresh_reuse_interval: must not be negative (got %v)", c.RefreshReuse)
	case c.NoReuseGrace && c.RefreshReuse != 0:
		add("refresh_reuse_interval: a grace of %v, yet no grace asked for", c.RefreshReuse)
	}
	if c.Inactivity < 0 {
		add("inactivity_timeout: must not be negative (got %v)", c.Inactivity)
	}

	if d := c.CookieDomain; d != "" && !domainName.MatchString(strings.TrimPrefix(d, ".")) {
		add("cookie_domain: %q is not a domain name (want e.g. example.com, no scheme or port)", d)
	}
	for _, lang := range slices.Sorted(maps.Keys(c.MessageTemplates)) {
		if _, err := language.Parse(lang); err != nil || strings.ContainsAny(lang, "_ ") {
			add("message_template %s: %q is not a language tag such as fr or pt-BR", lang, lang)
		} else if !strings.Contains(c.MessageTemplates[lang], "{code}") {
			add("message_template %s: must contain {code}", lang)
		}
	}
	if err := checkHTTPURL(c.PublicURL); err != nil {
		add("public_url: %v", err)
	}
	if k := c.ServiceKey; k != "" && len(k) < MinServiceKey {
		add("service_key: must be at least %d bytes (got %d)", MinServiceKey, len(k))
	}
	return errors.Join(errs...)
}

var (
	e164       = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	domainName = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)
)

// checkHTTPURL accepts an empty value or an absolute http(s) URL without
// credentials, query or fragment.
func checkHTTPURL(raw string) error {
	if raw == "" {
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
