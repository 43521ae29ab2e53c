package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// The subtests of the revocation feed: Subscribe and Announce.

var subscribeTests = []test{
	{"Subscribe_HealthyThenAnnouncementsDelivered", testSubscribeHealthy},
	{"Subscribe_RevokeSeenBySecondSubscriber", testSubscribeSecond},
	{"Subscribe_ReplaysRecent_BeforeHealthy", testSubscribeReplay},
	{"Subscribe_OlderThanRetain_NotReplayed", testSubscribeNoOldReplay},
	{"Subscribe_ReturnsWhenContextDone", testSubscribeReturns},
	{"Subscribe_ReportsEpochBeforeHealthy", testSubscribeEpoch},
}

func announce(t *testing.T, s store.Store, now time.Time, ids ...string) {
	t.Helper()
	if err := s.Announce(t.Context(), ids, now); err != nil {
		t.Fatalf("Announce: %v", err)
	}
}

func testSubscribeHealthy(t *testing.T, s store.Store) {
	f := Subscribe(t, s, time.Minute)
	f.WaitHealthy(t, true)
	announce(t, s, time.Now(), "s1", "s2")
	f.WaitRevoked(t, "s1", "s2")
	announce(t, s, time.Now())
	announce(t, s, time.Now(), "s3")
	f.WaitRevoked(t, "s3")
	for _, e := range f.History {
		if e.Revoked != nil && len(e.Revoked) == 0 {
			t.Fatal("empty Revoked call")
		}
	}
}

func testSubscribeSecond(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	f1 := Subscribe(t, s, time.Minute)
	f2 := Subscribe(t, s, time.Minute)
	f1.WaitHealthy(t, true)
	f2.WaitHealthy(t, true)
	revoke(t, s, alice, store.RevokeOne, "s1", at(time.Minute))
	f1.WaitRevoked(t, "s1")
	f2.WaitRevoked(t, "s1")
}

func testSubscribeReplay(t *testing.T, s store.Store) {
	announce(t, s, time.Now().Add(-10*time.Second), "s1")
	announce(t, s, time.Now(), "s2")
	f := Subscribe(t, s, time.Minute)
	f.WaitHealthy(t, true)
	if !f.SawRevoked("s1", "s2") {
		t.Fatalf("feed before Healthy(true) = %+v, want the replay of s1 and s2", f.History)
	}
}

func testSubscribeNoOldReplay(t *testing.T, s store.Store) {
	announce(t, s, time.Now().Add(-2*time.Minute), "old")
	f := Subscribe(t, s, time.Minute)
	f.WaitHealthy(t, true)
	announce(t, s, time.Now(), "new")
	f.WaitRevoked(t, "new")
	if f.SawRevoked("old") {
		t.Fatal("an announcement older than retain was replayed")
	}
}

func testSubscribeReturns(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	f := &Feed{events: make(chan FeedEvent, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Subscribe(ctx, time.Minute, f)
	}()
	f.WaitHealthy(t, true)
	cancel()
	select {
	case <-done:
	case <-time.After(FeedTimeout):
		t.Fatal("Subscribe did not return after its context ended")
	}
}

// Every connection reports the store's epoch before it is healthy, and
// the epoch of a store that keeps its data stays the same.
func testSubscribeEpoch(t *testing.T, s store.Store) {
	f := Subscribe(t, s, time.Minute)
	f.WaitHealthy(t, true)
	epochs := f.Epochs()
	if len(epochs) != 1 || epochs[0].IsZero() || epochs[0].After(time.Now()) {
		t.Fatalf("epochs before healthy = %v, want one, in the past", epochs)
	}
	g := Subscribe(t, s, time.Minute)
	g.WaitHealthy(t, true)
	if other := g.Epochs(); len(other) != 1 || !other[0].Equal(epochs[0]) {
		t.Fatalf("second subscriber's epochs = %v, want %v", other, epochs)
	}
}
