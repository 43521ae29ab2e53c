package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// The subtests of Consume: one winner takes the challenge and signs in.

var consumeTests = []test{
	{"Consume_CreatesUserAndSession", testConsumeCreates},
	{"Consume_FirstRefreshTokenActive", testConsumeFirstToken},
	{"Consume_ResetsFailures", testConsumeResetsFailures},
	{"Consume_LiftsLockStartedByItsAttempt", testConsumeLiftsLock},
	{"Consume_ExistingUser_SignsInKeepsProfile", testConsumeExistingUser},
	{"Consume_NoCreateUserNoUser_NoUserAndConsumed", testConsumeNoUser},
	{"Consume_WrongID_Gone", testConsumeWrongID},
	{"Consume_Expired_Gone", testConsumeExpired},
	{"Consume_Twice_SecondGone", testConsumeTwice},
	{"Consume_Concurrent_ExactlyOneWins", testConsumeConcurrent},
}

func consumeReq(u store.UserKey, challengeID, sessionID string, now time.Time) store.ConsumeRequest {
	return store.ConsumeRequest{
		User:        u,
		ChallengeID: challengeID,
		Now:         now,
		NewUserID:   "user-" + sessionID,
		Session: store.Session{
			ID:        sessionID,
			CreatedAt: now,
			ExpiresAt: now.Add(30 * 24 * time.Hour),
		},
		RefreshHash: "rt-" + sessionID,
	}
}

func consume(t *testing.T, s store.Store, req store.ConsumeRequest) store.ConsumeResult {
	t.Helper()
	res, err := s.Consume(t.Context(), req)
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	return res
}

func wantConsume(t *testing.T, res store.ConsumeResult, want store.ConsumeStatus) {
	t.Helper()
	if res.Status != want {
		t.Fatalf("Consume status = %d, want %d", res.Status, want)
	}
}

// login sends a code and verifies it at now, returning the session ID; its
// first refresh token hash is "rt-" + sessionID.
func login(t *testing.T, s store.Store, u store.UserKey, sessionID string, now time.Time) store.ConsumeResult {
	t.Helper()
	wantSent(t, s, sendReq(u, "ch-"+sessionID, now))
	res := consume(t, s, consumeReq(u, "ch-"+sessionID, sessionID, now))
	wantConsume(t, res, store.ConsumeOK)
	return res
}

func testConsumeCreates(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	now := at(time.Minute)
	req := consumeReq(alice, "c1", "s1", now)
	res := consume(t, s, req)
	wantConsume(t, res, store.ConsumeOK)
	if !res.Created {
		t.Fatal("Created = false, want true")
	}
	want := store.User{
		ID: req.NewUserID, Phone: phone, CreatedAt: now, UpdatedAt: now,
		ConfirmedAt: now, LastSignInAt: now, Metadata: meta, Origin: store.OriginSignup,
	}
	sameUser(t, "consume result", res.User, want)
	u, ok, err := s.User(t.Context(), alice)
	if err != nil || !ok {
		t.Fatalf("User: found=%v err=%v", ok, err)
	}
	sameUser(t, "stored user", u, want)

	sess := getSession(t, s, alice, "s1")
	wantSess := store.Session{ID: "s1", User: alice, UserID: req.NewUserID, CreatedAt: now, ExpiresAt: req.Session.ExpiresAt}
	sameSession(t, "session", sess, wantSess)
	if !sess.Active(now) {
		t.Fatal("new session not active")
	}
	wantNoChallenge(t, s, alice)
}

func testConsumeFirstToken(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	res := rotate(t, s, alice, "rt-s1", "rt-2", 0, at(time.Minute))
	wantRotate(t, res, store.RotateOK)
	if res.Session.ID != "s1" {
		t.Fatalf("rotated session = %s, want s1", res.Session.ID)
	}
}

func testConsumeResetsFailures(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	attempt(t, s, alice, 5, at(time.Second))
	attempt(t, s, alice, 5, at(2*time.Second))
	wantConsume(t, consume(t, s, consumeReq(alice, "c1", "s1", at(3*time.Second))), store.ConsumeOK)
	if _, _, f := getChallenge(t, s, alice); f != 0 {
		t.Fatalf("failures after Consume = %d, want 0", f)
	}
	wantSent(t, s, sendReq(alice, "c2", at(time.Minute)))
	if f := attempt(t, s, alice, 5, at(time.Minute+time.Second)).Failures; f != 1 {
		t.Fatalf("next failure count = %d, want 1", f)
	}
}

// The attempt that locks a person out is still compared: when its code
// was right, its Consume lifts the lock, and the next lock starts again
// from Base.
func testConsumeLiftsLock(t *testing.T, s store.Store) {
	lock := lockOut(t, s, alice, at(0))
	c, ok, _ := getChallenge(t, s, alice)
	if !ok {
		t.Fatal("the locking attempt's challenge is gone")
	}
	wantConsume(t, consume(t, s, consumeReq(alice, c.ID, "s1", at(time.Second))), store.ConsumeOK)
	// past the phone limit's window, and inside the lock had it stayed
	if next := lockOut(t, s, alice, at(6*time.Minute)); next != lock {
		t.Fatalf("lock after a sign-in = %v, want %v (the first again)", next, lock)
	}
}

func testConsumeExistingUser(t *testing.T, s store.Store) {
	first := login(t, s, alice, "s1", at(0))
	later := at(time.Hour)
	req := sendReq(alice, "c2", later)
	req.Challenge.Metadata = []byte(`{"plan":"gold"}`) // metadata applies only on creation
	wantSent(t, s, req)
	res := consume(t, s, consumeReq(alice, "c2", "s2", later))
	wantConsume(t, res, store.ConsumeOK)
	if res.Created {
		t.Fatal("Created = true for an existing user")
	}
	want := first.User
	want.UpdatedAt = later
	want.LastSignInAt = later
	sameUser(t, "second sign-in", res.User, want)
	if s2 := getSession(t, s, alice, "s2"); s2.UserID != first.User.ID {
		t.Fatalf("session user ID = %s, want %s", s2.UserID, first.User.ID)
	}
	if s1 := getSession(t, s, alice, "s1"); !s1.Active(later) {
		t.Fatal("a new sign-in ended the earlier session")
	}
}

func testConsumeNoUser(t *testing.T, s store.Store) {
	req := sendReq(alice, "c1", at(0))
	req.Challenge.CreateUser = false
	wantSent(t, s, req)
	attempt(t, s, alice, 5, at(time.Second))
	wantConsume(t, consume(t, s, consumeReq(alice, "c1", "s1", at(time.Minute))), store.ConsumeNoUser)
	if _, ok, _ := s.User(t.Context(), alice); ok {
		t.Fatal("user created although the challenge did not allow it")
	}
	if _, ok, _ := s.Session(t.Context(), alice, "s1"); ok {
		t.Fatal("session created without a user")
	}
	// The code was single use: it is consumed, the failures stand.
	_, ok, failures := getChallenge(t, s, alice)
	if ok || failures != 1 {
		t.Fatalf("Challenge found=%v failures=%d, want false 1", ok, failures)
	}
}

func testConsumeWrongID(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	wantConsume(t, consume(t, s, consumeReq(alice, "other", "s1", at(time.Second))), store.ConsumeGone)
	wantConsume(t, consume(t, s, consumeReq(bob, "c1", "s1", at(time.Second))), store.ConsumeGone)
	wantChallengeID(t, s, alice, "c1")
}

func testConsumeExpired(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	wantConsume(t, consume(t, s, consumeReq(alice, "c1", "s1", at(codeTTL))), store.ConsumeGone)
	wantConsume(t, consume(t, s, consumeReq(alice, "c1", "s1", at(codeTTL-time.Millisecond))), store.ConsumeOK)
}

func testConsumeTwice(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	wantConsume(t, consume(t, s, consumeReq(alice, "c1", "s1", at(time.Second))), store.ConsumeOK)
	wantConsume(t, consume(t, s, consumeReq(alice, "c1", "s2", at(time.Second))), store.ConsumeGone)
	if _, ok, _ := s.Session(t.Context(), alice, "s2"); ok {
		t.Fatal("second Consume created a session")
	}
}

func testConsumeConcurrent(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	const n = 16
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		results = make([]store.ConsumeResult, n)
		errs    = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.Consume(context.Background(), consumeReq(alice, "c1", fmt.Sprint("s", i), at(time.Second)))
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Consume %d: %v", i, errs[i])
		}
		switch results[i].Status {
		case store.ConsumeOK:
			won++
		case store.ConsumeGone:
			if _, ok, _ := s.Session(t.Context(), alice, fmt.Sprint("s", i)); ok {
				t.Fatalf("losing Consume %d created a session", i)
			}
		default:
			t.Fatalf("Consume %d status = %d", i, results[i].Status)
		}
	}
	if won != 1 {
		t.Fatalf("%d Consumes won, want exactly 1", won)
	}
}
