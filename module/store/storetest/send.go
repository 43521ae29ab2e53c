package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// The subtests of BeginSend (its checks and their order, the phone limit,
// the cooldown and opt-outs) and of AbortSend.

var sendTests = []test{
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

	{"AbortSend_RefundsCooldownAndLimit", testAbortRefunds},
	{"AbortSend_StaleID_KeepsNewerSend", testAbortStale},
}

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
