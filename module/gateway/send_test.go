package gateway

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/phone"
	"github.com/otpgate/otpgate/module/sender"
	"github.com/otpgate/otpgate/module/store"
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
		e := newEnv(t, open(t), func(c *Config) { c.ResendAfter = -1 })
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
		{"unknown field", `{"phone":"` + alice + `","admin":true}`, 400, "bad_json"},
		{"duplicate key", `{"phone":"+14155550199","phone":"` + alice + `"}`, 400, "bad_json"},
		{"nested duplicate key", `{"phone":"` + alice + `","data":{"a":1,"a":2}}`, 400, "bad_json"},
		{"wrong type", `{"phone":14155550123}`, 400, "bad_json"},
		{"two objects", `{"phone":"` + alice + `"}{}`, 400, "bad_json"},
		{"metadata over 4 KiB", meta, 400, "validation_failed"},
		{"metadata not an object", `{"phone":"` + alice + `","data":[1]}`, 400, "validation_failed"},
		{"missing phone", `{}`, 400, "validation_failed"},
		{"no plus", `{"phone":"14155550123"}`, 400, "validation_failed"},
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
