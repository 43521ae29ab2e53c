// Package gateway is otpgate's engine, free of Caddy: the phone-OTP API
// (send, verify, resend), sessions (tokens, refresh, logout) and the gate
// in front of upstream apps. The Caddy adapter in the parent package turns
// configuration into a Config and calls a Site from its ServeHTTP.
package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/captcha"
	"github.com/otpgate/otpgate/module/phone"
	"github.com/otpgate/otpgate/module/sender"
	"github.com/otpgate/otpgate/module/session"
	"github.com/otpgate/otpgate/module/store"
)

// Config is everything the gateway needs. Zero durations and counts take
// the documented defaults in New.
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

	CodeLength     int           // 6
	CodeTTL        time.Duration // 5m
	MaxAttempts    int           // 5
	ResendAfter    time.Duration // 30s; negative disables
	PhoneLimit     store.Limit   // 3 per 5m
	IPLimit        store.Limit   // 10 per 10m
	FailureLockout int           // consecutive failed verifies per phone that lock it out: 100 (NIST 800-63B)
	FailureTTL     time.Duration // how long failures (and locks) are remembered: 24h
	LockoutBase    time.Duration // the first lock: 15m; each further one twice the one before
	LockoutMax     time.Duration // the longest lock: 24h

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
	// Default: 5s.
	RosterPoll time.Duration
	// Inactivity ends a session unused for this long; 0: never.
	Inactivity time.Duration
	// ServiceKey enables the Supabase admin routes under the API prefix
	// for requests that carry it as a bearer token ("": no such routes).
	ServiceKey string

	AccessTTL     time.Duration // 1h
	RefreshTTL    time.Duration // 720h
	RefreshReuse  time.Duration // 10s; negative: no grace
	CookieDomain  string
	AppName       string
	Issuer        string
	Audience      string
	PlivoCallback PlivoCallbacks
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
	// announced again. Default: 1s.
	AnnounceRetry time.Duration

	// Now is the clock; default time.Now.
	Now func() time.Time
	// Sleep waits for d unless ctx ends first; used to give unknown
	// phones the timing of real sends. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration)
}

// PlivoCallbacks serves Plivo's delivery reports, inbound messages and
// voice answer URLs.
type PlivoCallbacks interface {
	ServeStatus(w http.ResponseWriter, r *http.Request)
	ServeInbound(w http.ResponseWriter, r *http.Request)
	// ServeVoice answers the fetch of a voice call's answer URL.
	ServeVoice(w http.ResponseWriter, r *http.Request)
}

// Gateway is one otpgate instance's engine, shared by all sites.
type Gateway struct {
	cfg      Config
	log      *zap.Logger
	now      func() time.Time
	cache    *session.Cache
	changes  *changeLog
	audit    *zap.Logger
	rosterCh chan struct{}
	feedOK   atomic.Bool
	epoch    atomic.Int64 // the store's epoch (unix ms) at the feed's last connection
	refused  *refusals    // send limits the store said are full, until their Retry-After
	sendEWMA atomic.Int64 // nanoseconds; typical provider latency
	keys     atomic.Pointer[keySet]

	// pending holds revocations stored but not yet announced (the feed's
	// log lives in another slot, which can fail on its own); they are
	// announced again until it works, so other instances learn of them.
	pendingMu sync.Mutex
	pending   map[string]time.Time
	// repairs holds people whose revocations may be stored but never
	// announced (a revoke whose reply was lost); see revocations.go.
	repairs     map[store.UserKey]struct{}
	reannounced map[string]time.Time // session ID -> when this instance last announced it again

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
}

// New checks cfg, fills defaults and returns a Gateway. Call Start to
// follow the revocation feed and Stop when done.
func New(cfg Config) (*Gateway, error) {
	if cfg.Store == nil || cfg.Sender == nil || cfg.Tokens == nil {
		return nil, errors.New("gateway: store, sender and tokens are required")
	}
	if len(cfg.Secret) < 32 {
		return nil, errors.New("gateway: secret must be at least 32 bytes")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if cfg.CodeLength == 0 {
		cfg.CodeLength = 6
	}
	if cfg.CodeLength < 6 || cfg.CodeLength > 10 {
		return nil, fmt.Errorf("gateway: code length %d not in 6..10", cfg.CodeLength)
	}
	def(&cfg.CodeTTL, 5*time.Minute)
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 5
	}
	def(&cfg.ResendAfter, 30*time.Second)
	if cfg.ResendAfter < 0 {
		cfg.ResendAfter = 0
	}
	if cfg.PhoneLimit.N == 0 {
		cfg.PhoneLimit = store.Limit{N: 3, Window: 5 * time.Minute}
	}
	if cfg.IPLimit.N == 0 {
		cfg.IPLimit = store.Limit{N: 10, Window: 10 * time.Minute}
	}
	if cfg.FailureLockout == 0 {
		cfg.FailureLockout = 100
	}
	def(&cfg.FailureTTL, 24*time.Hour)
	def(&cfg.LockoutBase, 15*time.Minute)
	def(&cfg.LockoutMax, 24*time.Hour)
	if cfg.LockoutMax < cfg.LockoutBase {
		return nil, errors.New("gateway: the longest lockout must not be shorter than the first")
	}
	def(&cfg.AnnounceRetry, time.Second)
	def(&cfg.RosterPoll, 5*time.Second)
	if cfg.Inactivity < 0 {
		return nil, errors.New("gateway: inactivity timeout must not be negative")
	}
	def(&cfg.AccessTTL, time.Hour)
	def(&cfg.RefreshTTL, 720*time.Hour)
	def(&cfg.RefreshReuse, 10*time.Second)
	if cfg.RefreshReuse < 0 {
		cfg.RefreshReuse = 0
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "otpgate"
	}
	if cfg.Audience == "" {
		cfg.Audience = "authenticated"
	}
	if cfg.AppName == "" {
		cfg.AppName = "otpgate"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = func(ctx context.Context, d time.Duration) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	}
	g := &Gateway{
		cfg:      cfg,
		log:      cfg.Logger,
		audit:    cfg.Logger.Named("audit"),
		now:      cfg.Now,
		cache:    session.NewCache(0),
		changes:  newChangeLog(),
		rosterCh: make(chan struct{}, 1),
		pending:  map[string]time.Time{},

		refused:     newRefusals(),
		repairs:     map[store.UserKey]struct{}{},
		reannounced: map[string]time.Time{},
	}
	g.sendEWMA.Store(int64(300 * time.Millisecond))
	g.keys.Store(&keySet{secret: cfg.Secret, tokens: cfg.Tokens})
	return g, nil
}

// keySet is the server secret and the token keys, replaced together.
type keySet struct {
	secret []byte
	tokens *session.Tokens
}

// Rekey replaces the server secret and the token keys. The Caddy adapter
// provisions with values it generated when storage held none (provisioning
// writes nothing) and, at start, adopts those of an instance that stored
// its own first.
func (g *Gateway) Rekey(secret []byte, tokens *session.Tokens) error {
	if len(secret) < 32 || tokens == nil {
		return errors.New("gateway: rekey: a secret of at least 32 bytes and tokens are required")
	}
	g.keys.Store(&keySet{secret: secret, tokens: tokens})
	return nil
}

func (g *Gateway) tokens() *session.Tokens { return g.keys.Load().tokens }

// JWKS is the public half of the keys the gateway signs with now.
func (g *Gateway) JWKS() []byte { return g.tokens().JWKS() }

// Start follows the store's revocation feed until Stop. Until the feed
// is healthy the gate checks every session in the store (and fails closed
// when the store does not answer).
func (g *Gateway) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.done = make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		g.cfg.Store.Subscribe(ctx, g.revocationRetain(), feedHandler{g})
	}()
	go func() {
		defer wg.Done()
		g.retryAnnouncements(ctx)
	}()
	go func() {
		defer wg.Done()
		g.followRoster(ctx)
	}()
	go func() {
		wg.Wait()
		close(g.done)
	}()
}

// announce publishes revocations on the feed, or keeps them to announce
// again: a revocation other instances never hear of would let them accept
// the session's access tokens until they expire.
func (g *Gateway) announce(ctx context.Context, ids []string, at time.Time) {
	if len(ids) == 0 {
		return
	}
	if err := g.cfg.Store.Announce(context.WithoutCancel(ctx), ids, at); err != nil {
		g.log.Error("revocation stored but not announced yet; will retry", zap.Error(err), zap.Int("sessions", len(ids)))
		g.pendingMu.Lock()
		for _, id := range ids {
			g.pending[id] = at
		}
		g.pendingMu.Unlock()
	}
}

func (g *Gateway) retryAnnouncements(ctx context.Context) {
	t := time.NewTicker(g.cfg.AnnounceRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.retryRepairs(ctx)
		g.pendingMu.Lock()
		if len(g.pending) == 0 {
			g.pendingMu.Unlock()
			continue
		}
		ids := make([]string, 0, len(g.pending))
		oldest := g.now()
		for id, at := range g.pending {
			ids = append(ids, id)
			if at.Before(oldest) {
				oldest = at
			}
		}
		g.pendingMu.Unlock()
		if err := g.cfg.Store.Announce(ctx, ids, oldest); err != nil {
			continue
		}
		g.pendingMu.Lock()
		for _, id := range ids {
			delete(g.pending, id)
		}
		g.pendingMu.Unlock()
		g.log.Info("revocations announced after retry", zap.Int("sessions", len(ids)))
	}
}

// Stop ends the feed and waits for it.
func (g *Gateway) Stop() {
	g.stopOnce.Do(func() {
		if g.cancel != nil {
			g.cancel()
			<-g.done
		}
	})
}

// lockout is the per-phone lock after failed verifies: it grows with each
// lock (15 minutes, then 30, ... up to a day by default), so that someone
// who knows a number cannot keep its owner out for long with a few wrong
// guesses, while guessing stays bounded.
func (g *Gateway) lockout() store.Lockout {
	return store.Lockout{After: g.cfg.FailureLockout, Base: g.cfg.LockoutBase, Max: g.cfg.LockoutMax, Memory: g.cfg.FailureTTL}
}

// revocationRetain is how long revocations matter: an access token issued
// before its session was revoked lives at most AccessTTL (+ skew).
func (g *Gateway) revocationRetain() time.Duration {
	return g.cfg.AccessTTL + time.Minute
}

type feedHandler struct{ g *Gateway }

func (f feedHandler) Revoked(ids []string) {
	g := f.g
	now := g.now()
	sessions := ids[:0:0]
	for _, id := range ids {
		switch {
		case strings.HasPrefix(id, userChangePrefix):
			if uid, at, ok := parseUserChange(id); ok {
				g.changes.mark(uid, at, now, g.revocationRetain())
			}
		case strings.HasPrefix(id, rosterChange):
			g.RosterChanged()
		default:
			sessions = append(sessions, id)
		}
	}
	g.cache.Revoke(sessions, now.Add(g.revocationRetain()))
}

// Epoch: a store whose data began after this gateway last looked (Redis
// restarted empty, a flush) has lost the sessions and revocations that
// tokens were trusted against, so every token issued or checked before
// now is checked in the store again before it passes (the store now says
// whether its session exists). At the first connection, tokens issued
// before the store's data began are checked once (a memory store after a
// restart, a Redis that lost its data before this gateway started).
func (f feedHandler) Epoch(began time.Time) {
	g := f.g
	prev := g.epoch.Swap(began.UnixMilli())
	switch {
	case prev == began.UnixMilli():
	case prev != 0:
		g.log.Warn("the store lost its data (a new epoch began): every session is checked in the store again",
			zap.Time("epoch", began), zap.Time("previous_epoch", time.UnixMilli(prev)))
		g.changes.distrustBefore(g.now(), g.revocationRetain())
	default:
		// measured on the wall clock, applied to the gateway's own (JWT
		// times have whole seconds: a second of slack)
		if age := time.Since(began); age < g.revocationRetain() {
			floor := g.now().Add(-age - time.Second)
			g.changes.raiseFloor(floor, floor, g.revocationRetain())
		}
	}
}

func (f feedHandler) Healthy(ok bool) {
	if f.g.feedOK.Swap(ok) != ok {
		f.g.log.Info("revocation feed", zap.Bool("healthy", ok))
		f.g.cfg.Metrics.feedHealthy(ok)
	}
}

// userKey is the pseudonymous key of a phone: stable under one secret,
// and reveals nothing about the number without it.
func (g *Gateway) userKey(e164 string) store.UserKey {
	m := hmac.New(sha256.New, g.keys.Load().secret)
	m.Write([]byte("otpgate user\x00"))
	m.Write([]byte(e164))
	return store.UserKey(base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16]))
}

// codeMAC binds a code to its challenge and phone.
func (g *Gateway) codeMAC(challengeID, e164, code string) []byte {
	m := hmac.New(sha256.New, g.keys.Load().secret)
	m.Write([]byte("otpgate code\x00"))
	m.Write([]byte(challengeID))
	m.Write([]byte{0})
	m.Write([]byte(e164))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}
