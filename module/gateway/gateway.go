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
	FailureLockout int           // consecutive failed verifies per phone: 100 (NIST 800-63B)
	FailureTTL     time.Duration // how long failures are remembered: 24h

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

	// AnnounceRetry is how often revocations whose announcement failed are
	// announced again. Default: 1s.
	AnnounceRetry time.Duration

	// Now is the clock; default time.Now.
	Now func() time.Time
	// Sleep waits for d unless ctx ends first; used to give unknown
	// phones the timing of real sends. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration)
}

// PlivoCallbacks serves Plivo's delivery reports and inbound messages.
type PlivoCallbacks interface {
	ServeStatus(w http.ResponseWriter, r *http.Request)
	ServeInbound(w http.ResponseWriter, r *http.Request)
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
	sendEWMA atomic.Int64 // nanoseconds; typical provider latency

	// pending holds revocations stored but not yet announced (the feed's
	// log lives in another slot, which can fail on its own); they are
	// announced again until it works, so other instances learn of them.
	pendingMu sync.Mutex
	pending   map[string]time.Time

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
	}
	g.sendEWMA.Store(int64(300 * time.Millisecond))
	return g, nil
}

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

func (f feedHandler) Healthy(ok bool) {
	if f.g.feedOK.Swap(ok) != ok {
		f.g.log.Info("revocation feed", zap.Bool("healthy", ok))
		f.g.cfg.Metrics.feedHealthy(ok)
	}
}

// userKey is the pseudonymous key of a phone: stable under one secret,
// and reveals nothing about the number without it.
func (g *Gateway) userKey(e164 string) store.UserKey {
	m := hmac.New(sha256.New, g.cfg.Secret)
	m.Write([]byte("otpgate user\x00"))
	m.Write([]byte(e164))
	return store.UserKey(base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16]))
}

// codeMAC binds a code to its challenge and phone.
func (g *Gateway) codeMAC(challengeID, e164, code string) []byte {
	m := hmac.New(sha256.New, g.cfg.Secret)
	m.Write([]byte("otpgate code\x00"))
	m.Write([]byte(challengeID))
	m.Write([]byte{0})
	m.Write([]byte(e164))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}
