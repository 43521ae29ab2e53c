package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/captcha"
	"github.com/otpgate/otpgate/module/store"
)

// Supabase clients send fields otpgate does not use: gotrue-dart's
// redirect_to and gotrue_meta_security.captchaToken (both null), auth-js's
// code_challenge. They are ignored; look-alikes of known fields are not
// (TestDecodeBody_KeyFoldingOntoAField_Refused).
func TestDecodeBody_UnknownFieldsIgnored(t *testing.T) {
	e := newEnv(t, openMemory(t))
	r := e.do("POST", "/auth/v1/otp", `{"phone":"`+alice+`","data":{},"create_user":true,"gotrue_meta_security":{"captcha_token":null},"channel":"sms","future_field":{"x":[1,2]}}`)
	if r.status != 200 {
		t.Fatalf("send with extras: %d %s", r.status, r.raw)
	}
	code := e.sender.lastCode(t, alice)
	r = e.do("POST", "/auth/v1/verify", `{"phone":"`+alice+`","token":"`+code+`","type":"sms","redirect_to":null,"gotrue_meta_security":{"captchaToken":null}}`)
	if r.status != 200 {
		t.Fatalf("verify with gotrue-dart's extras: %d %s", r.status, r.raw)
	}
	// duplicates stay refused, also among unknown fields
	wantError(t, e.do("POST", "/auth/v1/otp", `{"phone":"`+alice+`","extra":1,"EXTRA":2}`), 400, "bad_json")
}

// gotrue-dart up to 2.22 sends verifyOTP's captcha token as
// gotrue_meta_security.captchaToken; it counts like captcha_token.
func TestSend_CaptchaToken_CamelCaseAccepted(t *testing.T) {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"success":%v}`, r.PostForm.Get("response") == "good-token")
	}))
	defer site.Close()
	e := newEnv(t, openMemory(t), func(c *Config) {
		c.Captcha = &captcha.Verifier{Provider: "turnstile", Secret: "shh", VerifyURL: site.URL}
	})
	wantError(t, e.do("POST", "/auth/v1/otp", `{"phone":"`+alice+`","gotrue_meta_security":{"captchaToken":"bad-token"}}`), 400, "captcha_failed")
	if r := e.do("POST", "/auth/v1/otp", `{"phone":"`+alice+`","gotrue_meta_security":{"captchaToken":"good-token"}}`); r.status != 200 {
		t.Fatalf("camelCase captcha token: %d %s", r.status, r.raw)
	}
}

// GoTrue accepts a phone without its '+': the same digits are the same
// number for the send, the limits, the verify and the resend. The API
// user object spells the phone as Supabase does (digits), the identity
// header keeps +E.164.
func TestPhone_WithoutPlus_SameNumberEverywhere(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		digits := alice[1:]
		if r := e.do("POST", "/auth/v1/otp", `{"phone":"`+digits+`"}`); r.status != 200 || r.body["masked_phone"] != "+1***-***-0123" {
			t.Fatalf("send: %d %s", r.status, r.raw)
		}
		// the same number: the cooldown holds, spelled either way
		wantError(t, e.send(alice), 429, "over_sms_send_rate_limit")
		wantError(t, e.do("POST", "/auth/v1/resend", `{"type":"sms","phone":"1 415 555 0123"}`), 429, "over_sms_send_rate_limit")
		r := e.verify(digits, e.sender.lastCode(t, alice))
		if r.status != 200 {
			t.Fatalf("verify: %d %s", r.status, r.raw)
		}
		if u := r.body["user"].(map[string]any); u["phone"] != digits {
			t.Fatalf("user.phone = %v, want %s", u["phone"], digits)
		}
		up := e.do("GET", "/app", "", bearer(r)...)
		if got := up.body["phone"].([]any); len(got) != 1 || got[0] != alice {
			t.Fatalf("X-Auth-Phone = %v, want %s", got, alice)
		}
		// a national number is still refused
		wantError(t, e.do("POST", "/auth/v1/otp", `{"phone":"0`+digits[1:]+`"}`), 400, "validation_failed")
	})
}

func TestUpdateUser_Data_MergedAsGoTrueDoes(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		if r := e.do("POST", "/auth/v1/otp", `{"phone":"`+alice+`","data":{"name":"Alice","theme":"dark"}}`); r.status != 200 {
			t.Fatalf("send: %d %s", r.status, r.raw)
		}
		s := e.verify(alice, e.sender.lastCode(t, alice))
		e.clock.Advance(time.Second)
		r := e.do("PUT", "/auth/v1/user", `{"data":{"plan":"pro","theme":null,"nested":{"a":[1]}},"code_challenge":null,"code_challenge_method":null}`, bearer(s)...)
		if r.status != 200 {
			t.Fatalf("PUT /user: %d %s", r.status, r.raw)
		}
		meta := fmt.Sprint(r.body["user_metadata"])
		if meta != "map[name:Alice nested:map[a:[1]] plan:pro]" || r.body["phone"] != alice[1:] || r.body["updated_at"] == s.body["user"].(map[string]any)["updated_at"] {
			t.Fatalf("PUT /user answered %s", r.raw)
		}
		if g := e.do("GET", "/auth/v1/user", "", bearer(s)...); fmt.Sprint(g.body["user_metadata"]) != meta {
			t.Fatalf("GET /user after the update: %s", g.raw)
		}
		// nothing to change: the user as it is
		if r := e.do("PUT", "/auth/v1/user", `{}`, bearer(s)...); r.status != 200 || fmt.Sprint(r.body["user_metadata"]) != meta {
			t.Fatalf("empty update: %d %s", r.status, r.raw)
		}
		big := `{"data":{"x":"` + strings.Repeat("a", 3000) + `"}}`
		if r := e.do("PUT", "/auth/v1/user", big, bearer(s)...); r.status != 200 {
			t.Fatalf("3 KB of metadata: %d %s", r.status, r.raw)
		}
		// 4 KiB in all, not per update
		wantError(t, e.do("PUT", "/auth/v1/user", `{"data":{"y":"`+strings.Repeat("b", 1500)+`"}}`, bearer(s)...), 400, "validation_failed")
		wantError(t, e.do("PUT", "/auth/v1/user", `{"data":[1]}`, bearer(s)...), 400, "validation_failed")
		wantError(t, e.do("PUT", "/auth/v1/user", `{"email":"a@example.com"}`, bearer(s)...), 400, "validation_failed")
		wantError(t, e.do("PUT", "/auth/v1/user", `{"data":{"a":1,"a":2}}`, bearer(s)...), 400, "bad_json")
		wantError(t, e.do("PUT", "/auth/v1/user", `{"data":{"a":1}}`), 401, "no_authorization")
		r = e.do("POST", "/auth/v1/user", `{}`, bearer(s)...)
		wantError(t, r, 405, "method_not_allowed")
		if r.header.Get("Allow") != "GET, PUT" {
			t.Fatalf("Allow = %q", r.header.Get("Allow"))
		}
		// a signed-out session cannot update
		if r := e.do("POST", "/auth/v1/logout", "", bearer(s)...); r.status != 204 {
			t.Fatalf("logout: %d", r.status)
		}
		wantError(t, e.do("PUT", "/auth/v1/user", `{"data":{"a":1}}`, bearer(s)...), 401, "session_not_found")
	})
}

// changePhone asks for a phone change for session s and verifies its code.
func (e *env) changePhone(s resp, to string) resp {
	e.t.Helper()
	r := e.do("PUT", "/auth/v1/user", `{"phone":"`+to+`"}`, bearer(s)...)
	if r.status != 200 || r.body["new_phone"] != to[1:] || r.body["phone_change_sent_at"] == nil {
		e.t.Fatalf("PUT /user phone: %d %s", r.status, r.raw)
	}
	v := e.do("POST", "/auth/v1/verify", `{"type":"phone_change","phone":"`+to+`","token":"`+e.sender.lastCode(e.t, to)+`"}`)
	if v.status != 200 {
		e.t.Fatalf("verify phone_change: %d %s", v.status, v.raw)
	}
	return v
}

// A phone change moves the user (same id) to the new phone; sessions
// started before it continue, and the new phone reaches the upstream from
// their next refresh. The old phone no longer names the user.
func TestPhoneChange_UserMovesSessionsContinue(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		s1 := e.login(alice)
		e.clock.Advance(31 * time.Second)
		s2 := e.login(alice) // a second device
		id := s1.body["user"].(map[string]any)["id"].(string)

		r := e.do("PUT", "/auth/v1/user", `{"phone":"`+bob+`"}`, bearer(s1)...)
		if r.status != 200 || r.body["new_phone"] != bob[1:] || r.body["phone"] != alice[1:] {
			t.Fatalf("PUT /user phone: %d %s", r.status, r.raw)
		}
		code := e.sender.lastCode(t, bob)
		// the change's code is not a sign-in code, nor the other way round
		wantError(t, e.verify(bob, code), 403, "otp_expired")
		wantError(t, e.do("POST", "/auth/v1/verify", `{"type":"phone_change","phone":"`+bob+`","token":"000000"}`), 403, "otp_expired")
		v := e.do("POST", "/auth/v1/verify", `{"type":"phone_change","phone":"`+bob[1:]+`","token":"`+code+`"}`)
		if v.status != 200 {
			t.Fatalf("verify phone_change: %d %s", v.status, v.raw)
		}
		u := v.body["user"].(map[string]any)
		if u["id"] != id || u["phone"] != bob[1:] || v.body["access_token"] == nil || v.body["refresh_token"] == nil {
			t.Fatalf("verify phone_change answered %s", v.raw)
		}
		// the code is used
		wantError(t, e.do("POST", "/auth/v1/verify", `{"type":"phone_change","phone":"`+bob+`","token":"`+code+`"}`), 403, "otp_expired")

		// tokens from before the change still work, and see the new phone
		if g := e.do("GET", "/auth/v1/user", "", bearer(s1)...); g.status != 200 || g.body["id"] != id || g.body["phone"] != bob[1:] {
			t.Fatalf("GET /user with an access token from before the change: %d %s", g.status, g.raw)
		}
		// the old number may soon belong to someone else: once the change
		// is seen, the upstream gets the new phone even for an older token
		if up := e.do("GET", "/app", "", bearer(s1)...); up.status != 200 || fmt.Sprint(up.body["phone"]) != "["+bob+"]" {
			t.Fatalf("gate with an access token from before the change: %d %s", up.status, up.raw)
		}
		ref := e.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"`+s1.body["refresh_token"].(string)+`"}`)
		if ref.status != 200 || ref.body["user"].(map[string]any)["phone"] != bob[1:] {
			t.Fatalf("refresh with a token from before the change: %d %s", ref.status, ref.raw)
		}
		if up := e.do("GET", "/app", "", bearer(ref)...); up.status != 200 || fmt.Sprint(up.body["phone"]) != "["+bob+"]" || fmt.Sprint(up.body["user_id"]) != "["+id+"]" {
			t.Fatalf("gate after the refresh: %d %s", up.status, up.raw)
		}
		if up := e.do("GET", "/app", "", bearer(v)...); up.status != 200 || fmt.Sprint(up.body["phone"]) != "["+bob+"]" {
			t.Fatalf("gate with the change's own session: %d %s", up.status, up.raw)
		}
		// the refreshed token's successor is found under the new key too
		if again := e.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"`+ref.body["refresh_token"].(string)+`"}`); again.status != 200 {
			t.Fatalf("second refresh: %d %s", again.status, again.raw)
		}
		// signing out with a token from before the change ends its session
		if lo := e.do("POST", "/auth/v1/logout", "", bearer(s2)...); lo.status != 204 {
			t.Fatalf("logout with a token from before the change: %d %s", lo.status, lo.raw)
		}
		wantError(t, e.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"`+s2.body["refresh_token"].(string)+`"}`), 401, "session_not_found")

		// the administrator finds the user under its new phone
		if a := e.admin("GET", "/users/"+id, ""); a.status != 200 || a.body["phone"] != bob[1:] {
			t.Fatalf("admin GET: %d %s", a.status, a.raw)
		}
		if a := e.admin("GET", "/users?phone="+bob[1:], ""); a.body["total"] != float64(1) {
			t.Fatalf("admin list by the new phone: %s", a.raw)
		}
		// the new phone signs in to the same user; the old one is free
		e.clock.Advance(time.Minute)
		if in := e.login(bob); in.body["user"].(map[string]any)["id"] != id {
			t.Fatalf("sign-in with the new phone: %s", in.raw)
		}
		e.clock.Advance(time.Minute)
		if in := e.login(alice); in.body["user"].(map[string]any)["id"] == id {
			t.Fatal("the old phone still signs in to the user that moved away")
		}
	})
}

// Changing to a phone that is another user's is answered like a sent code,
// after the same delay, and sends nothing; the limits count as for a send.
func TestPhoneChange_PhoneOfAnotherUser_AnsweredAsSentNothingSent(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		s := e.login(alice)
		e.login(bob)
		e.clock.Advance(time.Minute)
		sent := e.sender.count()
		r := e.do("PUT", "/auth/v1/user", `{"phone":"`+bob+`"}`, bearer(s)...)
		if r.status != 200 || r.body["new_phone"] != bob[1:] || r.body["phone_change_sent_at"] == nil {
			t.Fatalf("PUT /user: %d %s", r.status, r.raw)
		}
		if e.sender.count() != sent {
			t.Fatal("a code went to another user's phone")
		}
		if len(e.slept) == 0 {
			t.Fatal("the refusal was answered without the delay of a real send")
		}
		wantError(t, e.do("PUT", "/auth/v1/user", `{"phone":"`+bob+`"}`, bearer(s)...), 429, "over_sms_send_rate_limit")
		for _, code := range []string{"000000", e.sender.lastCode(t, bob)} {
			wantError(t, e.do("POST", "/auth/v1/verify", `{"type":"phone_change","phone":"`+bob+`","token":"`+code+`"}`), 403, "otp_expired")
		}
		if g := e.do("GET", "/auth/v1/user", "", bearer(s)...); g.body["phone"] != alice[1:] {
			t.Fatalf("the user changed: %s", g.raw)
		}
		// the same phone again is no change at all
		if r := e.do("PUT", "/auth/v1/user", `{"phone":"`+alice[1:]+`"}`, bearer(s)...); r.status != 200 || r.body["new_phone"] != nil {
			t.Fatalf("PUT the current phone: %d %s", r.status, r.raw)
		}
	})
}

// A phone change's code has the limits of /otp: the cooldown, and a resend
// (type phone_change) makes the first code invalid.
func TestPhoneChange_ResendLimitsAndNewCode(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		s := e.login(alice)
		if r := e.do("PUT", "/auth/v1/user", `{"phone":"`+bob+`"}`, bearer(s)...); r.status != 200 {
			t.Fatalf("PUT: %d %s", r.status, r.raw)
		}
		first := e.sender.lastCode(t, bob)
		wantError(t, e.do("POST", "/auth/v1/resend", `{"type":"phone_change","phone":"`+bob+`"}`), 429, "over_sms_send_rate_limit")
		e.clock.Advance(31 * time.Second)
		if r := e.do("POST", "/auth/v1/resend", `{"type":"phone_change","phone":"`+bob+`"}`); r.status != 200 {
			t.Fatalf("resend: %d %s", r.status, r.raw)
		}
		second := e.sender.lastCode(t, bob)
		if first != second {
			wantError(t, e.do("POST", "/auth/v1/verify", `{"type":"phone_change","phone":"`+bob+`","token":"`+first+`"}`), 403, "otp_expired")
		}
		v := e.do("POST", "/auth/v1/verify", `{"type":"phone_change","phone":"`+bob+`","token":"`+second+`"}`)
		if v.status != 200 || v.body["user"].(map[string]any)["phone"] != bob[1:] {
			t.Fatalf("verify the resent code: %d %s", v.status, v.raw)
		}
	})
}

// Under closed sign-up, a user that exists because its phone is listed
// would lose its access on an unlisted phone: its changes are refused
// before anything is sent, whether the new phone is listed or not, so
// that the answer does not tell which phones are listed.
func TestPhoneChange_ListedUserToUnlistedPhone_Refused(t *testing.T) {
	e := newEnv(t, openMemory(t), closedSignup, withRoster(t, map[string][]string{alice: {"ops"}, carol: {"ops"}}, ""))
	s := e.login(alice)
	unlisted := e.do("PUT", "/auth/v1/user", `{"phone":"`+bob+`"}`, bearer(s)...)
	wantError(t, unlisted, 403, "phone_not_allowed")
	listed := e.do("PUT", "/auth/v1/user", `{"phone":"`+carol+`"}`, bearer(s)...)
	wantError(t, listed, 403, "phone_not_allowed")
	if unlisted.raw != listed.raw {
		t.Fatalf("the answers tell a listed phone from an unlisted one:\n%s\n%s", unlisted.raw, listed.raw)
	}
	if n := e.sender.count(); n != 1 {
		t.Fatalf("%d messages sent, want only the sign-in's", n)
	}
}

// failingMoves fails the first MoveUser calls before they reach the store:
// a phone change cut short after its claim.
type failingMoves struct {
	store.Store
	fail atomic.Int32
}

func (f *failingMoves) MoveUser(ctx context.Context, req store.MoveRequest) (store.MoveResult, error) {
	if f.fail.Add(-1) >= 0 {
		return store.MoveResult{}, fmt.Errorf("move cut short: %w", store.ErrUnavailable)
	}
	return f.Store.MoveUser(ctx, req)
}

// A phone change whose move stops after the new phone was reserved
// answers 503; the account stays usable under the old key, and the move
// is completed by the next sign-in with the new phone.
func TestPhoneChange_CutShort_CompletedLater(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		st := &failingMoves{Store: open(t)}
		e := newEnv(t, st)
		s := e.login(alice)
		id := s.body["user"].(map[string]any)["id"]
		if r := e.do("PUT", "/auth/v1/user", `{"phone":"`+bob+`"}`, bearer(s)...); r.status != 200 {
			t.Fatalf("PUT: %d %s", r.status, r.raw)
		}
		st.fail.Store(1)
		v := e.do("POST", "/auth/v1/verify", `{"type":"phone_change","phone":"`+bob+`","token":"`+e.sender.lastCode(t, bob)+`"}`)
		wantError(t, v, 503, "store_unavailable")
		if g := e.do("GET", "/auth/v1/user", "", bearer(s)...); g.status != 200 || g.body["phone"] != alice[1:] {
			t.Fatalf("GET /user while the move waits: %d %s", g.status, g.raw)
		}
		// the new phone is reserved: nobody else signs up with it, and
		// its owner signing in completes the move
		e.clock.Advance(time.Minute)
		in := e.login(bob)
		if in.body["user"].(map[string]any)["id"] != id || in.body["user"].(map[string]any)["phone"] != bob[1:] {
			t.Fatalf("sign-in with the new phone: %s", in.raw)
		}
		if g := e.do("GET", "/auth/v1/user", "", bearer(s)...); g.status != 200 || g.body["phone"] != bob[1:] {
			t.Fatalf("GET /user after the move completed: %d %s", g.status, g.raw)
		}
		ref := e.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"`+s.body["refresh_token"].(string)+`"}`)
		if ref.status != 200 {
			t.Fatalf("refresh after the move completed: %d %s", ref.status, ref.raw)
		}
	})
}
