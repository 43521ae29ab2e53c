package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/captcha"
	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/phone"
	"github.com/otpgate/otpgate/module/sender"
	"github.com/otpgate/otpgate/module/store"
	"github.com/otpgate/otpgate/module/store/memstore"
)

const alice = "+14155550123"

func TestSend_ReturnsContractBody(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		r := e.do("POST", "/auth/v1/otp", `{"phone":" +1 (415) 555-0123 ","create_user":true,"data":{"name":"Alice"},"channel":"sms"}`)
		if r.status != 200 {
			t.Fatalf("status %d %s", r.status, r.raw)
		}
		want := map[string]any{"message_id": "msg-0123", "masked_phone": "+1***-***-0123", "channel": "sms", "expires_in": 300.0, "resend_after": 30.0}
		for k, v := range want {
			if r.body[k] != v {
				t.Errorf("%s = %v, want %v", k, r.body[k], v)
			}
		}
		if len(r.body) != len(want) {
			t.Errorf("body has extra fields: %s", r.raw)
		}
		code := e.sender.lastCode(t, alice)
		if len(code) != 6 || !isDigits(code) {
			t.Fatalf("code %q is not 6 digits", code)
		}
		m := e.sender.msgs[0]
		if m.TTL != 5*time.Minute || m.App != "otpgate" || m.Channel != "sms" {
			t.Fatalf("message %+v", m)
		}
	})
}

func TestSend_CodeLengthConfigurable(t *testing.T) {
	e := newEnv(t, openMemory(t), func(c *Config) { c.CodeLength = 8 })
	e.send(alice)
	if code := e.sender.lastCode(t, alice); len(code) != 8 {
		t.Fatalf("code %q, want 8 digits", code)
	}
}

func TestSend_PhoneLimit_FourthIs429WithRetryAfter(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t), func(c *Config) { c.NoResendWait = true })
		for i := 0; i < 3; i++ {
			if r := e.send(alice); r.status != 200 {
				t.Fatalf("send %d: %d %s", i, r.status, r.raw)
			}
			e.clock.Advance(time.Minute)
		}
		r := e.send(alice)
		wantError(t, r, 429, "over_sms_send_rate_limit")
		// the first send leaves the 5-minute window 2 minutes from now
		if got := r.header.Get("Retry-After"); got != "120" {
			t.Fatalf("Retry-After = %q, want 120", got)
		}
		if e.sender.count() != 3 {
			t.Fatalf("%d messages sent, want 3", e.sender.count())
		}
		e.clock.Advance(2 * time.Minute)
		if r := e.send(alice); r.status != 200 {
			t.Fatalf("after the window: %d %s", r.status, r.raw)
		}
	})
}

func TestSend_Cooldown_ResendWithin30sIs429(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		e.send(alice)
		e.clock.Advance(10 * time.Second)
		r := e.do("POST", "/auth/v1/resend", `{"type":"sms","phone":"`+alice+`"}`)
		wantError(t, r, 429, "over_sms_send_rate_limit")
		if got := r.header.Get("Retry-After"); got != "20" {
			t.Fatalf("Retry-After = %q, want 20", got)
		}
		e.clock.Advance(20 * time.Second)
		if r := e.do("POST", "/auth/v1/resend", `{"type":"sms","phone":"`+alice+`"}`); r.status != 200 {
			t.Fatalf("resend after cooldown: %d %s", r.status, r.raw)
		}
	})
}

func TestSend_IPLimit_EleventhIs429(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		for i := 0; i < 10; i++ {
			if r := e.send(fmt.Sprintf("+1415555%04d", 100+i)); r.status != 200 {
				t.Fatalf("send %d: %d %s", i, r.status, r.raw)
			}
		}
		r := e.send("+14155550999")
		wantError(t, r, 429, "over_request_rate_limit")
		if r.header.Get("Retry-After") != "600" {
			t.Fatalf("Retry-After = %q", r.header.Get("Retry-After"))
		}
		e.setIP("198.51.100.9")
		if r := e.send("+14155550999"); r.status != 200 {
			t.Fatalf("another IP: %d %s", r.status, r.raw)
		}
	})
}

func TestSend_BadInput_ClearErrorNothingSentNoQuotaUsed(t *testing.T) {
	big := `{"phone":"` + alice + `","data":{"x":"` + strings.Repeat("a", 70<<10) + `"}}`
	meta := `{"phone":"` + alice + `","data":{"x":"` + strings.Repeat("a", 5<<10) + `"}}`
	cases := []struct {
		name, body string
		status     int
		code       string
	}{
		{"too large", big, 413, "request_too_large"},
		{"broken json", `{"phone":`, 400, "bad_json"},
		{"not an object", `["+14155550123"]`, 400, "bad_json"},
		{"look-alike of a field", `{"phone":"` + alice + `","Channel":"whatsapp"}`, 400, "bad_json"},
		{"duplicate key", `{"phone":"+14155550199","phone":"` + alice + `"}`, 400, "bad_json"},
		{"nested duplicate key", `{"phone":"` + alice + `","data":{"a":1,"a":2}}`, 400, "bad_json"},
		{"wrong type", `{"phone":14155550123}`, 400, "bad_json"},
		{"two objects", `{"phone":"` + alice + `"}{}`, 400, "bad_json"},
		{"metadata over 4 KiB", meta, 400, "validation_failed"},
		{"metadata not an object", `{"phone":"` + alice + `","data":[1]}`, 400, "validation_failed"},
		{"missing phone", `{}`, 400, "validation_failed"},
		{"national number", `{"phone":"04155550123"}`, 400, "validation_failed"},
		{"letters", `{"phone":"+1415555CALL"}`, 400, "validation_failed"},
		{"arabic-indic digits", `{"phone":"+١٤١٥٥٥٥٠١٢٣"}`, 400, "validation_failed"},
		{"fullwidth digits", `{"phone":"+１４１５５５５０１２３"}`, 400, "validation_failed"},
		{"unknown channel", `{"phone":"` + alice + `","channel":"pigeon"}`, 400, "validation_failed"},
		{"unconfigured whatsapp", `{"phone":"` + alice + `","channel":"whatsapp"}`, 400, "validation_failed"},
		{"premium rate", `{"phone":"+19005550123"}`, 403, "phone_not_allowed"},
		{"non-geographic", `{"phone":"+80012345678"}`, 403, "phone_not_allowed"},
	}
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		for _, c := range cases {
			r := e.do("POST", "/auth/v1/otp", c.body)
			if r.status != c.status || r.body["error_code"] != c.code {
				t.Errorf("%s: got %d %.200s, want %d %s", c.name, r.status, r.raw, c.status, c.code)
			}
			if msg, _ := r.body["msg"].(string); msg == "" {
				t.Errorf("%s: no message", c.name)
			}
		}
		if e.sender.count() != 0 {
			t.Fatalf("bad requests reached the sender %d times", e.sender.count())
		}
		// neither the IP's quota (10) nor alice's (3) moved
		for i := 0; i < 3; i++ {
			if r := e.send(alice); r.status != 200 {
				t.Fatalf("valid send %d after bad ones: %d %s", i, r.status, r.raw)
			}
			e.clock.Advance(31 * time.Second)
		}
		for i := 0; i < 7; i++ {
			if r := e.send(fmt.Sprintf("+1415555%04d", 200+i)); r.status != 200 {
				t.Fatalf("ip quota was consumed by bad requests: %d %s", r.status, r.raw)
			}
		}
	})
}

func TestSend_WrongContentType_Refused(t *testing.T) {
	e := newEnv(t, openMemory(t))
	r := e.do("POST", "/auth/v1/otp", `{"phone":"`+alice+`"}`, "Content-Type", "text/plain")
	if r.status != 400 {
		t.Fatalf("got %d %s", r.status, r.raw)
	}
}

func TestSend_UnknownPhoneWithoutCreateUser_SameAnswerNoSMS(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		known := "+14155550111"
		e.login(known)
		e.clock.Advance(time.Hour)
		sentBefore := e.sender.count()

		a := e.do("POST", "/auth/v1/otp", `{"phone":"`+known+`","create_user":false}`)
		b := e.do("POST", "/auth/v1/otp", `{"phone":"+14155550222","create_user":false}`)
		if a.status != 200 || b.status != 200 {
			t.Fatalf("known %d, unknown %d", a.status, b.status)
		}
		if keys(a.body) != keys(b.body) {
			t.Fatalf("body shapes differ: %s vs %s", a.raw, b.raw)
		}
		if len(b.body["message_id"].(string)) != len("6f1c3e0e-7d1b-4b7e-9a37-0f1a2b3c4d5e") {
			t.Fatalf("fake message_id %q does not look like a provider id", b.body["message_id"])
		}
		if e.sender.count() != sentBefore+1 {
			t.Fatalf("unknown phone got an SMS")
		}
		// the unknown phone's answer waited for a typical provider latency
		e.mu.Lock()
		slept := append([]time.Duration(nil), e.slept...)
		e.mu.Unlock()
		if len(slept) != 1 || slept[0] <= 0 {
			t.Fatalf("suppressed send did not wait like a real one: %v", slept)
		}
		// and the unknown phone cannot verify anything
		wantError(t, e.verify("+14155550222", "123456"), 403, "otp_expired")
	})
}

func TestSend_DefaultCreateUserFalse_UnknownGetsNoSMS(t *testing.T) {
	e := newEnv(t, openMemory(t), func(c *Config) { c.CreateUser = false })
	if r := e.send(alice); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if e.sender.count() != 0 {
		t.Fatal("create_user defaults to false: no SMS for an unknown phone")
	}
}

func TestSend_CountryNotInAllowlist_403(t *testing.T) {
	e := newEnv(t, openMemory(t), func(c *Config) { c.Policy = phone.Policy{Countries: []string{"GB", "DE"}} })
	wantError(t, e.send(alice), 403, "phone_not_allowed")
	if r := e.send("+447400123456"); r.status != 200 {
		t.Fatalf("GB refused: %d %s", r.status, r.raw)
	}
	if r := e.send("+4915123456789"); r.status != 200 {
		t.Fatalf("DE refused: %d %s", r.status, r.raw)
	}
}

func TestSend_ProviderFails_502AndNothingLost(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		e.sender.err = errBoom
		r := e.send(alice)
		wantError(t, r, 502, "sms_send_failed")
		if strings.Contains(r.raw, "plivo said no") {
			t.Fatal("provider error text echoed to the client")
		}
		// no cooldown, no quota used: the provider came back, retry at once
		e.sender.err = nil
		for i := 0; i < 1; i++ {
			if r := e.send(alice); r.status != 200 {
				t.Fatalf("retry after provider failure: %d %s", r.status, r.raw)
			}
		}
	})
}

func TestSend_ProviderTimeout_504(t *testing.T) {
	e := newEnv(t, openMemory(t))
	e.sender.err = fmt.Errorf("plivo send: %w", sender.ErrTimeout)
	wantError(t, e.send(alice), 504, "provider_timeout")
}

func TestSend_TestPhone_FixedCodeNothingSent(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t), func(c *Config) { c.TestPhones = map[string]string{"+12015550100": "123456"} })
		if r := e.send("+12015550100"); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		if e.sender.count() != 0 {
			t.Fatal("a test phone received a message")
		}
		wantError(t, e.verify("+12015550100", "654321"), 403, "otp_expired")
		if r := e.verify("+12015550100", "123456"); r.status != 200 {
			t.Fatalf("fixed code refused: %d %s", r.status, r.raw)
		}
	})
}

func TestSend_OptedOut_403AndNoSMS(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		if err := e.g.SetOptOut(context.Background(), "14155550123", true); err != nil {
			t.Fatal(err)
		}
		wantError(t, e.send(alice), 403, "phone_opted_out")
		if e.sender.count() != 0 {
			t.Fatal("opted-out number got a message")
		}
		if err := e.g.SetOptOut(context.Background(), alice, false); err != nil {
			t.Fatal(err)
		}
		if r := e.send(alice); r.status != 200 {
			t.Fatalf("after START: %d %s", r.status, r.raw)
		}
	})
}

func TestSend_WhatsAppChannelKeptOnResend(t *testing.T) {
	e := newEnv(t, openMemory(t))
	e.sender.whatsapp = true
	if r := e.do("POST", "/auth/v1/otp", `{"phone":"`+alice+`","channel":"whatsapp"}`); r.status != 200 || r.body["channel"] != "whatsapp" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	e.clock.Advance(time.Minute)
	r := e.do("POST", "/auth/v1/resend", `{"type":"sms","phone":"`+alice+`"}`)
	if r.status != 200 || r.body["channel"] != "whatsapp" {
		t.Fatalf("resend: %d %s", r.status, r.raw)
	}
	if e.sender.msgs[1].Channel != "whatsapp" {
		t.Fatalf("resend went by %s", e.sender.msgs[1].Channel)
	}
}

func TestSend_CrossSitePost_Refused(t *testing.T) {
	e := newEnv(t, openMemory(t))
	r := e.do("POST", "/auth/v1/otp", `{"phone":"`+alice+`"}`, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	wantError(t, r, 403, "cross_site_request")
	r = e.do("POST", "/auth/v1/otp", `{"phone":"`+alice+`"}`, "Origin", "https://evil.example")
	wantError(t, r, 403, "cross_site_request")
	if e.sender.count() != 0 {
		t.Fatal("cross-site request sent a code")
	}
	r = e.do("POST", "/auth/v1/otp", `{"phone":"`+alice+`"}`, "Origin", e.srv.URL, "Sec-Fetch-Site", "same-origin")
	if r.status != 200 {
		t.Fatalf("same-origin refused: %d %s", r.status, r.raw)
	}
}

func TestSend_ErrorBodyForNewAPIVersion(t *testing.T) {
	e := newEnv(t, openMemory(t))
	r := e.do("POST", "/auth/v1/otp", `{}`, "X-Supabase-Api-Version", "2024-01-01")
	if r.status != 400 || r.body["code"] != "validation_failed" || r.body["message"] == nil {
		t.Fatalf("got %d %s", r.status, r.raw)
	}
	if r.header.Get("X-Supabase-Api-Version") != "2024-01-01" {
		t.Fatal("the newer error body must be announced with X-Supabase-Api-Version")
	}
}

func TestNewCode_DigitsAndLength(t *testing.T) {
	seen := map[byte]int{}
	for i := 0; i < 2000; i++ {
		c, err := newCode(6)
		if err != nil || len(c) != 6 || !isDigits(c) {
			t.Fatalf("newCode = %q, %v", c, err)
		}
		seen[c[0]]++
	}
	// leading zeros are kept (a biased generator that dropped them would
	// never start with 0)
	if seen['0'] == 0 {
		t.Fatal("no code started with 0 in 2000 draws")
	}
}

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return strings.Join(ks, ",")
}

func openMemory(t *testing.T) store.Store { return storeKinds()[0].open(t) }

// Test phones send nothing, so neither the cooldown nor the per-phone limit
// applies to them (SPEC §9): reviewers and end-to-end tests can sign in as
// often as they like.
func TestSend_TestPhone_NoCooldownNoPhoneLimit(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t), func(c *Config) { c.TestPhones = map[string]string{"+12015550100": "123456"} })
		for i := 0; i < 5; i++ {
			if r := e.send("+12015550100"); r.status != 200 {
				t.Fatalf("send %d to a test phone: %d %s", i+1, r.status, r.raw)
			}
			if r := e.verify("+12015550100", "123456"); r.status != 200 {
				t.Fatalf("verify %d: %d %s", i+1, r.status, r.raw)
			}
		}
		// real phones keep their limits
		e.send(alice)
		wantError(t, e.send(alice), 429, "over_sms_send_rate_limit")
	})
}

func TestSend_Captcha_RequiredAndClientIPPassedOn(t *testing.T) {
	var mu sync.Mutex
	var seen []url.Values
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		seen = append(seen, r.PostForm)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.PostForm.Get("response") == "good-token" {
			_, _ = w.Write([]byte(`{"success":true}`))
			return
		}
		_, _ = w.Write([]byte(`{"success":false}`))
	}))
	defer site.Close()
	e := newEnv(t, openMemory(t), func(c *Config) {
		c.Captcha = &captcha.Verifier{Provider: "turnstile", Secret: "shh", VerifyURL: site.URL}
	})
	wantError(t, e.send(alice), 400, "captcha_failed")
	wantError(t, e.do("POST", "/auth/v1/otp", `{"phone":"`+alice+`","captcha_token":"bad-token"}`), 400, "captcha_failed")
	if e.sender.count() != 0 {
		t.Fatal("a send without a valid captcha reached the sender")
	}
	r := e.do("POST", "/auth/v1/otp", `{"phone":"`+alice+`","gotrue_meta_security":{"captcha_token":"good-token"}}`)
	if r.status != 200 {
		t.Fatalf("valid captcha (auth-js form): %d %s", r.status, r.raw)
	}
	e.clock.Advance(time.Minute)
	wantError(t, e.do("POST", "/auth/v1/resend", `{"type":"sms","phone":"`+alice+`"}`), 400, "captcha_failed")
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 2 || seen[1].Get("remoteip") != "203.0.113.7" || seen[1].Get("secret") != "shh" {
		t.Fatalf("siteverify got %v", seen)
	}
}

// The per-phone limit is shared by gateways on one Redis: three sends
// through two instances use up the phone's quota on both.
func TestSend_LimitsHoldAcrossInstancesSharingRedis(t *testing.T) {
	srv := testenv.StartRedis(t)
	a := newEnv(t, openRedis(t, srv.URL()), func(c *Config) { c.NoResendWait = true })
	b := newEnv(t, openRedis(t, srv.URL()), func(c *Config) { c.NoResendWait = true })
	a.send(alice)
	b.send(alice)
	a.send(alice)
	wantError(t, b.send(alice), 429, "over_sms_send_rate_limit")
	wantError(t, a.send(alice), 429, "over_sms_send_rate_limit")
}

// A client that hangs up while the provider is answering does not get the
// per-phone quota and cooldown back: the message may well have been
// delivered, and a refund would let anyone send past every per-phone limit.
func TestSend_ClientHangsUp_ProviderStillCalledCooldownHolds(t *testing.T) {
	snd := &ctxSender{}
	e := newEnv(t, openMemory(t), func(c *Config) { c.Sender = snd })
	// the client hung up while the send was under way
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.g.Send(ctx, sendRequest{Phone: alice}, "198.51.100.1", false); err != nil {
		t.Fatalf("a client's hang-up must not abort the provider call: %v", err)
	}
	if snd.count() != 1 {
		t.Fatalf("%d messages handed to the provider, want 1", snd.count())
	}
	// the send counted: the cooldown holds
	wantError(t, e.send(alice), 429, "over_sms_send_rate_limit")
}

// A resend keeps the create_user of the send it repeats. auth-js resend()
// posts {phone, type, gotrue_meta_security}, never create_user, so a person
// who signed up with signInWithOtp (create_user: true) on a server whose
// create_user default is false gets the resent code, which signs them up.
func TestResend_KeepsCreateUserOfTheFirstSend(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t), func(c *Config) { c.CreateUser = false })
		const newcomer = "+14155550142"
		if r := e.do("POST", "/auth/v1/otp", `{"phone":"`+newcomer+`","create_user":true,"data":{},"channel":"sms"}`); r.status != 200 {
			t.Fatalf("otp: %d %s", r.status, r.raw)
		}
		if e.sender.count() != 1 {
			t.Fatalf("first code not sent")
		}
		e.clock.Advance(31 * time.Second)
		r := e.do("POST", "/auth/v1/resend", `{"phone":"`+newcomer+`","type":"sms","gotrue_meta_security":{}}`)
		if r.status != 200 {
			t.Fatalf("resend: %d %s", r.status, r.raw)
		}
		if e.sender.count() != 2 {
			t.Fatalf("resend answered 200 but sent no SMS (suppressed as unknown user): %s", r.raw)
		}
		if v := e.verify(newcomer, e.sender.lastCode(t, newcomer)); v.status != 200 {
			t.Fatalf("verify resent code: %d %s", v.status, v.raw)
		}
	})
}

// /resend for a phone without a pending challenge (an unknown phone when
// create_user is false) answers exactly like a real resend.
func TestResend_NoPendingChallenge_SameAnswerAsARealResend(t *testing.T) {
	e := newEnv(t, openMemory(t), func(c *Config) { c.CreateUser = false })
	known, unknown := "+14155550111", "+14155550222"
	if r := e.do("POST", "/auth/v1/otp", `{"phone":"`+known+`","create_user":true}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	if r := e.verify(known, e.sender.lastCode(t, known)); r.status != 200 {
		t.Fatal(r.raw)
	}
	e.clock.Advance(time.Hour)

	for _, p := range []string{known, unknown} {
		if r := e.send(p); r.status != 200 {
			t.Fatalf("otp %s: %d %s", p, r.status, r.raw)
		}
	}
	e.clock.Advance(31 * time.Second)
	a := e.do("POST", "/auth/v1/resend", `{"type":"sms","phone":"`+known+`"}`)
	b := e.do("POST", "/auth/v1/resend", `{"type":"sms","phone":"`+unknown+`"}`)
	if a.status != b.status {
		t.Fatalf("status differs: known %d, unknown %d", a.status, b.status)
	}
	for _, k := range []string{"channel", "expires_in", "resend_after"} {
		if a.body[k] != b.body[k] {
			t.Errorf("%s differs: known %v (%s), unknown %v (%s)", k, a.body[k], a.raw, b.body[k], b.raw)
		}
	}
}

// Logs carry masked phones and outcomes, never a code, a token or the
// full number.
func TestLogs_NeverContainCodesTokensOrFullPhones(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	e := newEnv(t, openMemory(t), func(c *Config) { c.Logger = zap.New(core) })
	e.send(alice)
	code := e.sender.lastCode(t, alice)
	e.verify(alice, "000000")
	s := e.verify(alice, code)
	if s.status != 200 {
		t.Fatalf("verify %d", s.status)
	}
	e.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"`+s.body["refresh_token"].(string)+`"}`)
	e.do("POST", "/auth/v1/logout", "", bearer(s)...)
	secrets := []string{code, s.body["access_token"].(string), s.body["refresh_token"].(string), alice, strings.TrimPrefix(alice, "+")}
	var sends, verifies int
	for _, entry := range logs.All() {
		line := entry.Message
		for k, v := range entry.ContextMap() {
			line += " " + k + "=" + toString(v)
		}
		for _, sec := range secrets {
			if strings.Contains(line, sec) {
				t.Errorf("log line leaks %q: %s", sec, line)
			}
		}
		switch entry.Message {
		case "send":
			sends++
			if entry.ContextMap()["phone"] != "+1***-***-0123" || entry.ContextMap()["country"] != "US" ||
				entry.ContextMap()["client_ip"] != "203.0.113.7" || entry.ContextMap()["message_id"] == nil {
				t.Errorf("send line lacks fields: %v", entry.ContextMap())
			}
		case "verify":
			verifies++
		}
	}
	if sends != 1 || verifies != 2 {
		t.Fatalf("%d send lines and %d verify lines, want 1 and 2", sends, verifies)
	}
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

// countersDown is a store whose counters (the per-IP limit, verify
// attempts) cannot be reached while down.
type countersDown struct {
	store.Store
	down bool
}

func (h *countersDown) Hit(ctx context.Context, key string, n int, window time.Duration, now time.Time) (store.Decision, error) {
	if h.down {
		return store.Decision{}, errDown
	}
	return h.Store.Hit(ctx, key, n, window, now)
}

func (h *countersDown) Attempt(ctx context.Context, req store.AttemptRequest) (store.AttemptResult, error) {
	if h.down {
		return store.AttemptResult{}, errDown
	}
	return h.Store.Attempt(ctx, req)
}

// Every way a send can be refused is counted under its error code and
// logged with its outcome, store outages and malformed bodies included.
func TestSend_EveryRefusal_CountedByErrorCodeAndLogged(t *testing.T) {
	st := &countersDown{Store: memstore.New()}
	metrics := NewMetrics(prometheus.NewRegistry())
	core, logs := observer.New(zap.InfoLevel)
	e := newEnv(t, st, func(c *Config) { c.Metrics = metrics; c.Logger = zap.New(core) })
	refuse := func(body string, status int, code string) {
		t.Helper()
		before := counterValue(metrics.refusals.WithLabelValues("", code))
		logged := logs.FilterMessage("send").FilterField(zap.String("outcome", code)).Len()
		wantError(t, e.do("POST", "/auth/v1/otp", body), status, code)
		if got := counterValue(metrics.refusals.WithLabelValues("", code)); got != before+1 {
			t.Errorf("%s: refusals_total{reason=%q} went from %v to %v, want +1", body, code, before, got)
		}
		if n := logs.FilterMessage("send").FilterField(zap.String("outcome", code)).Len(); n != logged+1 {
			t.Errorf("%s: %d send lines with outcome %q, want %d", body, n, code, logged+1)
		}
	}
	refuse(`{"phone":`, http.StatusBadRequest, apierr.BadJSON)
	refuse(`{"phone":"+1"}`, http.StatusBadRequest, apierr.ValidationFailed)
	refuse(`{"phone":"+14155550123","channel":"whatsapp"}`, http.StatusBadRequest, apierr.ValidationFailed)
	st.down = true
	refuse(`{"phone":"+14155550123"}`, http.StatusServiceUnavailable, apierr.StoreUnavailable)
	st.down = false
	if r := e.send("+14155550123"); r.status != http.StatusOK {
		t.Fatalf("send: %d %s", r.status, r.raw)
	}
	before := counterValue(metrics.refusals.WithLabelValues("", apierr.OverSMSSendLimit))
	wantError(t, e.send("+14155550123"), http.StatusTooManyRequests, apierr.OverSMSSendLimit)
	if got := counterValue(metrics.refusals.WithLabelValues("", apierr.OverSMSSendLimit)); got != before+1 {
		t.Errorf("cooldown: refusals_total went from %v to %v, want +1", before, got)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
