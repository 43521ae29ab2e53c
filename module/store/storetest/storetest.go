// Package storetest is the conformance suite of store.Store: the one
// definition of the semantics both stores must share. Each subtest is named
// after the behaviour it shows. Time is injected (a fixed base plus
// offsets); only the revocation feed's replay, which the interface measures
// from the wall clock, uses time.Now.
package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// Base is the injected time every subtest starts from. It is whole
// milliseconds, the precision of the Redis store.
var Base = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

// at is Base plus d.
func at(d time.Duration) time.Time { return Base.Add(d) }

const (
	alice store.UserKey = "YWxpY2UtdXNlci1rZXktMDA" // pseudonymous tags, as the caller derives them
	bob   store.UserKey = "Ym9iLXVzZXIta2V5LTAwMDA"
	phone               = "+12015550123" // a fictional 555 number
)

var (
	codeTTL    = 5 * time.Minute
	keep       = 10 * time.Minute
	phoneLimit = store.Limit{N: 3, Window: 5 * time.Minute}
	failureTTL = time.Hour
	meta       = []byte(`{"plan":"free"}`)
)

type test struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// Run runs the suite; newStore returns a fresh, empty store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newStore(t))
		})
	}
}

// Names lists the subtests, for implementations that check they all ran.
func Names() []string {
	names := make([]string, len(tests))
	for i, tc := range tests {
		names[i] = tc.name
	}
	return names
}

var tests []test

func init() {
	for _, group := range [][]test{
		hitTests, sendTests, resendTests, challengeTests, attemptTests, consumeTests,
		sessionTests, rotateTests, revokeTests, subscribeTests, nonceTests,
		usersTests, moveTests,
	} {
		tests = append(tests, group...)
	}
	tests = append(tests, test{"Ping_OK", testPing})
}

func wantIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

func sameUser(t *testing.T, what string, got, want store.User) {
	t.Helper()
	if got.ID != want.ID || got.Phone != want.Phone || !got.CreatedAt.Equal(want.CreatedAt) ||
		!got.UpdatedAt.Equal(want.UpdatedAt) || !got.ConfirmedAt.Equal(want.ConfirmedAt) ||
		!got.LastSignInAt.Equal(want.LastSignInAt) || !bytes.Equal(got.Metadata, want.Metadata) ||
		!slices.Equal(got.Roles, want.Roles) || !got.BannedUntil.Equal(want.BannedUntil) || got.Origin != want.Origin {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func sameSession(t *testing.T, what string, got, want store.Session) {
	t.Helper()
	if got.ID != want.ID || got.User != want.User || got.UserID != want.UserID ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
		!got.RevokedAt.Equal(want.RevokedAt) || !got.RefreshedAt.Equal(want.RefreshedAt) ||
		got.IP != want.IP || got.UserAgent != want.UserAgent {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}
