// Package gateway is otpgate's engine, free of Caddy: the phone-OTP API
// (send, verify, resend), sessions (tokens, refresh, logout) and the gate
// in front of upstream apps. The Caddy adapter in the parent package turns
// configuration into a Config and calls a Site from its ServeHTTP.
package gateway

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/session"
	"github.com/otpgate/otpgate/module/store"
)

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

// New fills cfg's defaults, checks it (Validate, and the parts it is
// given to work with) and returns a Gateway. Call Start to follow the
// revocation feed and Stop when done.
func New(cfg Config) (*Gateway, error) {
	if cfg.Store == nil || cfg.Sender == nil || cfg.Tokens == nil {
		return nil, errors.New("gateway: store, sender and tokens are required")
	}
	if len(cfg.Secret) < 32 {
		return nil, errors.New("gateway: secret must be at least 32 bytes")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
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

// Stop ends the feed and waits for it.
func (g *Gateway) Stop() {
	g.stopOnce.Do(func() {
		if g.cancel != nil {
			g.cancel()
			<-g.done
		}
	})
}
