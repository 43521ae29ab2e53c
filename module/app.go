// Package otpgate is the Caddy adapter of otpgate: it registers the
// `otpgate` app (global options) and the `otpgate` HTTP handler, and wires
// their configuration to the Caddy-free packages beneath it.
package otpgate

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/captcha"
	"github.com/otpgate/otpgate/module/gateway"
	"github.com/otpgate/otpgate/module/phone"
	"github.com/otpgate/otpgate/module/sender"
	"github.com/otpgate/otpgate/module/sender/plivo"
	"github.com/otpgate/otpgate/module/session"
	"github.com/otpgate/otpgate/module/store"
)

func init() {
	caddy.RegisterModule(&App{})
	caddy.RegisterModule(&Handler{})
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "otpgate",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision builds the engine: store (shared across reloads), sender,
// server secret and signing keys (kept in Caddy storage so all instances
// that share it agree), and the gateway.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	expand := func(s string) string { return repl.ReplaceKnown(s, "") }

	// the settings first, expanded as they will run, and the users list:
	// a mistake in them is a config error, found before anything is opened
	if a.ServiceKey != "" && expand(a.ServiceKey) == "" {
		// set but empty: never a silently disabled key
		return fmt.Errorf("otpgate: service_key: %q expands to nothing", a.ServiceKey)
	}
	settings := a.gatewaySettings(expand).WithDefaults()
	if err := settings.Validate(); err != nil {
		return configError(err)
	}
	keys, err := a.keyConfig(expand)
	if err != nil {
		return err
	}
	roster, err := a.buildRoster(expand)
	if err != nil {
		return err
	}
	a.roster = roster

	st, storeKey, err := acquireStore(a.Store, expand, a.logger)
	if err != nil {
		return err
	}
	a.storeKey = storeKey

	snd, err := a.buildSender(ctx)
	if err != nil {
		return err
	}
	a.snd = snd

	// Provisioning only reads: `caddy validate` provisions too, and must
	// not write a secret or key into storage (nor claim the secret in
	// Redis). What is missing is generated here and stored by Start.
	storage := ctx.Storage()
	secret, found, err := session.Load(ctx, storage, secretPath)
	if err != nil {
		return fmt.Errorf("otpgate: server secret: %w", err)
	}
	if !found {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return fmt.Errorf("otpgate: server secret: %w", err)
		}
	}
	ring, newKey, err := a.keyRing(ctx, storage, keys)
	if err != nil {
		return err
	}

	a.shared = sharedState{ctx: ctx, storage: storage, store: st, secret: secret, newSecret: !found,
		ring: ring, newKey: newKey, issuer: settings.Issuer, audience: settings.Audience}
	metrics := processMetrics()
	if err := metrics.Register(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("otpgate: %w", err)
	}
	cfg := settings
	cfg.Store = st
	cfg.Sender = snd
	cfg.Tokens = session.NewTokens(ring, settings.Issuer, settings.Audience)
	cfg.Secret = secret
	cfg.Logger = a.logger
	cfg.Metrics = metrics
	cfg.Roster = roster
	g, err := gateway.New(cfg)
	if err != nil {
		return configError(err)
	}
	if ps, ok := snd.Sender.(*PlivoSender); ok {
		// read at each use: Start may adopt another instance's secret
		secret := g.ServerSecret
		ps.useSecret(secret)
		cb := &plivo.Callbacks{
			AuthToken: ps.authToken,
			PublicURL: expand(a.PublicURL),
			Secret:    secret,
			Seen:      g.FirstSeenNonce,
			Forget:    g.ForgetNonce,
			OnStatus:  func(ctx context.Context, s plivo.Status) { g.DeliveryReport(ctx, s.Status) },
			OnInbound: g.SetOptOut,
			Logger:    a.logger.Named("plivo"),
		}
		a.callbacks = map[string]http.Handler{
			"/plivo/status":  http.HandlerFunc(cb.ServeStatus),
			"/plivo/inbound": http.HandlerFunc(cb.ServeInbound),
			"/plivo/voice":   http.HandlerFunc(cb.ServeVoice),
		}
	}
	a.gw = g
	a.settings = settings

	// the phones whose access a reload may shrink: the users list and the
	// test phones (listed users too)
	a.listed = roster.Entries()
	for _, p := range slices.Sorted(maps.Keys(a.listed)) {
		if num, err := phone.Parse(p); err == nil && cfg.Policy.Allow(num) != nil {
			a.logger.Warn("users: a listed phone is refused by the countries option (or is a premium-rate or non-geographic number) and cannot sign in",
				zap.String("phone", num.Masked()))
		}
	}
	for p := range cfg.TestPhones {
		if _, ok := a.listed[p]; !ok {
			a.listed[p] = nil
		}
	}
	v, _, err := appliedLists.LoadOrNew(appliedListKey, func() (caddy.Destructor, error) {
		return new(appliedList), nil
	})
	if err != nil {
		return fmt.Errorf("otpgate: %w", err)
	}
	a.applied = v.(*appliedList)
	return nil
}

// buildRoster checks the users option and reads its file, which must be
// readable and valid now.
func (a *App) buildRoster(expand func(string) string) (*gateway.Roster, error) {
	inline := make(map[string][]string)
	file := ""
	if u := a.Users; u != nil {
		for _, p := range slices.Sorted(maps.Keys(u.Phones)) {
			if err := gateway.AddUser(inline, p, u.Phones[p]); err != nil {
				return nil, fmt.Errorf("otpgate: users: %w", err)
			}
		}
		if u.File != "" {
			if file = expand(u.File); file == "" {
				return nil, fmt.Errorf("otpgate: users file: %q expands to nothing", u.File)
			}
		}
	}
	r, err := gateway.NewRoster(inline, file)
	if err != nil {
		return nil, fmt.Errorf("otpgate: %w", err)
	}
	return r, nil
}

// gatewaySettings translates the options into the engine's settings,
// each string passed through value: Provision expands placeholders,
// Validate leaves out what holds one. Zero settings take the engine's
// defaults.
func (a *App) gatewaySettings(value func(string) string) gateway.Config {
	cfg := gateway.Config{
		Policy:           phone.Policy{Countries: expandAll(a.Countries, value)},
		TestPhones:       expandMap(a.TestPhones, value),
		CreateUser:       a.CreateUser,
		OpenSignup:       a.Signup == "open",
		Inactivity:       time.Duration(a.InactivityTimeout),
		ServiceKey:       value(a.ServiceKey),
		AccessTTL:        time.Duration(a.AccessTTL),
		RefreshTTL:       time.Duration(a.RefreshTTL),
		CookieDomain:     value(a.CookieDomain),
		PublicURL:        value(a.PublicURL),
		AppName:          a.AppName,
		Issuer:           a.Issuer,
		Audience:         a.Audience,
		MessageTemplates: a.MessageTemplates,
	}
	if r := a.RefreshReuseInterval; r != nil {
		cfg.RefreshReuse = time.Duration(*r)
		cfg.NoReuseGrace = *r == 0
	}
	if o := a.OTP; o != nil {
		cfg.CodeLength = o.Length
		cfg.CodeTTL = time.Duration(o.TTL)
		cfg.MaxAttempts = o.MaxAttempts
		if r := o.ResendAfter; r != nil {
			cfg.ResendAfter = time.Duration(*r)
			cfg.NoResendWait = *r == 0
		}
	}
	if l := a.PhoneLimit; l != nil {
		cfg.PhoneLimit = store.Limit{N: l.Events, Window: time.Duration(l.Window)}
	}
	if l := a.IPLimit; l != nil {
		cfg.IPLimit = store.Limit{N: l.Events, Window: time.Duration(l.Window)}
	}
	if c := a.Captcha; c != nil {
		cfg.Captcha = &captcha.Verifier{Provider: c.Provider, Secret: value(c.Secret), VerifyURL: value(c.VerifyURL)}
	}
	return cfg
}

// configError is an engine's report on the config, each of its errors
// marked as otpgate's, as Validate's are in a Caddyfile.
func configError(err error) error { return prefixEach("otpgate: ", err) }

// prefixEach puts prefix before each of err's errors (an errors.Join's).
func prefixEach(prefix string, err error) error {
	var errs []error
	for _, e := range flatten(err) {
		errs = append(errs, fmt.Errorf("%s%w", prefix, e))
	}
	return errors.Join(errs...)
}

// buildSender loads the sender module named by the sms option (default:
// console) and renders the message template for it.
func (a *App) buildSender(ctx caddy.Context) (sender.Templated, error) {
	if len(a.SMS) == 0 || string(a.SMS) == "null" {
		a.SMS = json.RawMessage(`{"type":"console"}`)
	}
	if errs := validateSender(a.SMS); len(errs) > 0 {
		return sender.Templated{}, fmt.Errorf("otpgate: %w", errors.Join(errs...))
	}
	mod, err := ctx.LoadModule(a, "SMS")
	if err != nil {
		return sender.Templated{}, fmt.Errorf("otpgate: sms: %w", err)
	}
	s, ok := mod.(sender.Sender)
	if !ok {
		return sender.Templated{}, fmt.Errorf("otpgate: sms: module %T does not implement sender.Sender", mod)
	}
	return sender.Templated{Sender: s, Template: a.MessageTemplate}, nil
}

// keyConfig is the signing key options, expanded and checked.
func (a *App) keyConfig(expand func(string) string) (session.KeyConfig, error) {
	// A secret whose variable is unset must not fall back to a generated
	// key: upstreams expecting that secret or key would break silently.
	if a.HMACSecret != "" && expand(a.HMACSecret) == "" {
		return session.KeyConfig{}, fmt.Errorf("otpgate: hmac_secret: %q expands to nothing", a.HMACSecret)
	}
	if a.SigningKeyFile != "" && expand(a.SigningKeyFile) == "" {
		return session.KeyConfig{}, fmt.Errorf("otpgate: signing_key_file: %q expands to nothing", a.SigningKeyFile)
	}
	keys := session.KeyConfig{HMACSecret: expand(a.HMACSecret), KeyFile: expand(a.SigningKeyFile), Alg: expand(a.SigningAlg)}
	if err := keys.Validate(); err != nil {
		return session.KeyConfig{}, configError(err)
	}
	return keys, nil
}

// keyRing reads the signing keys, writing nothing; generated is true when
// storage holds no key yet and the ring holds a new one for Start to store.
func (a *App) keyRing(ctx context.Context, storage session.Storage, keys session.KeyConfig) (ring session.KeyRing, generated bool, err error) {
	if s := keys.HMACSecret; s != "" {
		k, err := session.HMACKey([]byte(s))
		if err != nil {
			return session.KeyRing{}, false, fmt.Errorf("otpgate: hmac_secret: %w", err)
		}
		return session.KeyRing{Current: k}, false, nil
	}
	if f := keys.KeyFile; f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return session.KeyRing{}, false, fmt.Errorf("otpgate: signing_key_file: %w", err)
		}
		k, err := session.ParsePrivateKeyPEM(pem)
		if err != nil {
			return session.KeyRing{}, false, fmt.Errorf("otpgate: signing_key_file %s: %w", f, err)
		}
		return session.KeyRing{Current: k}, false, nil
	}
	ring, found, err := session.ReadKeyRing(ctx, storage, keys.Alg)
	if err != nil {
		return session.KeyRing{}, false, fmt.Errorf("otpgate: signing key: %w", err)
	}
	if found {
		return ring, false, nil
	}
	k, err := session.GenerateKey(keys.Alg)
	if err != nil {
		return session.KeyRing{}, false, fmt.Errorf("otpgate: signing key: %w", err)
	}
	return session.KeyRing{Current: k}, true, nil
}

// secretPath is the server secret's key in Caddy storage.
const secretPath = "otpgate/secret"

// sharedState is the server secret and signing keys as provisioning found
// them, or generated them when storage held none yet.
type sharedState struct {
	ctx              context.Context
	storage          session.Storage
	store            store.Store
	secret           []byte
	newSecret        bool // generated: Start stores it
	ring             session.KeyRing
	newKey           bool // generated: Start stores it
	issuer, audience string
}

// share stores what provisioning generated; where another instance that
// shares the storage stored its own first (instances starting together
// for the first time), those are adopted, so every instance agrees. Then
// the secret is checked against the one other instances use with the
// store. Runs at Start: validating a config writes nothing.
func (a *App) share() error {
	s := &a.shared
	secret, ring := s.secret, s.ring
	if s.newSecret {
		stored, err := session.LoadOrCreate(s.ctx, s.storage, secretPath, func() ([]byte, error) { return s.secret, nil })
		if err != nil {
			return fmt.Errorf("otpgate: server secret: %w", err)
		}
		secret = stored
	}
	if s.newKey {
		stored, err := session.CreateKeyRing(s.ctx, s.storage, s.ring.Current)
		if err != nil {
			return fmt.Errorf("otpgate: signing key: %w", err)
		}
		ring = stored
	}
	if !bytes.Equal(secret, s.secret) || ring.Current.Kid != s.ring.Current.Kid {
		if err := a.gw.Rekey(secret, session.NewTokens(ring, s.issuer, s.audience)); err != nil {
			return fmt.Errorf("otpgate: %w", err)
		}
		a.logger.Info("adopted the server secret and signing key another instance stored first")
	}
	s.secret, s.ring, s.newSecret, s.newKey = secret, ring, false, false
	return checkSharedSecret(s.ctx, s.store, secret, a.logger)
}

// checkSharedSecret refuses to start an instance whose server secret
// differs from the one other instances on the same store use: their phone
// limits, challenges and sessions would silently not be shared. That
// happens when instances share Redis but not Caddy's storage. A store that
// does not answer now is not a reason to refuse to start.
func checkSharedSecret(ctx context.Context, st store.Store, secret []byte, log *zap.Logger) error {
	sum := sha256.Sum256(append([]byte("otpgate secret fingerprint\x00"), secret...))
	fp := hex.EncodeToString(sum[:8])
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	got, err := st.Claim(cctx, "secret-fingerprint", fp)
	if err != nil {
		log.Warn("could not check the server secret against the store", zap.Error(err))
		return nil
	}
	if got != fp {
		return fmt.Errorf("otpgate: this instance's server secret differs from the one other instances use with this store; " +
			"instances that share Redis must share Caddy's storage (the `storage` global option), which holds otpgate/secret")
	}
	return nil
}

func expandAll(in []string, expand func(string) string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, expand(s))
	}
	return out
}

func expandMap(in map[string]string, expand func(string) string) map[string]string {
	if in == nil {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[expand(k)] = expand(v)
	}
	return out
}

// Start implements caddy.App: the gateway learns which phones lost access
// since the config this one replaces (a reload that lists fewer phones or
// roles: their sessions are checked again and refused), then follows the
// revocation feed. Only Start records the applied list, so `caddy
// validate`, which provisions but never starts, changes nothing.
func (a *App) Start() error {
	if a.gw == nil {
		return nil
	}
	if err := a.share(); err != nil {
		return err
	}
	if strings.HasPrefix(a.storeKey, "redis:") {
		redisLog.follow(a.logger)
	}
	if a.applied != nil {
		lost, gen, first := a.applied.apply(a.listed)
		a.appliedGen = gen
		if len(lost) > 0 {
			a.gw.MarkUnlisted(lost)
		}
		if first && len(a.listed) > 0 {
			// a process that starts with a users list cannot know what
			// an earlier process's list let in
			a.gw.DistrustEarlierTokens()
		}
	}
	a.gw.Start()
	return nil
}

// Stop implements caddy.App. When this config is stopped because another
// app of it failed to start, the list of the config that stays running is
// the applied one again.
func (a *App) Stop() error {
	if a.applied != nil && a.appliedGen != 0 {
		a.applied.unapply(a.appliedGen)
		a.appliedGen = 0
	}
	if a.gw != nil {
		a.gw.Stop()
	}
	return nil
}

// Cleanup releases this config's hold on the shared store and on the
// applied users list.
// (Caddy cleans up the sender module it loaded.)
func (a *App) Cleanup() error {
	if a.applied != nil {
		a.applied = nil
		if _, err := appliedLists.Delete(appliedListKey); err != nil {
			return err
		}
	}
	if a.storeKey != "" {
		_, err := stores.Delete(a.storeKey)
		return err
	}
	return nil
}

// Gateway returns the provisioned engine (for the handler).
func (a *App) Gateway() *gateway.Gateway { return a.gw }

func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "***" + u[i:]
		}
	}
	return u
}

var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
