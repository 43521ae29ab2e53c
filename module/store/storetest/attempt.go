package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// The subtests of Attempt: every attempt counted before its code is
// compared, and lockouts.

var attemptTests = []test{
	{"Attempt_CountedBeforeCompare", testAttemptCountsBeforeCompare},
	{"Attempt_HasUser", testAttemptHasUser},
	{"Attempt_MaxAttempts_ThenNoChallenge", testAttemptMaxAttempts},
	{"Attempt_NoChallenge_RecordsNothing", testAttemptNoChallenge},
	{"Attempt_Expired_RecordsNothing", testAttemptExpired},
	{"Attempt_AfterKeep_NoChallenge", testAttemptAfterKeep},
	{"Attempt_NewChallenge_FreshAttemptsFailuresGoOn", testAttemptNewChallenge_FreshAttempts},
	{"Attempt_Failures_ForgottenMemoryAfterLast", testAttemptFailureMemory},
	{"Attempt_Lockout_DoublesUpToMax_NothingCountedWhileLocked", testAttemptLockout_GrowsToMax},
	{"Attempt_Lockout_ForgottenAfterQuietMemory", testAttemptLockout_ForgottenAfterMemory},
	{"Attempt_Invalid_RefusedNotUnavailable", testAttemptInvalid},
}

// lockout locks a person out after 10 failures, for 15 minutes, then 30,
// then 60 at most.
var lockout = store.Lockout{After: 10, Base: 15 * time.Minute, Max: time.Hour, Memory: failureTTL}

func attemptReq(u store.UserKey, maxAttempts int, now time.Time) store.AttemptRequest {
	return store.AttemptRequest{User: u, Now: now, MaxAttempts: maxAttempts, Lockout: lockout}
}

// attempt records one verify attempt, which counts as a failure until a
// Consume takes it back.
func attempt(t *testing.T, s store.Store, u store.UserKey, maxAttempts int, now time.Time) store.AttemptResult {
	t.Helper()
	return attemptWith(t, s, attemptReq(u, maxAttempts, now))
}

func attemptWith(t *testing.T, s store.Store, req store.AttemptRequest) store.AttemptResult {
	t.Helper()
	res, err := s.Attempt(t.Context(), req)
	if err != nil {
		t.Fatalf("Attempt: %v", err)
	}
	return res
}

func wantAttempt(t *testing.T, res store.AttemptResult, want store.AttemptStatus) {
	t.Helper()
	if res.Status != want {
		t.Fatalf("Attempt status = %v, want %v (%+v)", res.Status, want, res)
	}
}

// An attempt is recorded before any comparison: it returns the challenge
// with this attempt counted, and the person's failures already include it.
func testAttemptCountsBeforeCompare(t *testing.T, s store.Store) {
	sent := wantSent(t, s, sendReq(alice, "c1", at(0)))
	res := attempt(t, s, alice, 3, at(time.Second))
	wantAttempt(t, res, store.AttemptOK)
	want := sent.Challenge
	want.Attempts = 1
	sameChallenge(t, "attempted challenge", res.Challenge, want)
	if res.Failures != 1 || res.Locked != 0 || res.Challenge.HasUser {
		t.Fatalf("Attempt = %+v, want 1 failure, no lock, no user", res)
	}
	c, _, failures := getChallenge(t, s, alice)
	if c.Attempts != 1 || failures != 1 {
		t.Fatalf("stored Attempts=%d failures=%d, want 1 1", c.Attempts, failures)
	}
}

func testAttemptHasUser(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	wantSent(t, s, sendReq(alice, "c2", at(time.Minute)))
	if res := attempt(t, s, alice, 3, at(time.Minute+time.Second)); !res.Challenge.HasUser {
		t.Fatalf("Attempt of a signed-up person: HasUser = false")
	}
}

// MaxAttempts comparisons per challenge: the attempt after the last one
// finds nothing to compare with, and the challenge is gone.
func testAttemptMaxAttempts(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	for i := 1; i <= 3; i++ {
		res := attempt(t, s, alice, 3, at(time.Duration(i)*time.Second))
		wantAttempt(t, res, store.AttemptOK)
		if res.Challenge.Attempts != i || res.Failures != i {
			t.Fatalf("attempt %d = %+v", i, res)
		}
	}
	wantAttempt(t, attempt(t, s, alice, 3, at(4*time.Second)), store.AttemptNoChallenge)
	c, _, failures := getChallenge(t, s, alice)
	if c.Attempts != 3 || failures != 3 {
		t.Fatalf("Challenge attempts=%d failures=%d, want 3 3 (the refused attempt is not counted)", c.Attempts, failures)
	}
	// a resend starts a usable challenge
	wantSent(t, s, sendReq(alice, "c2", at(5*time.Second)))
	wantAttempt(t, attempt(t, s, alice, 3, at(6*time.Second)), store.AttemptOK)
}

func testAttemptNoChallenge(t *testing.T, s store.Store) {
	wantAttempt(t, attempt(t, s, alice, 3, at(0)), store.AttemptNoChallenge)
	if _, _, f := getChallenge(t, s, alice); f != 0 {
		t.Fatalf("failures = %d, want 0: nothing was compared", f)
	}
}

func testAttemptExpired(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	wantAttempt(t, attempt(t, s, alice, 3, at(codeTTL)), store.AttemptExpired)
	c, _, f := getChallenge(t, s, alice)
	if c.Attempts != 0 || f != 0 {
		t.Fatalf("Attempts=%d failures=%d after an expired attempt, want 0 0", c.Attempts, f)
	}
}

func testAttemptAfterKeep(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	wantAttempt(t, attempt(t, s, alice, 3, at(keep)), store.AttemptNoChallenge)
}

// A new challenge (a resend) starts its own attempts; the person's
// failures go on across challenges.
func testAttemptNewChallenge_FreshAttempts(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	attempt(t, s, alice, 1, at(time.Second))
	wantSent(t, s, sendReq(alice, "c2", at(time.Minute)))
	res := attempt(t, s, alice, 1, at(time.Minute+time.Second))
	wantAttempt(t, res, store.AttemptOK)
	if res.Challenge.ID != "c2" || res.Challenge.Attempts != 1 || res.Failures != 2 {
		t.Fatalf("Attempt = %+v, want c2 with 1 attempt and 2 failures", res)
	}
}

func testAttemptFailureMemory(t *testing.T, s store.Store) {
	// a fresh challenge before each attempt: codes live 5 minutes
	try := func(now time.Time) int {
		t.Helper()
		wantSent(t, s, sendReq(alice, "c-"+now.String(), now))
		res := attempt(t, s, alice, 5, now)
		wantAttempt(t, res, store.AttemptOK)
		return res.Failures
	}
	if f := try(at(0)); f != 1 {
		t.Fatalf("failures = %d, want 1", f)
	}
	if f := try(at(59 * time.Minute)); f != 2 {
		t.Fatalf("failures = %d, want 2", f)
	}
	// kept for the memory since the last failure, not the first
	last := at(59*time.Minute + failureTTL - time.Millisecond)
	if f := try(last); f != 3 {
		t.Fatalf("failures = %d, want 3", f)
	}
	if f := try(last.Add(failureTTL)); f != 1 {
		t.Fatalf("failures after a quiet memory = %d, want 1 (a fresh count)", f)
	}
}

// lockOut makes lockout.After failed attempts at now, the last of which
// starts a lock, and returns that lock.
func lockOut(t *testing.T, s store.Store, u store.UserKey, now time.Time) time.Duration {
	t.Helper()
	var res store.AttemptResult
	for i := 0; i < lockout.After; i++ {
		if i%5 == 0 {
			wantSent(t, s, sendReq(u, fmt.Sprintf("lock-%d-%d", now.UnixMilli(), i), now))
		}
		res = attempt(t, s, u, 5, now)
		wantAttempt(t, res, store.AttemptOK)
		if i < lockout.After-1 && res.Locked != 0 {
			t.Fatalf("attempt %d locked the person out: %+v", i+1, res)
		}
	}
	if res.Failures != lockout.After || res.Locked == 0 {
		t.Fatalf("attempt %d = %+v, want a lock", lockout.After, res)
	}
	return res.Locked
}

// The lock grows with repeated lockouts: Base, then twice each time, at
// most Max. While it lasts nothing is compared or counted.
func testAttemptLockout_GrowsToMax(t *testing.T, s store.Store) {
	now := at(0)
	for i, want := range []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour, time.Hour} {
		got := lockOut(t, s, alice, now)
		if got != want {
			t.Fatalf("lock %d = %v, want %v", i+1, got, want)
		}
		res := attempt(t, s, alice, 5, now.Add(time.Second))
		if res.Status != store.AttemptLocked || res.Locked != want-time.Second {
			t.Fatalf("attempt while locked = %+v, want locked for %v more", res, want-time.Second)
		}
		if _, _, f := getChallenge(t, s, alice); f != 0 {
			t.Fatalf("failures while locked = %d, want 0 (counted again from the lock's end)", f)
		}
		now = now.Add(want)
	}
	if res := attempt(t, s, bob, 5, now); res.Status != store.AttemptNoChallenge {
		t.Fatalf("another person's attempt = %+v, want no challenge (not locked)", res)
	}
}

// Locks are forgotten after a quiet memory since the last one ended.
func testAttemptLockout_ForgottenAfterMemory(t *testing.T, s store.Store) {
	first := lockOut(t, s, alice, at(0))
	if second := lockOut(t, s, alice, at(first)); second != 2*first {
		t.Fatalf("second lock = %v, want %v", second, 2*first)
	}
	quiet := at(first + 2*first + lockout.Memory)
	if third := lockOut(t, s, alice, quiet); third != first {
		t.Fatalf("lock after a quiet memory = %v, want %v (the first again)", third, first)
	}
}

func testAttemptInvalid(t *testing.T, s store.Store) {
	for name, req := range map[string]store.AttemptRequest{
		"no user":        {Now: at(0), MaxAttempts: 1, Lockout: lockout},
		"no max":         {User: alice, Now: at(0), Lockout: lockout},
		"no lockout":     {User: alice, Now: at(0), MaxAttempts: 1},
		"base above max": {User: alice, Now: at(0), MaxAttempts: 1, Lockout: store.Lockout{After: 1, Base: time.Hour, Max: time.Minute, Memory: time.Hour}},
	} {
		if _, err := s.Attempt(t.Context(), req); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}
