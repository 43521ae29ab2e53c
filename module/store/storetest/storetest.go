// Package storetest is the conformance suite of store.Store: the one
// definition of the semantics both stores must share. Each subtest is named
// after the behaviour it shows. Time is injected (a fixed base plus
// offsets); only the revocation feed's replay, which the interface measures
// from the wall clock, uses time.Now.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
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
	tests = []test{
		{"Hit_AllowsUpToLimit_ThenRefusesWithRetryAfter", testHitAllowsUpToLimit},
		{"Hit_RefusedHitNotRecorded", testHitRefusedNotRecorded},
		{"Hit_SlidingWindow_OldestLeaves", testHitSlidingWindow},
		{"Hit_KeysIndependent", testHitKeysIndependent},
		{"Hit_ZeroLimit_RefusesAll", testHitZeroLimit},
		{"Hit_LimitsOfOtherShapesOnOneKey_Independent", testHitShapesIndependent},

		{"BeginSend_StoresChallenge", testBeginSendStores},
		{"BeginSend_ReplacesEarlierChallenge", testBeginSendReplaces},
		{"BeginSend_PhoneLimit_FourthRefusedWithRetryAfter", testBeginSendPhoneLimit},
		{"BeginSend_PhoneLimit_PerPerson", testBeginSendPhoneLimitPerPerson},
		{"BeginSend_Cooldown_RefusedWithRetryAfter", testBeginSendCooldown},
		{"BeginSend_Cooldown_RefusalNotCounted", testBeginSendCooldownNotCounted},
		{"BeginSend_CooldownZero_Disabled", testBeginSendCooldownZero},
		{"BeginSend_Order_OptOutBeforeCooldown", testBeginSendOptOutBeforeCooldown},
		{"BeginSend_Order_CooldownBeforeLimit", testBeginSendCooldownBeforeLimit},
		{"BeginSend_Order_LimitBeforeUnknownUser", testBeginSendLimitBeforeUnknownUser},
		{"BeginSend_OptedOut_RefusedStoresNothing", testBeginSendOptedOut},
		{"BeginSend_UnknownUserRequireUser_CountsLimitStoresNothing", testBeginSendUnknownUser},
		{"BeginSend_KnownUserRequireUser_OK", testBeginSendKnownUser},
		{"BeginSend_LockedOut_CountsLimitStoresNothing", testBeginSendLocked},
		{"BeginSend_Unlimited_NoCooldownNoLimit", testBeginSendUnlimited},
		{"BeginSend_Invalid_RefusedNotUnavailable", testBeginSendInvalid},
		{"SetOptOut_Clear_AllowsSendAgain", testOptOutClear},

		{"Resend_KeepsChannelAndMetadata", testResendKeeps},
		{"Resend_ChannelGiven_Overrides", testResendChannelOverride},
		{"Resend_NewCodeInvalidatesOld_ResetsAttempts", testResendInvalidatesOld},
		{"Resend_NoChallenge_CountsLimitOnly", testResendNoChallenge},
		{"Resend_AfterCodeExpiryWithinKeep_OK", testResendAfterExpiry},
		{"Resend_AfterKeep_NoChallenge", testResendAfterKeep},

		{"AbortSend_RefundsCooldownAndLimit", testAbortRefunds},
		{"AbortSend_StaleID_KeepsNewerSend", testAbortStale},

		{"Challenge_None_NotFound", testChallengeNone},
		{"Challenge_Expired_StillReturned", testChallengeExpired},
		{"Challenge_Failures_AcrossChallenges", testChallengeFailuresAcross},

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

		{"User_Unknown_NotFound", testUserUnknown},
		{"Session_Unknown_NotFound", testSessionUnknown},
		{"Session_RevokedAndExpired_StillReturned", testSessionRevokedExpired},

		{"Rotate_ActiveToken_NewActiveOldUsed", testRotateActive},
		{"Rotate_ReuseWithinInterval_Sibling", testRotateSibling},
		{"Rotate_ReuseAfterInterval_RevokesSession", testRotateReuse},
		{"Rotate_ZeroInterval_AnyReuseRevokes", testRotateZeroInterval},
		{"Rotate_UnknownToken_NotFound", testRotateUnknown},
		{"Rotate_ExpiredSession_NotFound", testRotateExpired},
		{"Rotate_RevokedSession_NotFound", testRotateRevoked},
		{"Rotate_OtherPersonsToken_NotFound", testRotateOtherPerson},

		{"Revoke_One_OnlyThatSession", testRevokeOne},
		{"Revoke_All_EverySession", testRevokeAll},
		{"Revoke_Others_AllButGiven", testRevokeOthers},
		{"Revoke_AlreadyRevoked_NotReturned", testRevokeAlready},
		{"Revoke_Expired_NotReturned", testRevokeExpired},
		{"Revoke_OtherPersonsSession_Untouched", testRevokeOtherPerson},
		{"Revoke_AnnouncesOnFeed", testRevokeAnnounces},
		{"Reannounce_RecentRevocationsAnnouncedAgain", testReannounce},

		{"Subscribe_HealthyThenAnnouncementsDelivered", testSubscribeHealthy},
		{"Subscribe_RevokeSeenBySecondSubscriber", testSubscribeSecond},
		{"Subscribe_ReplaysRecent_BeforeHealthy", testSubscribeReplay},
		{"Subscribe_OlderThanRetain_NotReplayed", testSubscribeNoOldReplay},
		{"Subscribe_ReturnsWhenContextDone", testSubscribeReturns},
		{"Subscribe_ReportsEpochBeforeHealthy", testSubscribeEpoch},

		{"FirstSeen_SecondTimeFalse", testFirstSeen},
		{"FirstSeen_KeysIndependent", testFirstSeenKeys},
		{"Forget_SeenAgainAsFirst", testForget},
		{"Claim_FirstValueWins", testClaim},
		{"Ping_OK", testPing},
	}
	tests = append(tests, usersTests...)
	tests = append(tests, moveTests...)
}

// --- helpers ---

func newChallenge(id string, now time.Time) store.Challenge {
	return store.Challenge{
		ID:         id,
		CodeMAC:    []byte("mac of " + id),
		Phone:      phone,
		Channel:    "sms",
		CreateUser: true,
		Metadata:   meta,
		SentAt:     now,
		ExpiresAt:  now.Add(codeTTL),
	}
}

func sendReq(u store.UserKey, id string, now time.Time) store.SendRequest {
	return store.SendRequest{
		User:       u,
		Now:        now,
		Challenge:  newChallenge(id, now),
		Keep:       keep,
		PhoneLimit: phoneLimit,
	}
}

func send(t *testing.T, s store.Store, req store.SendRequest) store.SendResult {
	t.Helper()
	res, err := s.BeginSend(t.Context(), req)
	if err != nil {
		t.Fatalf("BeginSend(%s): %v", req.Challenge.ID, err)
	}
	return res
}

func wantStatus(t *testing.T, res store.SendResult, want store.SendStatus) {
	t.Helper()
	if res.Status != want {
		t.Fatalf("BeginSend status = %v, want %v", res.Status, want)
	}
}

func wantSent(t *testing.T, s store.Store, req store.SendRequest) store.SendResult {
	t.Helper()
	res := send(t, s, req)
	wantStatus(t, res, store.SendOK)
	return res
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

func revoke(t *testing.T, s store.Store, u store.UserKey, scope store.RevokeScope, id string, now time.Time) []string {
	t.Helper()
	ids, err := s.Revoke(t.Context(), u, scope, id, now)
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	return ids
}

func wantIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
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

// --- Hit ---

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

// --- BeginSend ---

func testBeginSendStores(t *testing.T, s store.Store) {
	req := sendReq(alice, "c1", at(0))
	res := wantSent(t, s, req)
	want := req.Challenge
	sameChallenge(t, "result challenge", res.Challenge, want)
	c, ok, failures := getChallenge(t, s, alice)
	if !ok || failures != 0 {
		t.Fatalf("Challenge found=%v failures=%d, want true 0", ok, failures)
	}
	sameChallenge(t, "stored challenge", c, want)
	wantNoChallenge(t, s, bob)
}

func testBeginSendReplaces(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	wantSent(t, s, sendReq(alice, "c2", at(time.Second)))
	wantChallengeID(t, s, alice, "c2")
	wantConsume(t, consume(t, s, consumeReq(alice, "c1", "s1", at(2*time.Second))), store.ConsumeGone)
	wantConsume(t, consume(t, s, consumeReq(alice, "c2", "s2", at(2*time.Second))), store.ConsumeOK)
}

func testBeginSendPhoneLimit(t *testing.T, s store.Store) {
	// 3 per 5 minutes
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	wantSent(t, s, sendReq(alice, "c2", at(time.Minute)))
	wantSent(t, s, sendReq(alice, "c3", at(2*time.Minute)))
	res := send(t, s, sendReq(alice, "c4", at(3*time.Minute)))
	wantStatus(t, res, store.SendPhoneLimited)
	if res.RetryAfter != 2*time.Minute {
		t.Fatalf("RetryAfter = %v, want 2m (when the first send leaves the window)", res.RetryAfter)
	}
	wantChallengeID(t, s, alice, "c3") // a refusal stores nothing
	wantSent(t, s, sendReq(alice, "c5", at(5*time.Minute)))
}

func testBeginSendPhoneLimitPerPerson(t *testing.T, s store.Store) {
	for i := range 3 {
		wantSent(t, s, sendReq(alice, fmt.Sprint("a", i), at(time.Duration(i)*time.Second)))
	}
	wantStatus(t, send(t, s, sendReq(alice, "a3", at(3*time.Second))), store.SendPhoneLimited)
	wantSent(t, s, sendReq(bob, "b0", at(3*time.Second)))
}

func testBeginSendCooldown(t *testing.T, s store.Store) {
	req := sendReq(alice, "c1", at(0))
	req.Cooldown = 30 * time.Second
	wantSent(t, s, req)
	req = sendReq(alice, "c2", at(10*time.Second))
	req.Cooldown = 30 * time.Second
	res := send(t, s, req)
	wantStatus(t, res, store.SendCooldown)
	if res.RetryAfter != 20*time.Second {
		t.Fatalf("RetryAfter = %v, want 20s", res.RetryAfter)
	}
	wantChallengeID(t, s, alice, "c1")
	req = sendReq(alice, "c3", at(30*time.Second))
	req.Cooldown = 30 * time.Second
	wantSent(t, s, req)
}

func testBeginSendCooldownNotCounted(t *testing.T, s store.Store) {
	mk := func(id string, d time.Duration) store.SendRequest {
		r := sendReq(alice, id, at(d))
		r.Cooldown = 30 * time.Second
		r.PhoneLimit = store.Limit{N: 2, Window: 5 * time.Minute}
		return r
	}
	wantSent(t, s, mk("c1", 0))
	wantStatus(t, send(t, s, mk("c2", 10*time.Second)), store.SendCooldown)
	wantSent(t, s, mk("c3", 30*time.Second)) // the cooldown refusal did not use the limit
	wantStatus(t, send(t, s, mk("c4", time.Minute)), store.SendPhoneLimited)
}

func testBeginSendCooldownZero(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	wantSent(t, s, sendReq(alice, "c2", at(0)))
}

func testBeginSendOptOutBeforeCooldown(t *testing.T, s store.Store) {
	req := sendReq(alice, "c1", at(0))
	req.Cooldown = time.Minute
	wantSent(t, s, req)
	if err := s.SetOptOut(t.Context(), alice, true, at(time.Second)); err != nil {
		t.Fatal(err)
	}
	req = sendReq(alice, "c2", at(2*time.Second))
	req.Cooldown = time.Minute
	wantStatus(t, send(t, s, req), store.SendOptedOut)
}

func testBeginSendCooldownBeforeLimit(t *testing.T, s store.Store) {
	mk := func(id string, d time.Duration) store.SendRequest {
		r := sendReq(alice, id, at(d))
		r.Cooldown = 30 * time.Second
		r.PhoneLimit = store.Limit{N: 1, Window: 5 * time.Minute}
		return r
	}
	wantSent(t, s, mk("c1", 0))
	res := send(t, s, mk("c2", 10*time.Second))
	wantStatus(t, res, store.SendCooldown)
	if res.RetryAfter != 20*time.Second {
		t.Fatalf("RetryAfter = %v, want 20s", res.RetryAfter)
	}
	res = send(t, s, mk("c3", 40*time.Second))
	wantStatus(t, res, store.SendPhoneLimited)
	if res.RetryAfter != 4*time.Minute+20*time.Second {
		t.Fatalf("RetryAfter = %v, want 4m20s", res.RetryAfter)
	}
}

func testBeginSendLimitBeforeUnknownUser(t *testing.T, s store.Store) {
	for i := range 3 {
		req := sendReq(alice, fmt.Sprint("c", i), at(time.Duration(i)*time.Second))
		req.RequireUser = true
		wantStatus(t, send(t, s, req), store.SendUnknownUser)
	}
	req := sendReq(alice, "c3", at(3*time.Second))
	req.RequireUser = true
	wantStatus(t, send(t, s, req), store.SendPhoneLimited)
}

func testBeginSendOptedOut(t *testing.T, s store.Store) {
	if err := s.SetOptOut(t.Context(), alice, true, at(0)); err != nil {
		t.Fatal(err)
	}
	req := sendReq(alice, "c1", at(time.Second))
	req.Cooldown = time.Minute
	res := send(t, s, req)
	wantStatus(t, res, store.SendOptedOut)
	if res.RetryAfter != 0 {
		t.Fatalf("RetryAfter = %v, want 0", res.RetryAfter)
	}
	wantNoChallenge(t, s, alice)
	if err := s.SetOptOut(t.Context(), alice, false, at(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Neither cooldown nor limit was recorded by the refusal.
	req = sendReq(alice, "c2", at(2*time.Second))
	req.PhoneLimit = store.Limit{N: 1, Window: time.Hour}
	wantSent(t, s, req)
}

func testOptOutClear(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.SetOptOut(ctx, alice, true, at(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOptOut(ctx, alice, true, at(0)); err != nil { // twice is fine
		t.Fatal(err)
	}
	wantStatus(t, send(t, s, sendReq(alice, "c1", at(time.Second))), store.SendOptedOut)
	wantSent(t, s, sendReq(bob, "b1", at(time.Second)))
	if err := s.SetOptOut(ctx, alice, false, at(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOptOut(ctx, bob, false, at(2*time.Second)); err != nil { // clearing nothing is fine
		t.Fatal(err)
	}
	wantSent(t, s, sendReq(alice, "c2", at(3*time.Second)))
}

func testBeginSendUnknownUser(t *testing.T, s store.Store) {
	mk := func(id string, d time.Duration) store.SendRequest {
		r := sendReq(alice, id, at(d))
		r.RequireUser = true
		r.Challenge.CreateUser = false
		r.Cooldown = 30 * time.Second
		r.PhoneLimit = store.Limit{N: 2, Window: 5 * time.Minute}
		return r
	}
	res := send(t, s, mk("c1", 0))
	wantStatus(t, res, store.SendUnknownUser)
	wantNoChallenge(t, s, alice)
	if _, ok, err := s.User(t.Context(), alice); err != nil || ok {
		t.Fatalf("User: found=%v err=%v, want none", ok, err)
	}
	// The cooldown was started...
	res = send(t, s, mk("c2", 10*time.Second))
	wantStatus(t, res, store.SendCooldown)
	if res.RetryAfter != 20*time.Second {
		t.Fatalf("RetryAfter = %v, want 20s", res.RetryAfter)
	}
	// ...and the limit used, exactly as for a known phone.
	wantStatus(t, send(t, s, mk("c3", 30*time.Second)), store.SendUnknownUser)
	res = send(t, s, mk("c4", time.Minute))
	wantStatus(t, res, store.SendPhoneLimited)
	if res.RetryAfter != 4*time.Minute {
		t.Fatalf("RetryAfter = %v, want 4m", res.RetryAfter)
	}
	wantNoChallenge(t, s, alice)
}

func testBeginSendKnownUser(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	req := sendReq(alice, "c2", at(time.Minute))
	req.RequireUser = true
	req.Challenge.CreateUser = false
	wantSent(t, s, req)
	wantChallengeID(t, s, alice, "c2")
}

func testBeginSendInvalid(t *testing.T, s store.Store) {
	bad := map[string]func(r *store.SendRequest){
		"empty challenge id": func(r *store.SendRequest) { r.Challenge.ID = "" },
		"zero keep":          func(r *store.SendRequest) { r.Keep = 0 },
		"zero window":        func(r *store.SendRequest) { r.PhoneLimit.Window = 0 },
		"empty user":         func(r *store.SendRequest) { r.User = "" },
	}
	for name, mutate := range bad {
		req := sendReq(alice, "c1", at(0))
		mutate(&req)
		_, err := s.BeginSend(t.Context(), req)
		if !errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: err = %v, want ErrInvalid and not ErrUnavailable", name, err)
		}
	}
	wantNoChallenge(t, s, alice)
}

// --- Resend ---

func resendReq(u store.UserKey, id string, now time.Time) store.SendRequest {
	r := sendReq(u, id, now)
	r.Resend = true
	r.Challenge.Channel = ""
	r.Challenge.CreateUser = false
	r.Challenge.Metadata = nil
	return r
}

func testResendKeeps(t *testing.T, s store.Store) {
	first := sendReq(alice, "c1", at(0))
	first.Challenge.Channel = "whatsapp"
	wantSent(t, s, first)

	req := resendReq(alice, "c2", at(time.Minute))
	res := wantSent(t, s, req)
	want := req.Challenge
	want.Channel = "whatsapp"
	want.CreateUser = true
	want.Metadata = meta
	sameChallenge(t, "resend result", res.Challenge, want)
	c := wantChallengeID(t, s, alice, "c2")
	sameChallenge(t, "stored after resend", c, want)
}

func testResendChannelOverride(t *testing.T, s store.Store) {
	first := sendReq(alice, "c1", at(0))
	first.Challenge.Channel = "whatsapp"
	wantSent(t, s, first)
	req := resendReq(alice, "c2", at(time.Minute))
	req.Challenge.Channel = "sms"
	res := wantSent(t, s, req)
	if res.Challenge.Channel != "sms" || !res.Challenge.CreateUser || !bytes.Equal(res.Challenge.Metadata, meta) {
		t.Fatalf("resend challenge = %+v, want channel sms with kept CreateUser and Metadata", res.Challenge)
	}
}

func testResendInvalidatesOld(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	attempt(t, s, alice, 5, at(time.Second))
	res := wantSent(t, s, resendReq(alice, "c2", at(time.Minute)))
	if res.Challenge.Attempts != 0 {
		t.Fatalf("Attempts = %d, want 0", res.Challenge.Attempts)
	}
	if c := wantChallengeID(t, s, alice, "c2"); c.Attempts != 0 {
		t.Fatalf("stored Attempts = %d, want 0", c.Attempts)
	}
	wantConsume(t, consume(t, s, consumeReq(alice, "c1", "s1", at(time.Minute))), store.ConsumeGone)
	wantConsume(t, consume(t, s, consumeReq(alice, "c2", "s2", at(time.Minute))), store.ConsumeOK)
}

func testResendNoChallenge(t *testing.T, s store.Store) {
	req := resendReq(alice, "c1", at(0))
	req.Cooldown = 30 * time.Second
	req.PhoneLimit = store.Limit{N: 2, Window: 5 * time.Minute}
	res := send(t, s, req)
	wantStatus(t, res, store.SendNoChallenge)
	wantNoChallenge(t, s, alice)

	req = sendReq(alice, "c2", at(10*time.Second))
	req.Cooldown = 30 * time.Second
	req.PhoneLimit = store.Limit{N: 2, Window: 5 * time.Minute}
	wantStatus(t, send(t, s, req), store.SendCooldown)

	req.Now, req.Challenge.ID = at(30*time.Second), "c3"
	wantSent(t, s, req)
	req.Now, req.Challenge.ID = at(time.Minute), "c4"
	wantStatus(t, send(t, s, req), store.SendPhoneLimited)
}

func testResendAfterExpiry(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	res := wantSent(t, s, resendReq(alice, "c2", at(codeTTL+time.Minute))) // expired, still kept
	if !res.Challenge.CreateUser {
		t.Fatal("resend after expiry lost CreateUser")
	}
}

func testResendAfterKeep(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	wantStatus(t, send(t, s, resendReq(alice, "c2", at(keep))), store.SendNoChallenge)
}

// --- AbortSend ---

func testAbortRefunds(t *testing.T, s store.Store) {
	mk := func(id string, d time.Duration) store.SendRequest {
		r := sendReq(alice, id, at(d))
		r.Cooldown = 30 * time.Second
		r.PhoneLimit = store.Limit{N: 1, Window: 5 * time.Minute}
		return r
	}
	wantSent(t, s, mk("c1", 0))
	if err := s.AbortSend(t.Context(), alice, "c1"); err != nil {
		t.Fatal(err)
	}
	wantNoChallenge(t, s, alice)
	wantSent(t, s, mk("c2", time.Second)) // no cooldown, limit refunded
	if err := s.AbortSend(t.Context(), alice, "unknown"); err != nil {
		t.Fatal(err)
	}
	wantChallengeID(t, s, alice, "c2")
}

func testAbortStale(t *testing.T, s store.Store) {
	mk := func(id string, d time.Duration) store.SendRequest {
		r := sendReq(alice, id, at(d))
		r.Cooldown = 30 * time.Second
		return r // 3 per 5 minutes
	}
	wantSent(t, s, mk("A", 0))
	wantSent(t, s, mk("B", 30*time.Second))
	if err := s.AbortSend(t.Context(), alice, "A"); err != nil {
		t.Fatal(err)
	}
	wantChallengeID(t, s, alice, "B")
	res := send(t, s, mk("x", 40*time.Second))
	wantStatus(t, res, store.SendCooldown) // B's cooldown stays
	if res.RetryAfter != 20*time.Second {
		t.Fatalf("RetryAfter = %v, want 20s", res.RetryAfter)
	}
	// A's send was refunded: B, C and D fit in 3 per 5 minutes.
	wantSent(t, s, mk("C", 60*time.Second))
	wantSent(t, s, mk("D", 90*time.Second))
	wantStatus(t, send(t, s, mk("E", 120*time.Second)), store.SendPhoneLimited)
}

// --- Challenge and Attempt ---

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

// --- Consume ---

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

// --- User and Session ---

func testUserUnknown(t *testing.T, s store.Store) {
	if _, ok, err := s.User(t.Context(), alice); err != nil || ok {
		t.Fatalf("User: found=%v err=%v, want not found", ok, err)
	}
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

// --- Rotate ---

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

// --- Revoke ---

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

// --- Subscribe ---

func announce(t *testing.T, s store.Store, now time.Time, ids ...string) {
	t.Helper()
	if err := s.Announce(t.Context(), ids, now); err != nil {
		t.Fatalf("Announce: %v", err)
	}
}

func testSubscribeHealthy(t *testing.T, s store.Store) {
	f := Subscribe(t, s, time.Minute)
	f.WaitHealthy(t, true)
	announce(t, s, time.Now(), "s1", "s2")
	f.WaitRevoked(t, "s1", "s2")
	announce(t, s, time.Now())
	announce(t, s, time.Now(), "s3")
	f.WaitRevoked(t, "s3")
	for _, e := range f.History {
		if e.Revoked != nil && len(e.Revoked) == 0 {
			t.Fatal("empty Revoked call")
		}
	}
}

func testSubscribeSecond(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	f1 := Subscribe(t, s, time.Minute)
	f2 := Subscribe(t, s, time.Minute)
	f1.WaitHealthy(t, true)
	f2.WaitHealthy(t, true)
	revoke(t, s, alice, store.RevokeOne, "s1", at(time.Minute))
	f1.WaitRevoked(t, "s1")
	f2.WaitRevoked(t, "s1")
}

func testSubscribeReplay(t *testing.T, s store.Store) {
	announce(t, s, time.Now().Add(-10*time.Second), "s1")
	announce(t, s, time.Now(), "s2")
	f := Subscribe(t, s, time.Minute)
	f.WaitHealthy(t, true)
	if !f.SawRevoked("s1", "s2") {
		t.Fatalf("feed before Healthy(true) = %+v, want the replay of s1 and s2", f.History)
	}
}

func testSubscribeNoOldReplay(t *testing.T, s store.Store) {
	announce(t, s, time.Now().Add(-2*time.Minute), "old")
	f := Subscribe(t, s, time.Minute)
	f.WaitHealthy(t, true)
	announce(t, s, time.Now(), "new")
	f.WaitRevoked(t, "new")
	if f.SawRevoked("old") {
		t.Fatal("an announcement older than retain was replayed")
	}
}

func testSubscribeReturns(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	f := &Feed{events: make(chan FeedEvent, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Subscribe(ctx, time.Minute, f)
	}()
	f.WaitHealthy(t, true)
	cancel()
	select {
	case <-done:
	case <-time.After(FeedTimeout):
		t.Fatal("Subscribe did not return after its context ended")
	}
}

// --- FirstSeen, Ping ---

func testFirstSeen(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, want := range []bool{true, false, false} {
		got, err := s.FirstSeen(ctx, "nonce:abc", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("FirstSeen call %d = %v, want %v", i+1, got, want)
		}
	}
}

func testFirstSeenKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, key := range []string{"nonce:a", "nonce:b"} {
		if got, err := s.FirstSeen(ctx, key, time.Hour); err != nil || !got {
			t.Fatalf("FirstSeen(%s) = %v, %v; want true", key, got, err)
		}
	}
}

func testForget(t *testing.T, s store.Store) {
	ctx := t.Context()
	if got, err := s.FirstSeen(ctx, "nonce:f", time.Hour); err != nil || !got {
		t.Fatalf("first: %v %v", got, err)
	}
	if err := s.Forget(ctx, "nonce:f"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FirstSeen(ctx, "nonce:f", time.Hour); err != nil || !got {
		t.Fatalf("after Forget: %v %v, want first again", got, err)
	}
	if got, _ := s.FirstSeen(ctx, "nonce:f", time.Hour); got {
		t.Fatal("seen twice after Forget is not first")
	}
	if err := s.Forget(ctx, "nonce:never"); err != nil {
		t.Fatalf("forgetting an unknown key: %v", err)
	}
}

func testClaim(t *testing.T, s store.Store) {
	ctx := t.Context()
	if got, err := s.Claim(ctx, "secret", "fp-a"); err != nil || got != "fp-a" {
		t.Fatalf("first claim: %q %v", got, err)
	}
	if got, err := s.Claim(ctx, "secret", "fp-b"); err != nil || got != "fp-a" {
		t.Fatalf("second claim: %q %v, want the first value", got, err)
	}
	if got, err := s.Claim(ctx, "other", "fp-b"); err != nil || got != "fp-b" {
		t.Fatalf("another key: %q %v", got, err)
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// A locked-out person gets no code: the send counts like an unknown
// user's (so its answers cannot be told apart) and no challenge is stored.
func testBeginSendLocked(t *testing.T, s store.Store) {
	lockOut(t, s, alice, at(0))
	before := wantChallengeID(t, s, alice, fmt.Sprintf("lock-%d-5", at(0).UnixMilli()))
	req := sendReq(alice, "c-locked", at(6*time.Minute))
	req.Cooldown = 30 * time.Second
	wantStatus(t, send(t, s, req), store.SendLocked)
	if c := wantChallengeID(t, s, alice, before.ID); c.Attempts != before.Attempts {
		t.Fatalf("the locked send changed the stored challenge: %+v", c)
	}
	res := send(t, s, sendReq(alice, "c-cool", at(6*time.Minute+time.Second)))
	wantStatus(t, res, store.SendCooldown) // the refused send still started the cooldown
	// once the lock ends, codes go out again
	wantSent(t, s, sendReq(alice, "c-after", at(lockout.Base)))
}

// An unlimited send (a test phone, which sends nothing) neither waits for
// the cooldown nor counts against the phone limit.
func testBeginSendUnlimited(t *testing.T, s store.Store) {
	for i := range 5 {
		req := sendReq(alice, fmt.Sprintf("c%d", i), at(time.Duration(i)*time.Second))
		req.Cooldown = time.Minute
		req.Unlimited = true
		wantSent(t, s, req)
	}
	req := sendReq(alice, "limited", at(10*time.Second))
	req.Cooldown = time.Minute
	for i := range phoneLimit.N {
		req.Challenge.ID = fmt.Sprintf("limited%d", i)
		req.Now = at(time.Duration(10+i*60) * time.Second)
		wantSent(t, s, req) // neither cooldown nor limit was touched
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

// Every connection reports the store's epoch before it is healthy, and
// the epoch of a store that keeps its data stays the same.
func testSubscribeEpoch(t *testing.T, s store.Store) {
	f := Subscribe(t, s, time.Minute)
	f.WaitHealthy(t, true)
	epochs := f.Epochs()
	if len(epochs) != 1 || epochs[0].IsZero() || epochs[0].After(time.Now()) {
		t.Fatalf("epochs before healthy = %v, want one, in the past", epochs)
	}
	g := Subscribe(t, s, time.Minute)
	g.WaitHealthy(t, true)
	if other := g.Epochs(); len(other) != 1 || !other[0].Equal(epochs[0]) {
		t.Fatalf("second subscriber's epochs = %v, want %v", other, epochs)
	}
}
