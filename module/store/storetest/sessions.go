package storetest

import (
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// The subtests of Session, the read of one session.

var sessionTests = []test{
	{"Session_Unknown_NotFound", testSessionUnknown},
	{"Session_RevokedAndExpired_StillReturned", testSessionRevokedExpired},
}

func getSession(t *testing.T, s store.Store, u store.UserKey, id string) store.Session {
	t.Helper()
	sess, ok, err := s.Session(t.Context(), u, id)
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	if !ok {
		t.Fatalf("Session %s not found", id)
	}
	return sess
}

func testSessionUnknown(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	if _, ok, err := s.Session(t.Context(), alice, "nope"); err != nil || ok {
		t.Fatalf("Session: found=%v err=%v, want not found", ok, err)
	}
	if _, ok, err := s.Session(t.Context(), bob, "s1"); err != nil || ok {
		t.Fatalf("another person's Session: found=%v err=%v, want not found", ok, err)
	}
}

func testSessionRevokedExpired(t *testing.T, s store.Store) {
	res := login(t, s, alice, "s1", at(0))
	login(t, s, alice, "s2", at(time.Second))
	revoked := at(time.Minute)
	wantIDs(t, "Revoke", revoke(t, s, alice, store.RevokeOne, "s1", revoked), "s1")
	sess := getSession(t, s, alice, "s1")
	sameSession(t, "revoked session", sess, store.Session{
		ID: "s1", User: alice, UserID: res.User.ID, CreatedAt: at(0),
		ExpiresAt: at(30 * 24 * time.Hour), RevokedAt: revoked,
	})
	if sess.Active(revoked) {
		t.Fatal("revoked session active")
	}
	// Expired by the caller's clock, still returned so it can tell why.
	s2 := getSession(t, s, alice, "s2")
	if s2.Active(s2.ExpiresAt) || !s2.RevokedAt.IsZero() {
		t.Fatalf("s2 = %+v: want unrevoked and inactive at its ExpiresAt", s2)
	}
}
