package storetest

import (
	"bytes"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// The subtests of phone changes: a user moves from the key of its old
// phone (alice) to the key of its new one (bob) with its sessions and
// refresh tokens, in steps that are each safe to repeat.

const newPhone = "+12015550124"

// third is a third person's key, for moves from one phone to another and
// on to a third.
const third store.UserKey = "dGhpcmQta2V5LW9mLW1vdmVz"

var moveTests = []test{
	{"BeginSend_PhoneChange_StoredAndKeptOnResend", testBeginSendChange},
	{"BeginSend_PhoneChange_PhoneOfAnotherUser_TakenCountsLimitStoresNothing", testBeginSendChangeTaken},
	{"BeginSend_PhoneChange_PhoneTakenBeforeResend_Taken", testBeginSendChangeTakenOnResend},
	{"BeginSend_PhoneChange_OwnUser_OK", testBeginSendChangeOwn},
	{"ClaimMove_TakesChallengeReservesPhoneResetsFailures", testClaimMove},
	{"ClaimMove_SignInChallengeOrOtherUser_GoneChallengeKept", testClaimMoveNotAChange},
	{"ClaimMove_PhoneTakenMeanwhile_TakenChallengeUsed", testClaimMoveTaken},
	{"ClaimMove_Concurrent_ExactlyOneWins", testClaimMoveConcurrent},
	{"ClaimMove_Invalid_RefusedNotUnavailable", testClaimMoveInvalid},
	{"MoveUser_MovesUserSessionsTokensAndIndex", testMoveUser},
	{"MoveUser_TokenStateMoves_ReuseDetectedUnderNewKey", testMoveUserTokenState},
	{"MoveUser_Again_DoneChangesNothing", testMoveUserAgain},
	{"MoveUser_UserDeletedMeanwhile_GoneReservationRemoved", testMoveUserGone},
	{"MoveUser_NoClaimBefore_GoneRecordsPendingUserUnlisted", testMoveUserUnclaimed},
	{"MoveUser_UserDeletedMeanwhile_SignedInReservationUnlisted", testMoveUserGoneUnlisted},
	{"Consume_UserReservedByClaim_SignsInAndIndexed", testConsumeReserved},
	{"CreateUser_UserReservedByClaim_ExistingAndIndexed", testCreateUserReserved},
	{"UserByID_IDUnderTwoKeys_FirstInIndexOrder", testUserByIDTwoKeys},
	{"UserByID_UserBackUnderItsKeyBeforeAnyRead_FoundByItsEntry", testUserByIDBack},
	{"ClaimMove_StaleReservation_NowWaitsForTheRecordsWhereTheyAre", testClaimMoveStaleReservation},
	{"MoveUser_BackToOldPhone_ForwardsBothWays", testMoveUserBack},
	{"MoveUser_OldPhoneFree_NewPhoneSignsInSameUser", testMoveUserPhones},
	{"MoveUser_Invalid_RefusedNotUnavailable", testMoveUserInvalid},
	{"ClaimMove_KeyWithBraces_RefusedNotUnavailable", testClaimMoveBraces},
	{"MoveUser_KeyWithBracesOrIDWithColon_RefusedNotUnavailable", testMoveUserBraces},
	{"Moved_EmptyKeyOrKeyWithBraces_RefusedNotUnavailable", testMovedInvalid},
	{"Moved_NoForwards_Empty", testMovedNone},
}

// changeSend is a send of a phone change code to bob's phone for the user
// id under from.
func changeSend(to store.UserKey, id string, userID string, from store.UserKey, now time.Time) store.SendRequest {
	req := sendReq(to, id, now)
	req.Challenge.Phone = newPhone
	req.Challenge.ChangeOf = userID
	req.Challenge.ChangeFrom = from
	return req
}

// unlimited lifts a send's limit, for tests that send more than it allows.
func unlimited(req store.SendRequest) store.SendRequest {
	req.Unlimited = true
	return req
}

func claimReq(s store.Store, t *testing.T, to store.UserKey, challengeID string, from store.UserKey, now time.Time) store.ClaimMoveRequest {
	t.Helper()
	u, ok, err := s.User(t.Context(), from)
	if err != nil || !ok {
		t.Fatalf("User(%s): %v %v", from, ok, err)
	}
	u.Phone = newPhone
	return store.ClaimMoveRequest{User: to, ChallengeID: challengeID, Now: now, From: from, Moving: u}
}

func claim(t *testing.T, s store.Store, req store.ClaimMoveRequest) store.MoveStatus {
	t.Helper()
	st, err := s.ClaimMove(t.Context(), req)
	if err != nil {
		t.Fatalf("ClaimMove: %v", err)
	}
	return st
}

func moveUser(t *testing.T, s store.Store, req store.MoveRequest) store.MoveResult {
	t.Helper()
	res, err := s.MoveUser(t.Context(), req)
	if err != nil {
		t.Fatalf("MoveUser: %v", err)
	}
	return res
}

func moved(t *testing.T, s store.Store, u store.UserKey) []store.Forward {
	t.Helper()
	f, err := s.Moved(t.Context(), u)
	if err != nil {
		t.Fatalf("Moved: %v", err)
	}
	return f
}

func lookUser(t *testing.T, s store.Store, u store.UserKey) (store.User, bool) {
	t.Helper()
	got, ok, err := s.User(t.Context(), u)
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	return got, ok
}

// changePhone moves alice's user (signed in as session s1) to bob at now:
// send, claim and move, starting session "s-new".
func changePhone(t *testing.T, s store.Store, now time.Time) store.MoveResult {
	t.Helper()
	u, _ := lookUser(t, s, alice)
	wantSent(t, s, changeSend(bob, "chg", u.ID, alice, now))
	if st := claim(t, s, claimReq(s, t, bob, "chg", alice, now)); st != store.MoveDone {
		t.Fatalf("ClaimMove = %v, want done", st)
	}
	res := moveUser(t, s, store.MoveRequest{From: alice, To: bob, UserID: u.ID, Now: now,
		Session:     &store.Session{ID: "s-new", CreatedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour), IP: "192.0.2.9"},
		RefreshHash: "rt-s-new"})
	if res.Status != store.MoveDone {
		t.Fatalf("MoveUser = %v, want done", res.Status)
	}
	return res
}

func testBeginSendChange(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	res := wantSent(t, s, changeSend(bob, "chg1", "user-s1", alice, at(time.Second)))
	if res.Challenge.ChangeOf != "user-s1" || res.Challenge.ChangeFrom != alice {
		t.Fatalf("sent challenge %+v", res.Challenge)
	}
	c := wantChallengeID(t, s, bob, "chg1")
	if c.ChangeOf != "user-s1" || c.ChangeFrom != alice || c.Phone != newPhone {
		t.Fatalf("stored challenge %+v", c)
	}
	// a resend keeps what the change is
	res = wantSent(t, s, resendReq(bob, "chg2", at(time.Minute)))
	c = wantChallengeID(t, s, bob, "chg2")
	if c.ChangeOf != "user-s1" || c.ChangeFrom != alice || res.Challenge.ChangeOf != "user-s1" || res.Challenge.ChangeFrom != alice {
		t.Fatalf("resent challenge %+v (result %+v)", c, res.Challenge)
	}
	// a sign-in challenge is none
	wantSent(t, s, sendReq(bob, "plain", at(2*time.Minute)))
	if c := wantChallengeID(t, s, bob, "plain"); c.ChangeOf != "" || c.ChangeFrom != "" {
		t.Fatalf("sign-in challenge %+v", c)
	}
}

func testBeginSendChangeTaken(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	createUser(t, s, createReq(bob, "user-b", at(0)))
	wantStatus(t, send(t, s, changeSend(bob, "chg", "user-s1", alice, at(time.Second))), store.SendTaken)
	wantNoChallenge(t, s, bob)
	// counted like a real send: the phone limit runs out
	wantStatus(t, send(t, s, changeSend(bob, "chg2", "user-s1", alice, at(2*time.Second))), store.SendTaken)
	wantStatus(t, send(t, s, changeSend(bob, "chg3", "user-s1", alice, at(3*time.Second))), store.SendTaken)
	wantStatus(t, send(t, s, changeSend(bob, "chg4", "user-s1", alice, at(4*time.Second))), store.SendPhoneLimited)
}

func testBeginSendChangeTakenOnResend(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	wantSent(t, s, changeSend(bob, "chg", "user-s1", alice, at(time.Second)))
	// someone else gets the phone before the resend
	createUser(t, s, createReq(bob, "user-b", at(2*time.Second)))
	wantStatus(t, send(t, s, resendReq(bob, "chg2", at(time.Minute))), store.SendTaken)
}

func testBeginSendChangeOwn(t *testing.T, s store.Store) {
	login(t, s, bob, "s1", at(0))
	wantSent(t, s, changeSend(bob, "chg", "user-s1", alice, at(time.Second)))
}

func testClaimMove(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	upd := []byte(`{"name":"Ada"}`)
	roles := []string{"ops"}
	if _, _, err := s.UpdateUser(t.Context(), alice, store.UserUpdate{Now: at(time.Second), Metadata: &upd, Roles: &roles}); err != nil {
		t.Fatal(err)
	}
	wantSent(t, s, changeSend(bob, "chg", "user-s1", alice, at(time.Minute)))
	attempt(t, s, bob, 5, at(time.Minute))
	req := claimReq(s, t, bob, "chg", alice, at(2*time.Minute))
	if st := claim(t, s, req); st != store.MoveDone {
		t.Fatalf("ClaimMove = %v, want done", st)
	}
	wantNoChallenge(t, s, bob)
	if _, _, failures := getChallenge(t, s, bob); failures != 0 {
		t.Fatalf("failures = %d after the claim, want 0", failures)
	}
	u, ok := lookUser(t, s, bob)
	if !ok || u.ID != "user-s1" || u.Phone != newPhone || u.MovingFrom != alice ||
		!bytes.Equal(u.Metadata, upd) || !slices.Equal(u.Roles, roles) ||
		!u.ConfirmedAt.Equal(at(2*time.Minute)) || !u.UpdatedAt.Equal(at(2*time.Minute)) || !u.CreatedAt.Equal(at(0)) {
		t.Fatalf("reserved user %+v", u)
	}
	// the user is still where it was until MoveUser
	if old, ok := lookUser(t, s, alice); !ok || old.ID != "user-s1" || old.MovingFrom != "" {
		t.Fatalf("old user %+v %v", old, ok)
	}
	// the challenge is used
	if st := claim(t, s, req); st != store.MoveGone {
		t.Fatalf("second ClaimMove = %v, want gone", st)
	}
}

func testClaimMoveNotAChange(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	wantSent(t, s, unlimited(sendReq(bob, "plain", at(time.Second))))
	if st := claim(t, s, claimReq(s, t, bob, "plain", alice, at(2*time.Second))); st != store.MoveGone {
		t.Fatalf("ClaimMove of a sign-in challenge = %v, want gone", st)
	}
	wantChallengeID(t, s, bob, "plain")
	// a change of another user, or from another key
	wantSent(t, s, unlimited(changeSend(bob, "chg", "someone-else", alice, at(3*time.Second))))
	if st := claim(t, s, claimReq(s, t, bob, "chg", alice, at(4*time.Second))); st != store.MoveGone {
		t.Fatalf("ClaimMove of another user's change = %v, want gone", st)
	}
	wantChallengeID(t, s, bob, "chg")
	wantSent(t, s, unlimited(changeSend(bob, "chg2", "user-s1", "c29tZW9uZS1lbHNlLTAwMDA", at(5*time.Second))))
	if st := claim(t, s, claimReq(s, t, bob, "chg2", alice, at(6*time.Second))); st != store.MoveGone {
		t.Fatalf("ClaimMove of a change from another key = %v, want gone", st)
	}
	// an expired code
	wantSent(t, s, unlimited(changeSend(bob, "chg3", "user-s1", alice, at(time.Minute))))
	if st := claim(t, s, claimReq(s, t, bob, "chg3", alice, at(time.Minute+codeTTL))); st != store.MoveGone {
		t.Fatalf("ClaimMove of an expired code = %v, want gone", st)
	}
	if _, ok := lookUser(t, s, bob); ok {
		t.Fatal("a refused claim reserved the phone")
	}
}

func testClaimMoveTaken(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	wantSent(t, s, changeSend(bob, "chg", "user-s1", alice, at(time.Second)))
	// an administrator gives the new phone to someone between the send
	// and the claim
	createUser(t, s, createReq(bob, "user-b", at(2*time.Second)))
	if st := claim(t, s, claimReq(s, t, bob, "chg", alice, at(time.Minute))); st != store.MoveTaken {
		t.Fatalf("ClaimMove = %v, want taken", st)
	}
	wantNoChallenge(t, s, bob)
	if u, _ := lookUser(t, s, bob); u.ID != "user-b" || u.MovingFrom != "" {
		t.Fatalf("the phone's user changed: %+v", u)
	}
}

func testClaimMoveConcurrent(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	wantSent(t, s, changeSend(bob, "chg", "user-s1", alice, at(time.Second)))
	req := claimReq(s, t, bob, "chg", alice, at(2*time.Second))
	const n = 8
	var wg sync.WaitGroup
	results := make([]store.MoveStatus, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = s.ClaimMove(t.Context(), req) })
	}
	wg.Wait()
	won := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("ClaimMove: %v", errs[i])
		}
		if results[i] == store.MoveDone {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("%d claims won, want exactly 1 (%v)", won, results)
	}
}

func testClaimMoveInvalid(t *testing.T, s store.Store) {
	u := store.User{ID: "u1", Phone: newPhone}
	for name, req := range map[string]store.ClaimMoveRequest{
		"no key":       {ChallengeID: "c", Now: at(0), From: alice, Moving: u},
		"no from":      {User: bob, ChallengeID: "c", Now: at(0), Moving: u},
		"same key":     {User: bob, ChallengeID: "c", Now: at(0), From: bob, Moving: u},
		"no challenge": {User: bob, Now: at(0), From: alice, Moving: u},
		"no now":       {User: bob, ChallengeID: "c", From: alice, Moving: u},
		"no user id":   {User: bob, ChallengeID: "c", Now: at(0), From: alice, Moving: store.User{Phone: newPhone}},
	} {
		_, err := s.ClaimMove(t.Context(), req)
		wantInvalid(t, name, err)
	}
}

func testMoveUser(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	wantSent(t, s, sendReq(alice, "ch-s2", at(time.Second)))
	wantConsume(t, consume(t, s, consumeReq(alice, "ch-s2", "s2", at(time.Second))), store.ConsumeOK)
	revoke(t, s, alice, store.RevokeOne, "s2", at(2*time.Second))
	wantRotate(t, rotate(t, s, alice, "rt-s1", "rt-s1b", 0, at(3*time.Second)), store.RotateOK)

	res := changePhone(t, s, at(time.Minute))
	u := res.User
	if u.ID != "user-s1" || u.Phone != newPhone || u.MovingFrom != "" || !u.LastSignInAt.Equal(at(time.Minute)) || !u.CreatedAt.Equal(at(0)) {
		t.Fatalf("moved user %+v", u)
	}
	if got, ok := lookUser(t, s, bob); !ok || got.ID != u.ID || got.Phone != newPhone || got.MovingFrom != "" {
		t.Fatalf("User(new key) = %+v %v", got, ok)
	}
	if _, ok := lookUser(t, s, alice); ok {
		t.Fatal("the user is still under the old key")
	}
	// sessions keep their ID and state
	if sess := getSession(t, s, bob, "s1"); !sess.Active(at(time.Minute)) || sess.User != bob || sess.UserID != u.ID || !sess.RefreshedAt.Equal(at(3*time.Second)) {
		t.Fatalf("moved s1 %+v", sess)
	}
	if sess := getSession(t, s, bob, "s2"); sess.RevokedAt.IsZero() {
		t.Fatalf("moved s2 is no longer revoked: %+v", sess)
	}
	if sess := getSession(t, s, bob, "s-new"); !sess.Active(at(time.Minute)) || sess.IP != "192.0.2.9" || sess.UserID != u.ID {
		t.Fatalf("new session %+v", sess)
	}
	if _, ok, _ := s.Session(t.Context(), alice, "s1"); ok {
		t.Fatal("s1 is still under the old key")
	}
	list, err := s.Sessions(t.Context(), bob, at(time.Minute))
	if err != nil || len(list) != 2 || list[0].ID != "s1" || list[1].ID != "s-new" {
		t.Fatalf("Sessions(new key) = %+v %v", list, err)
	}
	// refresh tokens work under the new key only
	wantRotate(t, rotate(t, s, alice, "rt-s1b", "rt-x", 0, at(2*time.Minute)), store.RotateNotFound)
	r := rotate(t, s, bob, "rt-s1b", "rt-s1c", 0, at(2*time.Minute))
	wantRotate(t, r, store.RotateOK)
	if r.Session.ID != "s1" || r.User.ID != u.ID || r.User.Phone != newPhone {
		t.Fatalf("rotate under the new key: %+v", r)
	}
	wantRotate(t, rotate(t, s, bob, "rt-s-new", "rt-s-new2", 0, at(2*time.Minute)), store.RotateOK)
	// the index names the new key
	e, ok, err := s.UserByID(t.Context(), u.ID)
	if err != nil || !ok || e.Key != bob {
		t.Fatalf("UserByID = %+v %v %v", e, ok, err)
	}
	users, total, err := s.ListUsers(t.Context(), 0, 10)
	if err != nil || total != 1 || len(users) != 1 || users[0].Key != bob {
		t.Fatalf("ListUsers = %+v %d %v", users, total, err)
	}
	// the old key forwards, and the move is finished
	if f := moved(t, s, alice); len(f) != 1 || f[0] != (store.Forward{UserID: u.ID, To: bob}) {
		t.Fatalf("Moved(old key) = %+v", f)
	}
	if f := moved(t, s, bob); len(f) != 0 {
		t.Fatalf("Moved(new key) = %+v", f)
	}
	// Access reads the session and the user under the new key
	sess, sok, au, uok, err := s.Access(t.Context(), bob, "s1")
	if err != nil || !sok || !uok || sess.ID != "s1" || au.ID != u.ID {
		t.Fatalf("Access(new key) = %+v %v %+v %v %v", sess, sok, au, uok, err)
	}
}

func testMoveUserTokenState(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	wantRotate(t, rotate(t, s, alice, "rt-s1", "rt-s1b", 0, at(time.Second)), store.RotateOK)
	changePhone(t, s, at(2*time.Second))
	// the used token is still used: within the interval a sibling, beyond
	// it the session is revoked
	wantRotate(t, rotate(t, s, bob, "rt-s1", "rt-sib", 10*time.Second, at(3*time.Second)), store.RotateOK)
	wantRotate(t, rotate(t, s, bob, "rt-s1", "rt-late", 10*time.Second, at(time.Minute)), store.RotateReused)
	if sess := getSession(t, s, bob, "s1"); sess.RevokedAt.IsZero() {
		t.Fatal("reuse under the new key did not revoke the session")
	}
}

func testMoveUserAgain(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	res := changePhone(t, s, at(time.Second))
	wantRotate(t, rotate(t, s, bob, "rt-s1", "rt-s1b", 0, at(2*time.Second)), store.RotateOK)
	revoke(t, s, bob, store.RevokeOne, "s-new", at(2*time.Second))
	again := moveUser(t, s, store.MoveRequest{From: alice, To: bob, UserID: res.User.ID, Now: at(3 * time.Second)})
	if again.Status != store.MoveDone || again.User.ID != res.User.ID || again.User.Phone != newPhone {
		t.Fatalf("second MoveUser = %+v", again)
	}
	// nothing came back to life
	wantRotate(t, rotate(t, s, bob, "rt-s1", "rt-x", 0, at(4*time.Second)), store.RotateReused)
	if sess := getSession(t, s, bob, "s-new"); sess.RevokedAt.IsZero() {
		t.Fatal("a second MoveUser restored a revoked session")
	}
	if f := moved(t, s, alice); len(f) != 1 || f[0].Pending {
		t.Fatalf("Moved = %+v", f)
	}
}

func testMoveUserGone(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	wantSent(t, s, changeSend(bob, "chg", "user-s1", alice, at(time.Second)))
	if st := claim(t, s, claimReq(s, t, bob, "chg", alice, at(time.Second))); st != store.MoveDone {
		t.Fatalf("ClaimMove = %v", st)
	}
	if _, _, found, err := s.DeleteUser(t.Context(), alice, at(2*time.Second)); err != nil || !found {
		t.Fatalf("DeleteUser: %v %v", found, err)
	}
	res := moveUser(t, s, store.MoveRequest{From: alice, To: bob, UserID: "user-s1", Now: at(3 * time.Second)})
	if res.Status != store.MoveGone {
		t.Fatalf("MoveUser = %v, want gone", res.Status)
	}
	if u, ok := lookUser(t, s, bob); ok {
		t.Fatalf("the reservation stayed: %+v", u)
	}
	if _, ok, _ := s.UserByID(t.Context(), "user-s1"); ok {
		t.Fatal("the deleted user is in the index")
	}
}

func testMoveUserBack(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	u := changePhone(t, s, at(time.Second)).User
	// and back to the first phone
	wantSent(t, s, changeSend(alice, "back", u.ID, bob, at(time.Minute)))
	req := claimReq(s, t, alice, "back", bob, at(time.Minute))
	req.Moving.Phone = phone
	if st := claim(t, s, req); st != store.MoveDone {
		t.Fatalf("ClaimMove back = %v", st)
	}
	back := moveUser(t, s, store.MoveRequest{From: bob, To: alice, UserID: u.ID, Now: at(time.Minute)})
	if back.Status != store.MoveDone || back.User.Phone != phone {
		t.Fatalf("MoveUser back = %+v", back)
	}
	getSession(t, s, alice, "s1")
	getSession(t, s, alice, "s-new")
	if f := moved(t, s, bob); len(f) != 1 || f[0].To != alice {
		t.Fatalf("Moved(bob) = %+v", f)
	}
	if f := moved(t, s, alice); len(f) != 1 || f[0].To != bob {
		t.Fatalf("Moved(alice) = %+v", f)
	}
	if e, ok, _ := s.UserByID(t.Context(), u.ID); !ok || e.Key != alice {
		t.Fatalf("UserByID = %+v %v", e, ok)
	}
}

func testMoveUserPhones(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	u := changePhone(t, s, at(time.Second)).User
	// the old phone has no user any more
	req := sendReq(alice, "old", at(time.Minute))
	req.RequireUser = true
	wantStatus(t, send(t, s, req), store.SendUnknownUser)
	// the new one signs in to the same user
	in := sendReq(bob, "new", at(time.Minute))
	in.RequireUser = true
	wantSent(t, s, in)
	c := consumeReq(bob, "new", "s3", at(time.Minute))
	res := consume(t, s, c)
	wantConsume(t, res, store.ConsumeOK)
	if res.Created || res.User.ID != u.ID {
		t.Fatalf("sign-in with the new phone: %+v", res)
	}
}

func testMoveUserInvalid(t *testing.T, s store.Store) {
	for name, req := range map[string]store.MoveRequest{
		"no from":    {To: bob, UserID: "u", Now: at(0)},
		"no to":      {From: alice, UserID: "u", Now: at(0)},
		"same key":   {From: alice, To: alice, UserID: "u", Now: at(0)},
		"no user id": {From: alice, To: bob, Now: at(0)},
		"no now":     {From: alice, To: bob, UserID: "u"},
		"session without refresh hash": {From: alice, To: bob, UserID: "u", Now: at(0),
			Session: &store.Session{ID: "s", ExpiresAt: at(time.Hour)}},
	} {
		_, err := s.MoveUser(t.Context(), req)
		wantInvalid(t, name, err)
	}
}

// A key with braces would be a hash tag of its own in the Redis store, so
// both stores refuse it, in every step of a phone change.
const bracesKey store.UserKey = "tag{with}braces"

func testClaimMoveBraces(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	wantSent(t, s, changeSend(bob, "chg", "user-s1", alice, at(time.Second)))
	u := store.User{ID: "user-s1", Phone: newPhone}
	for name, req := range map[string]store.ClaimMoveRequest{
		"new key": {User: bracesKey, ChallengeID: "chg", Now: at(time.Second), From: alice, Moving: u},
		"old key": {User: bob, ChallengeID: "chg", Now: at(time.Second), From: bracesKey, Moving: u},
	} {
		_, err := s.ClaimMove(t.Context(), req)
		wantInvalid(t, name, err)
	}
	// nothing was taken
	wantChallengeID(t, s, bob, "chg")
}

func testMoveUserBraces(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	for name, req := range map[string]store.MoveRequest{
		"old key":          {From: bracesKey, To: bob, UserID: "user-s1", Now: at(time.Second)},
		"new key":          {From: alice, To: bracesKey, UserID: "user-s1", Now: at(time.Second)},
		"user id with ':'": {From: alice, To: bob, UserID: "user:s1", Now: at(time.Second)},
	} {
		_, err := s.MoveUser(t.Context(), req)
		wantInvalid(t, name, err)
	}
	// nothing moved
	if u, ok := lookUser(t, s, alice); !ok || u.ID != "user-s1" {
		t.Fatalf("User(old key) = %+v %v, want the user", u, ok)
	}
}

func testMovedInvalid(t *testing.T, s store.Store) {
	for _, u := range []store.UserKey{"", bracesKey} {
		_, err := s.Moved(t.Context(), u)
		wantInvalid(t, "Moved("+string(u)+")", err)
	}
}

// A MoveUser with no claim before it (no copy of the user waits under the
// new key) takes the records out of the old key all the same: they wait in
// the move record, which Moved reports pending, and the user is under
// neither key, so the user index lists it no more.
func testMoveUserUnclaimed(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	if res := moveUser(t, s, store.MoveRequest{From: alice, To: bob, UserID: "user-s1", Now: at(time.Minute)}); res.Status != store.MoveGone {
		t.Fatalf("MoveUser = %v, want gone", res.Status)
	}
	if u, ok := lookUser(t, s, alice); ok {
		t.Fatalf("User(old key) = %+v, want none", u)
	}
	if u, ok := lookUser(t, s, bob); ok {
		t.Fatalf("User(new key) = %+v, want none", u)
	}
	if f := moved(t, s, alice); len(f) != 1 || f[0] != (store.Forward{UserID: "user-s1", To: bob, Pending: true}) {
		t.Fatalf("Moved(old key) = %+v, want a pending forward to the new key", f)
	}
	if entries, total := listUsers(t, s, 0, 10); len(entries) != 0 || total != 0 {
		t.Fatalf("ListUsers = %v total %d, want none", entryIDs(entries), total)
	}
	wantNoUserByID(t, s, "user-s1")
}

// reserve reserves bob's phone for alice's user (signed in as s1): the
// copy of a claim that MoveUser has not completed yet.
func reserve(t *testing.T, s store.Store, now time.Time) {
	t.Helper()
	login(t, s, alice, "s1", now)
	wantSent(t, s, changeSend(bob, "chg", "user-s1", alice, now))
	if st := claim(t, s, claimReq(s, t, bob, "chg", alice, now)); st != store.MoveDone {
		t.Fatalf("ClaimMove = %v, want done", st)
	}
	if entries, total := listUsers(t, s, 0, 10); total != 1 || len(entries) != 1 || entries[0].Key != alice {
		t.Fatalf("ListUsers after the claim = %v total %d, want only the user under the old key", entryIDs(entries), total)
	}
}

// wantListed checks that ListUsers lists exactly the keys given (in index
// order) and counts them.
func wantListed(t *testing.T, s store.Store, keys ...store.UserKey) {
	t.Helper()
	entries, total := listUsers(t, s, 0, 10)
	got := make([]store.UserKey, len(entries))
	for i, e := range entries {
		got[i] = e.Key
	}
	if !slices.Equal(got, keys) || total != len(keys) {
		t.Fatalf("ListUsers = keys %v total %d, want %v", got, total, keys)
	}
}

// A sign-in on the new phone before MoveUser completes the change signs
// in the reserved copy, which joins the user index: the ID is listed under
// both keys until the move.
func testConsumeReserved(t *testing.T, s store.Store) {
	reserve(t, s, at(0))
	wantSent(t, s, sendReq(bob, "ch-s2", at(time.Second)))
	res := consume(t, s, consumeReq(bob, "ch-s2", "s2", at(time.Second)))
	wantConsume(t, res, store.ConsumeOK)
	if res.Created || res.User.ID != "user-s1" || res.User.MovingFrom != alice {
		t.Fatalf("Consume = %+v, want the reserved copy", res)
	}
	wantListed(t, s, alice, bob)
}

// CreateUser for a phone reserved by a claim returns the reserved copy,
// not created, and indexes it.
func testCreateUserReserved(t *testing.T, s store.Store) {
	reserve(t, s, at(0))
	u, created := createUser(t, s, createReq(bob, "user-b", at(time.Second)))
	if created || u.ID != "user-s1" || u.MovingFrom != alice {
		t.Fatalf("CreateUser = %+v created=%v, want the reserved copy", u, created)
	}
	wantListed(t, s, alice, bob)
}

// While an ID is listed under two keys, UserByID answers the first in the
// index's order (by key).
func testUserByIDTwoKeys(t *testing.T, s store.Store) {
	reserve(t, s, at(0))
	wantSent(t, s, sendReq(bob, "ch-s2", at(time.Second)))
	wantConsume(t, consume(t, s, consumeReq(bob, "ch-s2", "s2", at(time.Second))), store.ConsumeOK)
	first, second := alice, bob
	if string(second) < string(first) {
		first, second = second, first
	}
	wantListed(t, s, first, second)
	if got := wantUserByID(t, s, "user-s1", first); got.ID != "user-s1" {
		t.Fatalf("UserByID = %+v", got)
	}
}

// An index entry stays until a reader finds it stale (or the user is
// deleted, or its move finishes): a user of that ID back under the key
// before any read, here the copy of a claim after a MoveUser that found no
// claim, is found by it.
func testUserByIDBack(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	if res := moveUser(t, s, store.MoveRequest{From: alice, To: bob, UserID: "user-s1", Now: at(time.Second)}); res.Status != store.MoveGone {
		t.Fatalf("MoveUser = %v, want gone", res.Status)
	}
	wantSent(t, s, changeSend(alice, "chg", "user-s1", third, at(2*time.Second)))
	req := store.ClaimMoveRequest{User: alice, ChallengeID: "chg", Now: at(2 * time.Second), From: third,
		Moving: store.User{ID: "user-s1", Phone: newPhone, CreatedAt: at(0)}}
	if st := claim(t, s, req); st != store.MoveDone {
		t.Fatalf("ClaimMove = %v, want done", st)
	}
	if u := wantUserByID(t, s, "user-s1", alice); u.MovingFrom != third {
		t.Fatalf("UserByID = %+v, want the copy moving from the third key", u)
	}
	wantListed(t, s, alice)
}

// When the user is deleted before MoveUser, the reserved copy goes, and
// with it the index entry a sign-in on the new phone gave it.
func testMoveUserGoneUnlisted(t *testing.T, s store.Store) {
	reserve(t, s, at(0))
	wantSent(t, s, sendReq(bob, "ch-s2", at(time.Second)))
	wantConsume(t, consume(t, s, consumeReq(bob, "ch-s2", "s2", at(time.Second))), store.ConsumeOK)
	deleteUser(t, s, alice, at(2*time.Second))
	if res := moveUser(t, s, store.MoveRequest{From: alice, To: bob, UserID: "user-s1", Now: at(3 * time.Second)}); res.Status != store.MoveGone {
		t.Fatalf("MoveUser = %v, want gone", res.Status)
	}
	wantListed(t, s)
	wantNoUserByID(t, s, "user-s1")
}

func testMovedNone(t *testing.T, s store.Store) {
	if f := moved(t, s, alice); len(f) != 0 {
		t.Fatalf("Moved = %+v", f)
	}
	login(t, s, alice, "s1", at(0))
	if f := moved(t, s, alice); len(f) != 0 {
		t.Fatalf("Moved after a sign-in = %+v", f)
	}
}

// A claim that never completed leaves a copy of the user waiting for its
// records from the old key; when the user has moved elsewhere since, a new
// claim of the same phone makes the copy wait for the records where they
// are, and the move brings them.
func testClaimMoveStaleReservation(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	wantSent(t, s, changeSend(bob, "chg", "user-s1", alice, at(time.Second)))
	if st := claim(t, s, claimReq(s, t, bob, "chg", alice, at(time.Second))); st != store.MoveDone {
		t.Fatalf("ClaimMove = %v", st)
	}
	// the move to bob stops there; the user moves to a third phone instead
	wantSent(t, s, changeSend(third, "chg3", "user-s1", alice, at(2*time.Second)))
	if st := claim(t, s, claimReq(s, t, third, "chg3", alice, at(2*time.Second))); st != store.MoveDone {
		t.Fatalf("ClaimMove third = %v", st)
	}
	if res := moveUser(t, s, store.MoveRequest{From: alice, To: third, UserID: "user-s1", Now: at(2 * time.Second)}); res.Status != store.MoveDone {
		t.Fatalf("MoveUser to third = %v", res.Status)
	}
	// then back to bob, from the third phone
	wantSent(t, s, changeSend(bob, "chg4", "user-s1", third, at(time.Minute)))
	if st := claim(t, s, claimReq(s, t, bob, "chg4", third, at(time.Minute))); st != store.MoveDone {
		t.Fatalf("ClaimMove back to bob = %v", st)
	}
	if u, _ := lookUser(t, s, bob); u.MovingFrom != third {
		t.Fatalf("the copy under bob moves from %q, want the third key", u.MovingFrom)
	}
	res := moveUser(t, s, store.MoveRequest{From: third, To: bob, UserID: "user-s1", Now: at(time.Minute)})
	if res.Status != store.MoveDone || res.User.MovingFrom != "" {
		t.Fatalf("MoveUser to bob = %+v", res)
	}
	if sess := getSession(t, s, bob, "s1"); !sess.Active(at(time.Minute)) {
		t.Fatalf("s1 did not arrive: %+v", sess)
	}
	wantRotate(t, rotate(t, s, bob, "rt-s1", "rt-s1b", 0, at(time.Minute)), store.RotateOK)
	// the copy's old wait is gone: completing the first move finds nothing
	if res := moveUser(t, s, store.MoveRequest{From: alice, To: bob, UserID: "user-s1", Now: at(2 * time.Minute)}); res.Status != store.MoveGone {
		t.Fatalf("MoveUser of the abandoned move = %v, want gone", res.Status)
	}
	if u, ok := lookUser(t, s, bob); !ok || u.ID != "user-s1" {
		t.Fatalf("completing the abandoned move removed the user: %+v %v", u, ok)
	}
}
