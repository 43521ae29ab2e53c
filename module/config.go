package otpgate

import (
	"encoding/json"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/gateway"
	"github.com/otpgate/otpgate/module/sender"
)

// App is the global `otpgate` app: the state store, the code sender and the
// rules shared by every site that uses the `otpgate` handler. Every field is
// optional.
type App struct {
	// Store selects where state lives. Default: the embedded memory store
	// (one instance only).
	Store *StoreConfig `json:"store,omitempty"`

	// SMS is the sender module that delivers codes, named by its "type":
	// "console" (default: logs the message instead of sending it;
	// development only), "plivo", "webhook", or any other module in the
	// otpgate.senders namespace.
	SMS json.RawMessage `json:"sms,omitempty" caddy:"namespace=otpgate.senders inline_key=type"`

	// OTP sets the code's length, lifetime, attempts and resend cooldown.
	OTP *OTPConfig `json:"otp,omitempty"`

	// PhoneLimit is the number of sends allowed per phone number per window.
	// Default: 3 per 5m.
	PhoneLimit *LimitConfig `json:"phone_limit,omitempty"`

	// IPLimit is the number of sends allowed per client IP per window.
	// Default: 10 per 10m.
	IPLimit *LimitConfig `json:"ip_limit,omitempty"`

	// Countries is an allowlist of ISO 3166-1 alpha-2 regions (e.g. "US").
	// Default: every region.
	Countries []string `json:"countries,omitempty"`

	// TestPhones maps E.164 numbers to a fixed code. Nothing is sent to
	// them; otherwise they follow the normal flow. For reviewers and E2E tests.
	TestPhones map[string]string `json:"test_phones,omitempty"`

	// CreateUser is the default for send requests that omit create_user.
	CreateUser bool `json:"create_user,omitempty"`

	// Captcha, when set, requires a captcha token on every send and resend.
	Captcha *CaptchaConfig `json:"captcha,omitempty"`

	// SigningKeyFile is a PEM private key (ECDSA P-256 for ES256, Ed25519
	// for EdDSA or RSA for RS256). Default: a key generated once and kept
	// in Caddy's storage, so every instance that shares storage uses it.
	SigningKeyFile string `json:"signing_key_file,omitempty"`

	// SigningAlg is the algorithm of the generated key when no key file is
	// given: ES256 (default), EdDSA or RS256.
	SigningAlg string `json:"signing_alg,omitempty"`

	// HMACSecret switches signing to HS256 with this secret (at least 32
	// bytes). Asymmetric signing is preferred: upstreams can then verify
	// tokens through JWKS without holding a secret.
	HMACSecret string `json:"hmac_secret,omitempty"`

	// AccessTTL is the lifetime of an access token. Default: 1h.
	AccessTTL caddy.Duration `json:"access_ttl,omitempty"`

	// RefreshTTL is the lifetime of a session's refresh tokens. Default: 720h.
	RefreshTTL caddy.Duration `json:"refresh_ttl,omitempty"`

	// RefreshReuseInterval is how long a used refresh token may be used
	// again (concurrent tabs). After it, reuse revokes the whole session.
	// Default: 10s. 0s: any reuse revokes.
	RefreshReuseInterval *caddy.Duration `json:"refresh_reuse_interval,omitempty"`

	// CookieDomain shares the session cookies across subdomains of this
	// domain. Without it the cookies use the __Host- prefix.
	CookieDomain string `json:"cookie_domain,omitempty"`

	// AppName appears in the message text and on the login page.
	// Default: "otpgate".
	AppName string `json:"app_name,omitempty"`

	// MessageTemplate is the text of the SMS. {app} and {code} are
	// replaced. Default: "Your {app} code is {code}".
	MessageTemplate string `json:"message_template,omitempty"`

	// MessageTemplates are message texts by language ("fr", "pt-BR"), for
	// codes asked for from the login page in that language (the language
	// of a request's "language" field). Others get MessageTemplate.
	MessageTemplates map[string]string `json:"message_templates,omitempty"`

	// Issuer is the JWT `iss` claim. Default: "otpgate".
	Issuer string `json:"issuer,omitempty"`

	// Audience is the JWT `aud` claim. Default: "authenticated".
	Audience string `json:"audience,omitempty"`

	// PublicURL is the external base URL (scheme://host) used to check Plivo
	// callback signatures when a proxy in front of Caddy changes the host or
	// scheme. Default: the URL of the request as Caddy sees it.
	PublicURL string `json:"public_url,omitempty"`

	// Signup is "closed" (default: only known users sign in: users in the
	// store and phones in Users) or "open" (the request's create_user,
	// default CreateUser, decides, as in Supabase).
	Signup string `json:"signup,omitempty"`

	// Users lists the phones that may sign in, each with its roles, inline
	// and/or in a file that is re-read when it changes.
	Users *UsersConfig `json:"users,omitempty"`

	// InactivityTimeout ends a session unused for this long. 0: never.
	InactivityTimeout caddy.Duration `json:"inactivity_timeout,omitempty"`

	// ServiceKey enables the Supabase-compatible admin routes under each
	// site's api_prefix for requests that carry it as a bearer token (at
	// least 32 bytes). Usually {env.OTPGATE_SERVICE_KEY}.
	ServiceKey string `json:"service_key,omitempty"`

	logger   *zap.Logger
	snd      sender.Sender
	storeKey string
	gw       *gateway.Gateway
	// callbacks are the routes a sender serves under each site's
	// api_prefix for its provider (Plivo's callbacks), reporting to gw
	callbacks map[string]http.Handler
	settings  gateway.Config // the engine's settings as provisioned, defaults applied
	roster    *gateway.Roster
	listed    map[string][]string // the users list and test phones, as provisioned
	applied   *appliedList        // shared across reloads; nil until provisioned
	// appliedGen is this config's generation in applied once started
	appliedGen uint64
	// shared is what provisioning read (or generated, when storage had
	// none yet) of the state every instance must agree on; Start stores
	// what was generated, since `caddy validate` provisions but must
	// write nothing
	shared sharedState
	pos    fieldPos // where a Caddyfile wrote each field, for its errors
}

// UsersConfig is the `users` option: phones that may sign in under closed
// sign-up, with the roles the list gives them.
type UsersConfig struct {
	// Phones maps E.164 numbers to their roles (an empty list: no roles).
	Phones map[string][]string `json:"phones,omitempty"`

	// File is a users file: one "+E164 role role" per line, blank lines
	// and # comments ignored. It is re-read when it changes; when it cannot
	// be read or parsed, the last good list stays in force. Placeholders
	// such as {env.USERS_FILE} are expanded.
	File string `json:"file,omitempty"`
}

// StoreConfig selects the state backend.
type StoreConfig struct {
	// Type is "memory" or "redis".
	Type string `json:"type"`

	// URL is the Redis address: redis://[user:pass@]host:port/db,
	// rediss:// for TLS, redis://host1:port,host2:port?cluster=true for a
	// cluster, or redis-sentinel://host:port,host:port/db?master=name for
	// Sentinel. Placeholders such as {env.REDIS_URL} are expanded.
	URL string `json:"url,omitempty"`
}

// PlivoConfig configures delivery through Plivo (the sender module
// otpgate.senders.plivo).
type PlivoConfig struct {
	// AuthID is the Plivo auth ID. Usually {env.PLIVO_AUTH_ID}.
	AuthID string `json:"auth_id"`

	// AuthToken is the Plivo auth token. Usually {env.PLIVO_AUTH_TOKEN}.
	AuthToken string `json:"auth_token"`

	// From is the sender number or ID. Exactly one of From and
	// PowerpackUUID is required.
	From string `json:"from,omitempty"`

	// PowerpackUUID sends through a Plivo Powerpack instead of From.
	PowerpackUUID string `json:"powerpack_uuid,omitempty"`

	// APIURL overrides Plivo's API base URL (regional endpoints, tests).
	// Default: https://api.plivo.com/
	APIURL string `json:"api_url,omitempty"`

	// StatusURL is where Plivo posts delivery reports for each message,
	// e.g. https://app.example.com/auth/v1/plivo/status. Plivo sends them
	// only to the URL given with the message. Default: none.
	StatusURL string `json:"status_url,omitempty"`

	// Timeout bounds one provider call. Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// WhatsAppTemplate enables channel "whatsapp" with this approved
	// authentication template.
	WhatsAppTemplate *WhatsAppTemplate `json:"whatsapp_template,omitempty"`

	// VoiceFrom, a voice-capable number of the Plivo account (E.164),
	// enables channel "voice": Plivo calls the phone and speaks the code.
	VoiceFrom string `json:"voice_from,omitempty"`

	// DLTEntityID is the principal entity ID registered on India's DLT
	// platform, sent with every SMS.
	DLTEntityID string `json:"dlt_entity_id,omitempty"`

	// DLTTemplateID is the DLT ID of the approved template the message
	// text matches, sent with every SMS.
	DLTTemplateID string `json:"dlt_template_id,omitempty"`

	// DLTTemplateCategory is that template's category: transactional,
	// service_implicit, service_explicit or promotional.
	DLTTemplateCategory string `json:"dlt_template_category,omitempty"`
}

// WebhookConfig configures delivery through a webhook of yours (the
// sender module otpgate.senders.webhook): a POST of Supabase's Send SMS
// hook payload, signed per Standard Webhooks.
type WebhookConfig struct {
	// URL receives the POSTs.
	URL string `json:"url"`

	// Secret is the Standard Webhooks secret, "whsec_<base64>". Usually
	// {env.OTPGATE_HOOK_SECRET}.
	Secret string `json:"secret"`

	// Timeout bounds one POST. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Channels the receiver delivers. Default: ["sms"].
	Channels []string `json:"channels,omitempty"`
}

// WhatsAppTemplate names an approved WhatsApp template.
type WhatsAppTemplate struct {
	Name     string `json:"name"`
	Language string `json:"language"`
}

// OTPConfig shapes the codes.
type OTPConfig struct {
	// Length is the number of digits, 6..10. Default: 6.
	Length int `json:"length,omitempty"`

	// TTL is how long a code is valid. Default: 5m.
	TTL caddy.Duration `json:"ttl,omitempty"`

	// MaxAttempts is the number of wrong codes per challenge before it is
	// destroyed. Default: 5.
	MaxAttempts int `json:"max_attempts,omitempty"`

	// ResendAfter is the cooldown before a new code may be sent to the
	// same phone. Default: 30s. 0s disables the cooldown.
	ResendAfter *caddy.Duration `json:"resend_after,omitempty"`
}

// LimitConfig is N events per window.
type LimitConfig struct {
	Events int            `json:"events"`
	Window caddy.Duration `json:"window"`
}

// CaptchaConfig checks a captcha token with the provider's siteverify.
type CaptchaConfig struct {
	// Provider is "turnstile", "hcaptcha" or "recaptcha".
	Provider string `json:"provider"`

	// Secret is the provider's secret key.
	Secret string `json:"secret"`

	// VerifyURL overrides the provider's siteverify URL.
	VerifyURL string `json:"verify_url,omitempty"`
}

// Handler is the `otpgate` HTTP handler: it serves the auth API and the
// login page, and gates every other request behind a session.
type Handler struct {
	// APIPrefix is where the auth API is served. Default: /auth/v1
	APIPrefix string `json:"api_prefix,omitempty"`

	// LoginPath is where the login page is served. Default: /auth/login
	LoginPath string `json:"login_path,omitempty"`

	// Public lists paths let through without a session (Caddy path
	// matcher syntax: exact, prefix*, *suffix).
	Public []string `json:"public,omitempty"`

	// Gate set to false serves the auth routes only and lets every other
	// request through. Default: true.
	Gate *bool `json:"gate,omitempty"`

	// AppName overrides the app's name on this site's login page.
	AppName string `json:"app_name,omitempty"`

	// AccentColor is the login page's accent colour (CSS hex, e.g. #4f46e5).
	AccentColor string `json:"accent_color,omitempty"`

	// LoginTemplate is a file that replaces the whole login page (Go
	// html/template; see the README for its variables).
	LoginTemplate string `json:"login_template,omitempty"`

	// DefaultCountry is the login page's initial country (ISO 3166-1
	// alpha-2, e.g. GB). Default: the region of the visitor's preferred
	// language, when the countries option allows it.
	DefaultCountry string `json:"default_country,omitempty"`

	// Language forces the language of the login and no-access pages (en,
	// es, fr, de, pt-BR, hi, id, ar, zh-CN). Default: the visitor's
	// Accept-Language.
	Language string `json:"language,omitempty"`

	// Roles, when set, lets through only sessions holding one of these
	// roles; other signed-in users get 403 no_access.
	Roles []string `json:"roles,omitempty"`

	// CORSOrigins lists origins (scheme://host[:port]) whose single-page
	// apps may call the auth API with credentials: their preflight is
	// answered and their cross-site requests are admitted. Every other
	// origin stays refused.
	CORSOrigins []string `json:"cors_origins,omitempty"`

	site *gateway.Site
	pos  fieldPos // where a Caddyfile wrote each field, for its errors
}
