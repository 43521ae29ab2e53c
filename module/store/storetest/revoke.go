package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// The subtests of Revoke and Reannounce.

var revokeTests = []test{
	{"Revoke_One_OnlyThatSession", testRevokeOne},
	{"Revoke_All_EverySession", testRevokeAll},
	{"Revoke_Others_AllButGiven", testRevokeOthers},
	{"Revoke_AlreadyRevoked_NotReturned", testRevokeAlready},
	{"Revoke_Expired_NotReturned", testRevokeExpired},
	{"Revoke_OtherPersonsSession_Untouched", testRevokeOtherPerson},
	{"Revoke_AnnouncesOnFeed", testRevokeAnnounces},
	{"Reannounce_RecentRevocationsAnnouncedAgain", testReannounce},
}

func revoke(t *testing.T, s store.Store, u store.UserKey, scope store.RevokeScope, id string, now time.Time) []string {
	t.Helper()
	ids, err := s.Revoke(t.Context(), u, scope, id, now)
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	return ids
}

func threeSessions(t *testing.T, s store.Store) {
	t.Helper()
	login(t, s, alice, "s1", at(0))
	login(t, s, alice, "s2", at(time.Second))
	login(t, s, alice, "s3", at(2*time.Second))
}

func wantRevoked(t *testing.T, s store.Store, u store.UserKey, id string, revoked bool) {
	t.Helper()
	if got := !getSession(t, s, u, id).RevokedAt.IsZero(); got != revoked {
		t.Fatalf("session %s revoked = %v, want %v", id, got, revoked)
	}
}

func testRevokeOne(t *testing.T, s store.Store) {
	threeSessions(t, s)
	wantIDs(t, "Revoke one", revoke(t, s, alice, store.RevokeOne, "s2", at(time.Minute)), "s2")
	wantRevoked(t, s, alice, "s1", false)
	wantRevoked(t, s, alice, "s2", true)
	wantRevoked(t, s, alice, "s3", false)
	wantIDs(t, "Revoke unknown", revoke(t, s, alice, store.RevokeOne, "nope", at(time.Minute)))
}

func testRevokeAll(t *testing.T, s store.Store) {
	threeSessions(t, s)
	wantIDs(t, "Revoke all", revoke(t, s, alice, store.RevokeAll, "", at(time.Minute)), "s1", "s2", "s3")
	for _, id := range []string{"s1", "s2", "s3"} {
		wantRevoked(t, s, alice, id, true)
	}
	wantIDs(t, "Revoke all again", revoke(t, s, alice, store.RevokeAll, "", at(2*time.Minute)))
}

func testRevokeOthers(t *testing.T, s store.Store) {
	threeSessions(t, s)
	wantIDs(t, "Revoke others", revoke(t, s, alice, store.RevokeOthers, "s2", at(time.Minute)), "s1", "s3")
	wantRevoked(t, s, alice, "s2", false)
	wantRotate(t, rotate(t, s, alice, "rt-s2", "rt-x", 0, at(time.Minute)), store.RotateOK)
}

func testRevokeAlready(t *testing.T, s store.Store) {
	threeSessions(t, s)
	first := at(time.Minute)
	wantIDs(t, "Revoke one", revoke(t, s, alice, store.RevokeOne, "s1", first), "s1")
	wantIDs(t, "Revoke one again", revoke(t, s, alice, store.RevokeOne, "s1", at(2*time.Minute)))
	wantIDs(t, "Revoke all", revoke(t, s, alice, store.RevokeAll, "", at(3*time.Minute)), "s2", "s3")
	if got := getSession(t, s, alice, "s1").RevokedAt; !got.Equal(first) {
		t.Fatalf("RevokedAt moved to %v, want %v", got, first)
	}
}

func testRevokeExpired(t *testing.T, s store.Store) {
	login(t, s, alice, "old", at(0))
	expires := getSession(t, s, alice, "old").ExpiresAt
	login(t, s, alice, "new", expires.Add(-time.Hour))
	// an expired session is already unusable: nothing to revoke or announce
	wantIDs(t, "Revoke all", revoke(t, s, alice, store.RevokeAll, "", expires), "new")
	wantIDs(t, "Revoke one", revoke(t, s, alice, store.RevokeOne, "old", expires))
}

func testRevokeOtherPerson(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	wantIDs(t, "bob revokes alice's session", revoke(t, s, bob, store.RevokeOne, "s1", at(time.Second)))
	wantIDs(t, "bob revokes all", revoke(t, s, bob, store.RevokeAll, "", at(time.Second)))
	wantRevoked(t, s, alice, "s1", false)
}

func testRevokeAnnounces(t *testing.T, s store.Store) {
	threeSessions(t, s)
	f := Subscribe(t, s, time.Minute)
	f.WaitHealthy(t, true)
	revoke(t, s, alice, store.RevokeOthers, "s1", at(time.Minute))
	f.WaitRevoked(t, "s2", "s3")
	if f.SawRevoked("s1") {
		t.Fatal("feed revoked s1, which Revoke left alone")
	}
}

// Reannounce publishes again what was revoked (for a revocation whose
// announcement was lost): the person's revoked, unexpired sessions of the
// last AnnounceRetention, and no others.
func testReannounce(t *testing.T, s store.Store) {
	login(t, s, alice, "old", at(0))
	revoke(t, s, alice, store.RevokeOne, "old", at(time.Second))
	now := at(store.AnnounceRetention + time.Minute)
	login(t, s, alice, "s1", now.Add(-time.Minute))
	login(t, s, alice, "s2", now.Add(-time.Minute))
	login(t, s, bob, "b1", now.Add(-time.Minute))
	revoke(t, s, bob, store.RevokeOne, "b1", now.Add(-time.Second))
	// a reused refresh token revokes s1 without announcing it (its caller
	// announces), as a revocation whose announcement was lost
	wantRotate(t, rotate(t, s, alice, "rt-s1", "rt-s1b", 0, now.Add(-50*time.Second)), store.RotateOK)
	wantRotate(t, rotate(t, s, alice, "rt-s1", "rt-s1c", 0, now.Add(-40*time.Second)), store.RotateReused)

	f := Subscribe(t, s, time.Minute)
	f.WaitHealthy(t, true)
	if f.SawRevoked("s1") {
		t.Fatal("s1 was announced before Reannounce")
	}
	ids, err := s.Reannounce(t.Context(), alice, now)
	if err != nil {
		t.Fatalf("Reannounce: %v", err)
	}
	wantIDs(t, "Reannounce", ids, "s1")
	f.WaitRevoked(t, "s1")
	if again, err := s.Reannounce(t.Context(), alice, now); err != nil || !slices.Equal(again, ids) {
		t.Fatalf("second Reannounce = %q %v, want the same: announcements are idempotent", again, err)
	}
	if ids, err := s.Reannounce(t.Context(), "nobody-at-all-00000000", now); err != nil || len(ids) != 0 {
		t.Fatalf("Reannounce of a stranger = %q %v, want nothing", ids, err)
	}
}
