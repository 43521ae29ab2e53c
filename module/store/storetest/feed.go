package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// FeedTimeout bounds every wait for the feed: generous, since it only
// matters when a test is about to fail.
const FeedTimeout = 10 * time.Second

// FeedEvent is one call a store made on its FeedHandler.
type FeedEvent struct {
	Healthy *bool     // set for Healthy calls
	Revoked []string  // set for Revoked calls
	Epoch   time.Time // set for Epoch calls
}

// Feed is a FeedHandler that records what a Subscribe delivers, for tests.
type Feed struct {
	events  chan FeedEvent
	History []FeedEvent // every event taken by a Wait, in order
}

// Subscribe runs s.Subscribe(retain) on a new Feed until the test ends, and
// waits for it to return then.
func Subscribe(t testing.TB, s store.Store, retain time.Duration) *Feed {
	f := &Feed{events: make(chan FeedEvent, 4096)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Subscribe(ctx, retain, f)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(FeedTimeout):
			t.Errorf("Subscribe did not return within %v of its context ending", FeedTimeout)
		}
	})
	return f
}

// Revoked implements store.FeedHandler.
func (f *Feed) Revoked(ids []string) { f.events <- FeedEvent{Revoked: slices.Clone(ids)} }

// Healthy implements store.FeedHandler.
func (f *Feed) Healthy(ok bool) { f.events <- FeedEvent{Healthy: &ok} }

// Epoch implements store.FeedHandler.
func (f *Feed) Epoch(began time.Time) { f.events <- FeedEvent{Epoch: began} }

// Epochs lists the epochs reported in the events taken so far, in order.
func (f *Feed) Epochs() []time.Time {
	var out []time.Time
	for _, e := range f.History {
		if !e.Epoch.IsZero() {
			out = append(out, e.Epoch)
		}
	}
	return out
}

func (f *Feed) next(t testing.TB, what string) FeedEvent {
	t.Helper()
	select {
	case e := <-f.events:
		f.History = append(f.History, e)
		return e
	case <-time.After(FeedTimeout):
		t.Fatalf("feed: no event within %v while waiting for %s", FeedTimeout, what)
		return FeedEvent{}
	}
}

// WaitHealthy takes events until Healthy(want).
func (f *Feed) WaitHealthy(t testing.TB, want bool) {
	t.Helper()
	for {
		if e := f.next(t, "healthy"); e.Healthy != nil && *e.Healthy == want {
			return
		}
	}
}

// WaitRevoked takes events until every id has been seen revoked (counting
// events already taken).
func (f *Feed) WaitRevoked(t testing.TB, ids ...string) {
	t.Helper()
	for !f.SawRevoked(ids...) {
		f.next(t, "revoked "+strings.Join(ids, ","))
	}
}

// SawRevoked reports whether the events taken so far revoked every id.
func (f *Feed) SawRevoked(ids ...string) bool {
	for _, id := range ids {
		seen := false
		for _, e := range f.History {
			if slices.Contains(e.Revoked, id) {
				seen = true
				break
			}
		}
		if !seen {
			return false
		}
	}
	return true
}
