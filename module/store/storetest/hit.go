package storetest

import (
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// The subtests of Hit: a sliding log per limit key and shape.

var hitTests = []test{
	{"Hit_AllowsUpToLimit_ThenRefusesWithRetryAfter", testHitAllowsUpToLimit},
	{"Hit_RefusedHitNotRecorded", testHitRefusedNotRecorded},
	{"Hit_SlidingWindow_OldestLeaves", testHitSlidingWindow},
	{"Hit_KeysIndependent", testHitKeysIndependent},
	{"Hit_ZeroLimit_RefusesAll", testHitZeroLimit},
	{"Hit_LimitsOfOtherShapesOnOneKey_Independent", testHitShapesIndependent},
}

func hit(t *testing.T, s store.Store, key string, limit int, window time.Duration, now time.Time) store.Decision {
	t.Helper()
	d, err := s.Hit(t.Context(), key, limit, window, now)
	if err != nil {
		t.Fatalf("Hit: %v", err)
	}
	return d
}

func wantDecision(t *testing.T, what string, got store.Decision, allowed bool, remaining int, retry time.Duration) {
	t.Helper()
	want := store.Decision{Allowed: allowed, Remaining: remaining, RetryAfter: retry}
	if got != want {
		t.Fatalf("%s: %+v, want %+v", what, got, want)
	}
}

func testHitAllowsUpToLimit(t *testing.T, s store.Store) {
	wantDecision(t, "1st", hit(t, s, "ip:192.0.2.1", 3, time.Minute, at(0)), true, 2, 0)
	wantDecision(t, "2nd", hit(t, s, "ip:192.0.2.1", 3, time.Minute, at(10*time.Second)), true, 1, 0)
	wantDecision(t, "3rd", hit(t, s, "ip:192.0.2.1", 3, time.Minute, at(20*time.Second)), true, 0, 0)
	// the first event leaves the window at 60s
	wantDecision(t, "4th", hit(t, s, "ip:192.0.2.1", 3, time.Minute, at(30*time.Second)), false, 0, 30*time.Second)
}

func testHitRefusedNotRecorded(t *testing.T, s store.Store) {
	wantDecision(t, "first", hit(t, s, "k", 1, time.Minute, at(0)), true, 0, 0)
	wantDecision(t, "refused", hit(t, s, "k", 1, time.Minute, at(30*time.Second)), false, 0, 30*time.Second)
	// Had the refusal been recorded, it would still be in the window.
	wantDecision(t, "after window", hit(t, s, "k", 1, time.Minute, at(time.Minute)), true, 0, 0)
}

func testHitSlidingWindow(t *testing.T, s store.Store) {
	w := time.Minute
	hit(t, s, "k", 2, w, at(0))
	hit(t, s, "k", 2, w, at(40*time.Second))
	wantDecision(t, "full", hit(t, s, "k", 2, w, at(50*time.Second)), false, 0, 10*time.Second)
	wantDecision(t, "oldest left exactly at window end", hit(t, s, "k", 2, w, at(60*time.Second)), true, 0, 0)
	wantDecision(t, "full again", hit(t, s, "k", 2, w, at(70*time.Second)), false, 0, 30*time.Second)
	wantDecision(t, "one left", hit(t, s, "k", 2, w, at(100*time.Second)), true, 0, 0)
}

func testHitKeysIndependent(t *testing.T, s store.Store) {
	hit(t, s, "ip:192.0.2.1", 1, time.Minute, at(0))
	wantDecision(t, "other key", hit(t, s, "ip:192.0.2.2", 1, time.Minute, at(0)), true, 0, 0)
	wantDecision(t, "same key", hit(t, s, "ip:192.0.2.1", 1, time.Minute, at(0)), false, 0, time.Minute)
}

func testHitZeroLimit(t *testing.T, s store.Store) {
	wantDecision(t, "limit 0", hit(t, s, "k", 0, time.Minute, at(0)), false, 0, time.Minute)
}

// Two limits on one key (two sites sharing a store, each counting the same
// IP) keep separate logs: a shorter window does not trim the events a
// longer one counts, nor do the other's events use up its budget.
func testHitShapesIndependent(t *testing.T, s store.Store) {
	hit(t, s, "ip:203.0.113.7", 2, 10*time.Minute, at(0))
	hit(t, s, "ip:203.0.113.7", 2, 10*time.Minute, at(0))
	wantDecision(t, "other shape", hit(t, s, "ip:203.0.113.7", 100, time.Minute, at(90*time.Second)), true, 99, 0)
	wantDecision(t, "first shape still full", hit(t, s, "ip:203.0.113.7", 2, 10*time.Minute, at(2*time.Minute)), false, 0, 8*time.Minute)
}
