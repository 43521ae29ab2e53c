package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// The subtests of Challenge, the read of the pending code.

var challengeTests = []test{
	{"Challenge_None_NotFound", testChallengeNone},
	{"Challenge_Expired_StillReturned", testChallengeExpired},
	{"Challenge_Failures_AcrossChallenges", testChallengeFailuresAcross},
}

func getChallenge(t *testing.T, s store.Store, u store.UserKey) (store.Challenge, bool, int) {
	t.Helper()
	c, ok, failures, err := s.Challenge(t.Context(), u)
	if err != nil {
		t.Fatalf("Challenge: %v", err)
	}
	return c, ok, failures
}

func wantChallengeID(t *testing.T, s store.Store, u store.UserKey, id string) store.Challenge {
	t.Helper()
	c, ok, _ := getChallenge(t, s, u)
	if !ok {
		t.Fatalf("Challenge: none, want %s", id)
	}
	if c.ID != id {
		t.Fatalf("Challenge ID = %s, want %s", c.ID, id)
	}
	return c
}

func wantNoChallenge(t *testing.T, s store.Store, u store.UserKey) {
	t.Helper()
	if c, ok, _ := getChallenge(t, s, u); ok {
		t.Fatalf("Challenge: found %s, want none", c.ID)
	}
}

func sameChallenge(t *testing.T, what string, got, want store.Challenge) {
	t.Helper()
	if got.ID != want.ID || !bytes.Equal(got.CodeMAC, want.CodeMAC) || got.Phone != want.Phone ||
		got.Channel != want.Channel || got.CreateUser != want.CreateUser ||
		!bytes.Equal(got.Metadata, want.Metadata) || got.Origin != want.Origin || !got.SentAt.Equal(want.SentAt) ||
		!got.ExpiresAt.Equal(want.ExpiresAt) || got.Attempts != want.Attempts {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testChallengeNone(t *testing.T, s store.Store) {
	_, ok, failures := getChallenge(t, s, alice)
	if ok || failures != 0 {
		t.Fatalf("Challenge found=%v failures=%d, want false 0", ok, failures)
	}
}

func testChallengeExpired(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	c := wantChallengeID(t, s, alice, "c1") // read long after its ExpiresAt
	if !c.ExpiresAt.Equal(at(codeTTL)) {
		t.Fatalf("ExpiresAt = %v, want %v", c.ExpiresAt, at(codeTTL))
	}
}

func testChallengeFailuresAcross(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	attempt(t, s, alice, 5, at(time.Second))
	attempt(t, s, alice, 5, at(2*time.Second))
	wantSent(t, s, sendReq(alice, "c2", at(time.Minute)))
	_, ok, failures := getChallenge(t, s, alice)
	if !ok || failures != 2 {
		t.Fatalf("Challenge found=%v failures=%d, want true 2", ok, failures)
	}
	if _, _, f := getChallenge(t, s, bob); f != 0 {
		t.Fatalf("bob's failures = %d, want 0", f)
	}
}
