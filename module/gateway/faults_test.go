package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/sender"
	"github.com/otpgate/otpgate/module/store"
	"github.com/otpgate/otpgate/module/store/memstore"
)

// Stores and senders that fail the way real ones do.

// quietFeed wraps a store: its revocation feed reports healthy and then
// delivers nothing (a lost pub/sub message), and it can be switched down so
// that every state call fails like an unreachable Redis.
type quietFeed struct {
	store.Store
	down           atomic.Bool
	revokeAnnounce bool // Revoke succeeds in the store but the publish fails
}

var errDown = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

func (q *quietFeed) Subscribe(ctx context.Context, _ time.Duration, h store.FeedHandler) {
	h.Healthy(true)
	<-ctx.Done()
}

func (q *quietFeed) Revoke(ctx context.Context, u store.UserKey, scope store.RevokeScope, sid string, now time.Time) ([]string, error) {
	if q.down.Load() {
		return nil, errDown
	}
	ids, err := q.Store.Revoke(ctx, u, scope, sid, now)
	if err == nil && q.revokeAnnounce && len(ids) > 0 {
		// exactly what redisstore.Revoke returns when PUBLISH fails after
		// the revoke script ran
		return ids, errors.New("announce: i/o timeout")
	}
	return ids, err
}

func (q *quietFeed) Session(ctx context.Context, u store.UserKey, sid string) (store.Session, bool, error) {
	if q.down.Load() {
		return store.Session{}, false, errDown
	}
	return q.Store.Session(ctx, u, sid)
}

func (q *quietFeed) Access(ctx context.Context, u store.UserKey, sid string) (store.Session, bool, store.User, bool, error) {
	if q.down.Load() {
		return store.Session{}, false, store.User{}, false, errDown
	}
	return q.Store.Access(ctx, u, sid)
}

func (q *quietFeed) Rotate(ctx context.Context, req store.RotateRequest) (store.RotateResult, error) {
	if q.down.Load() {
		return store.RotateResult{}, errDown
	}
	return q.Store.Rotate(ctx, req)
}

func (q *quietFeed) User(ctx context.Context, u store.UserKey) (store.User, bool, error) {
	if q.down.Load() {
		return store.User{}, false, errDown
	}
	return q.Store.User(ctx, u)
}

// ctxSender is a provider that delivers the message unless the context it
// is given is already cancelled, as plivo-go does with a cancelled request.
type ctxSender struct {
	mu       sync.Mutex
	accepted int
}

func (s *ctxSender) Send(ctx context.Context, m sender.Message) (sender.Result, error) {
	if err := ctx.Err(); err != nil {
		return sender.Result{}, err
	}
	s.mu.Lock()
	s.accepted++
	s.mu.Unlock()
	return sender.Result{MessageID: "11111111-2222-3333-4444-555555555555"}, nil
}

func (s *ctxSender) Supports(ch string) bool { return ch == sender.SMS }

func (s *ctxSender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// flakyAnnounce stores revocations but fails to announce them the first
// times, as Redis does when the feed's slot is failing over.
type flakyAnnounce struct {
	store.Store
	mu        sync.Mutex
	fails     int
	announced []string
}

func (f *flakyAnnounce) Revoke(ctx context.Context, u store.UserKey, scope store.RevokeScope, sid string, now time.Time) ([]string, error) {
	ids, err := f.Store.Revoke(ctx, u, scope, sid, now)
	if err != nil {
		return ids, err
	}
	return ids, fmt.Errorf("announce: %w", store.ErrUnavailable)
}

func (f *flakyAnnounce) Announce(ctx context.Context, ids []string, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return fmt.Errorf("announce: %w", store.ErrUnavailable)
	}
	f.announced = append(f.announced, ids...)
	return nil
}

// invalidHits answers every Hit with store.ErrInvalid, as a store does for
// a request no correct caller makes.
type invalidHits struct{ store.Store }

func (invalidHits) Hit(context.Context, string, int, time.Duration, time.Time) (store.Decision, error) {
	return store.Decision{}, fmt.Errorf("hit: %w: limit window under 1ms", store.ErrInvalid)
}

// A store refusing a request as invalid is a bug in the caller, answered
// 500, not an outage (503 would invite clients to retry it for ever).
func TestStoreError_InvalidRequest_500NotUnavailable(t *testing.T) {
	e := newEnv(t, invalidHits{memstore.New()})
	wantError(t, e.send(alice), 500, "unexpected_failure")
}
