package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// The subtests of resends: a BeginSend with Resend, which keeps what the
// stored challenge asked for.

var resendTests = []test{
	{"Resend_KeepsChannelAndMetadata", testResendKeeps},
	{"Resend_ChannelGiven_Overrides", testResendChannelOverride},
	{"Resend_NewCodeInvalidatesOld_ResetsAttempts", testResendInvalidatesOld},
	{"Resend_NoChallenge_CountsLimitOnly", testResendNoChallenge},
	{"Resend_AfterCodeExpiryWithinKeep_OK", testResendAfterExpiry},
	{"Resend_AfterKeep_NoChallenge", testResendAfterKeep},
}

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
