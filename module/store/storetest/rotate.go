package storetest

import (
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// The subtests of Rotate: refresh tokens, siblings and reuse.

var rotateTests = []test{
	{"Rotate_ActiveToken_NewActiveOldUsed", testRotateActive},
	{"Rotate_ReuseWithinInterval_Sibling", testRotateSibling},
	{"Rotate_ReuseAfterInterval_RevokesSession", testRotateReuse},
	{"Rotate_ZeroInterval_AnyReuseRevokes", testRotateZeroInterval},
	{"Rotate_UnknownToken_NotFound", testRotateUnknown},
	{"Rotate_ExpiredSession_NotFound", testRotateExpired},
	{"Rotate_RevokedSession_NotFound", testRotateRevoked},
	{"Rotate_OtherPersonsToken_NotFound", testRotateOtherPerson},
}

func rotate(t *testing.T, s store.Store, u store.UserKey, oldHash, newHash string, interval time.Duration, now time.Time) store.RotateResult {
	t.Helper()
	res, err := s.Rotate(t.Context(), store.RotateRequest{
		User: u, OldHash: oldHash, NewHash: newHash, Now: now, ReuseInterval: interval,
	})
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	return res
}

func wantRotate(t *testing.T, res store.RotateResult, want store.RotateStatus) {
	t.Helper()
	if res.Status != want {
		t.Fatalf("Rotate status = %d, want %d", res.Status, want)
	}
}

func testRotateActive(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	res := rotate(t, s, alice, "rt-s1", "rt-2", 10*time.Second, at(time.Minute))
	wantRotate(t, res, store.RotateOK)
	if res.Session.ID != "s1" || res.Session.User != alice || !res.Session.Active(at(time.Minute)) {
		t.Fatalf("Session = %+v", res.Session)
	}
	if res.User.ID != "user-s1" || res.User.Phone != phone {
		t.Fatalf("User = %+v", res.User)
	}
	// The new token is active: it rotates at any later time.
	wantRotate(t, rotate(t, s, alice, "rt-2", "rt-3", 10*time.Second, at(time.Hour)), store.RotateOK)
	// The old one is used: far beyond the interval it is a reuse.
	wantRotate(t, rotate(t, s, alice, "rt-s1", "rt-4", 10*time.Second, at(time.Hour)), store.RotateReused)
}

func testRotateSibling(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	wantRotate(t, rotate(t, s, alice, "rt-s1", "rt-a", 10*time.Second, at(time.Minute)), store.RotateOK)
	// a second tab presents the same token 10s later: still within the interval
	res := rotate(t, s, alice, "rt-s1", "rt-b", 10*time.Second, at(time.Minute+10*time.Second))
	wantRotate(t, res, store.RotateOK)
	if res.Session.ID != "s1" {
		t.Fatalf("Session = %s, want s1", res.Session.ID)
	}
	// both siblings are active
	wantRotate(t, rotate(t, s, alice, "rt-a", "rt-a2", 10*time.Second, at(time.Minute+10*time.Second)), store.RotateOK)
	wantRotate(t, rotate(t, s, alice, "rt-b", "rt-b2", 10*time.Second, at(time.Minute+10*time.Second)), store.RotateOK)
	// the grace runs from the first use, not the latest sibling
	wantRotate(t, rotate(t, s, alice, "rt-s1", "rt-c", 10*time.Second, at(time.Minute+11*time.Second)), store.RotateReused)
}

func testRotateReuse(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	wantRotate(t, rotate(t, s, alice, "rt-s1", "rt-2", 10*time.Second, at(time.Minute)), store.RotateOK)
	reuse := at(time.Minute + 10*time.Second + time.Millisecond)
	res := rotate(t, s, alice, "rt-s1", "rt-x", 10*time.Second, reuse)
	wantRotate(t, res, store.RotateReused)
	if res.Session.ID != "s1" || !res.Session.RevokedAt.Equal(reuse) {
		t.Fatalf("Session = %+v, want s1 revoked at %v", res.Session, reuse)
	}
	if sess := getSession(t, s, alice, "s1"); !sess.RevokedAt.Equal(reuse) {
		t.Fatalf("stored RevokedAt = %v, want %v", sess.RevokedAt, reuse)
	}
	// every token of the session is dead, including the innocent successor
	wantRotate(t, rotate(t, s, alice, "rt-2", "rt-3", 10*time.Second, reuse), store.RotateNotFound)
	wantRotate(t, rotate(t, s, alice, "rt-x", "rt-4", 10*time.Second, reuse), store.RotateNotFound)
}

func testRotateZeroInterval(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	wantRotate(t, rotate(t, s, alice, "rt-s1", "rt-2", 0, at(time.Minute)), store.RotateOK)
	wantRotate(t, rotate(t, s, alice, "rt-s1", "rt-3", 0, at(time.Minute)), store.RotateReused)
}

func testRotateUnknown(t *testing.T, s store.Store) {
	wantRotate(t, rotate(t, s, alice, "rt-none", "rt-2", time.Minute, at(0)), store.RotateNotFound)
	login(t, s, alice, "s1", at(0))
	wantRotate(t, rotate(t, s, alice, "rt-none", "rt-2", time.Minute, at(0)), store.RotateNotFound)
}

func testRotateExpired(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	sess := getSession(t, s, alice, "s1")
	wantRotate(t, rotate(t, s, alice, "rt-s1", "rt-2", time.Minute, sess.ExpiresAt), store.RotateNotFound)
	wantRotate(t, rotate(t, s, alice, "rt-s1", "rt-2", time.Minute, sess.ExpiresAt.Add(-time.Millisecond)), store.RotateOK)
}

func testRotateRevoked(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	revoke(t, s, alice, store.RevokeOne, "s1", at(time.Second))
	wantRotate(t, rotate(t, s, alice, "rt-s1", "rt-2", time.Minute, at(2*time.Second)), store.RotateNotFound)
}

func testRotateOtherPerson(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	wantRotate(t, rotate(t, s, bob, "rt-s1", "rt-2", time.Minute, at(time.Second)), store.RotateNotFound)
	wantRotate(t, rotate(t, s, alice, "rt-s1", "rt-2", time.Minute, at(time.Second)), store.RotateOK)
}
