package memstore

import (
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/store"
	"github.com/otpgate/otpgate/module/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := New()
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// fakeWall is a settable wall clock for the lifetimes the interface gives no
// `now` for.
type fakeWall struct {
	mu sync.Mutex
	t  time.Time
}

func (w *fakeWall) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.t
}

func (w *fakeWall) advance(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t = w.t.Add(d)
}

func newWithWall() (*Store, *fakeWall) {
	w := &fakeWall{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := New()
	s.clock = w.now
	return s, w
}

func TestFirstSeen_AfterTTL_TrueAgain(t *testing.T) {
	s, w := newWithWall()
	ctx := t.Context()
	if ok, _ := s.FirstSeen(ctx, "n", time.Minute); !ok {
		t.Fatal("first: want true")
	}
	w.advance(time.Minute - time.Millisecond)
	if ok, _ := s.FirstSeen(ctx, "n", time.Minute); ok {
		t.Fatal("within ttl: want false")
	}
	w.advance(time.Millisecond)
	if ok, _ := s.FirstSeen(ctx, "n", time.Minute); !ok {
		t.Fatal("after ttl: want true")
	}
}

// Challenge takes no `now`: a failure count must still end, by the wall
// clock, the way a Redis key TTL ends it.
func TestChallenge_FailuresLapseByWallClock(t *testing.T) {
	s, w := newWithWall()
	ctx := t.Context()
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	send := store.SendRequest{User: "u", Now: now, Keep: 10 * time.Minute, PhoneLimit: store.Limit{N: 3, Window: 5 * time.Minute},
		Challenge: store.Challenge{ID: "c", Phone: "+12015550123", ExpiresAt: now.Add(5 * time.Minute)}}
	if _, err := s.BeginSend(ctx, send); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Attempt(ctx, store.AttemptRequest{User: "u", Now: now, MaxAttempts: 5,
		Lockout: store.Lockout{After: 100, Base: time.Minute, Max: time.Hour, Memory: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if _, _, f, _ := s.Challenge(ctx, "u"); f != 1 {
		t.Fatalf("failures = %d, want 1", f)
	}
	w.advance(time.Hour)
	if _, _, f, _ := s.Challenge(ctx, "u"); f != 0 {
		t.Fatalf("failures after failure ttl = %d, want 0", f)
	}
}

func TestSweep_DropsPeopleAndLimitsWithNothingLeft(t *testing.T) {
	s, w := newWithWall()
	ctx := t.Context()
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	req := store.SendRequest{
		User: "u", Now: now, Keep: 10 * time.Minute, Cooldown: 30 * time.Second,
		PhoneLimit: store.Limit{N: 3, Window: 5 * time.Minute},
		Challenge:  store.Challenge{ID: "c", Phone: "+12015550123", ExpiresAt: now.Add(5 * time.Minute)},
	}
	if res, err := s.BeginSend(ctx, req); err != nil || res.Status != store.SendOK {
		t.Fatalf("BeginSend = %v, %v", res.Status, err)
	}
	if _, err := s.Hit(ctx, "ip:x", 10, 10*time.Minute, now); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOptOut(ctx, "stopped", true, now); err != nil {
		t.Fatal(err)
	}
	w.advance(11 * time.Minute)
	if _, err := s.FirstSeen(ctx, "trigger", time.Second); err != nil { // any write sweeps
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.people["u"]; ok {
		t.Error("person with only expired records kept")
	}
	if _, ok := s.people["stopped"]; !ok {
		t.Error("opted-out person dropped: an opt-out never expires")
	}
	if len(s.limits) != 0 {
		t.Errorf("%d expired limit logs kept", len(s.limits))
	}
}
