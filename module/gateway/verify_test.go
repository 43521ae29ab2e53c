package gateway

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/store"
	"github.com/otpgate/otpgate/module/store/memstore"
)

func TestVerify_RightCode_StartsSessionWithContractBodyAndCookies(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		e.do("POST", "/auth/v1/otp", `{"phone":"`+alice+`","create_user":true,"data":{"name":"Alice"}}`)
		r := e.verify(alice, e.sender.lastCode(t, alice))
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		for _, k := range []string{"access_token", "refresh_token", "expires_in", "expires_at", "user"} {
			if r.body[k] == nil {
				t.Errorf("missing %s", k)
			}
		}
		if r.body["token_type"] != "bearer" || r.body["expires_in"] != 3600.0 {
			t.Errorf("token_type/expires_in: %s", r.raw)
		}
		if r.body["expires_at"] != float64(e.clock.Now().Add(time.Hour).Unix()) {
			t.Errorf("expires_at %v", r.body["expires_at"])
		}
		u := r.body["user"].(map[string]any)
		for _, k := range []string{"id", "phone", "phone_confirmed_at", "created_at", "updated_at", "last_sign_in_at", "role", "aud", "app_metadata", "user_metadata"} {
			if _, ok := u[k]; !ok {
				t.Errorf("user lacks %s", k)
			}
		}
		// the API user object spells the phone as Supabase does: no '+'
		if u["phone"] != alice[1:] || u["role"] != "authenticated" || u["aud"] != "authenticated" {
			t.Errorf("user %v", u)
		}
		if u["app_metadata"].(map[string]any)["provider"] != "phone" {
			t.Errorf("app_metadata %v", u["app_metadata"])
		}
		if u["user_metadata"].(map[string]any)["name"] != "Alice" {
			t.Errorf("user_metadata %v", u["user_metadata"])
		}
		names := map[string]*http.Cookie{}
		for _, c := range r.cookie {
			names[c.Name] = c
		}
		for _, n := range []string{"__Host-otpgate-access", "__Host-otpgate-refresh"} {
			c := names[n]
			if c == nil {
				t.Fatalf("cookie %s missing; got %v", n, r.cookie)
			}
			if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
				t.Errorf("cookie %s attributes: %+v", n, c)
			}
		}
		if names["__Host-otpgate-access"].Value != r.body["access_token"] {
			t.Error("access cookie differs from the access token")
		}
	})
}

func TestVerify_CookieDomain_DropsHostPrefix(t *testing.T) {
	e := newEnv(t, openMemory(t), func(c *Config) { c.CookieDomain = "example.com" })
	r := e.login(alice)
	for _, c := range r.cookie {
		if strings.HasPrefix(c.Name, "__Host-") || c.Domain != "example.com" {
			t.Fatalf("cookie %+v", c)
		}
	}
}

func TestVerify_WrongExpiredUsedUnknown_SameOTPExpiredAnswer(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		e.send(alice)
		code := e.sender.lastCode(t, alice)
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		a := e.verify(alice, wrong)
		wantError(t, a, 403, "otp_expired")
		b := e.verify("+14155550999", code) // unknown phone
		wantError(t, b, 403, "otp_expired")
		if a.raw != b.raw {
			t.Fatalf("wrong and unknown answers differ: %s vs %s", a.raw, b.raw)
		}
		if r := e.verify(alice, code); r.status != 200 {
			t.Fatalf("right code after one wrong: %d %s", r.status, r.raw)
		}
		used := e.verify(alice, code)
		wantError(t, used, 403, "otp_expired")
		if used.raw != a.raw {
			t.Fatal("used code answer differs")
		}
	})
}

func TestVerify_AfterTTL_Expired(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		e.send(alice)
		e.clock.Advance(5*time.Minute + time.Second)
		wantError(t, e.verify(alice, e.sender.lastCode(t, alice)), 403, "otp_expired")
	})
}

func TestVerify_MaxAttempts_DestroysChallenge(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		e.send(alice)
		code := e.sender.lastCode(t, alice)
		for i := 0; i < 5; i++ {
			w := "999999"
			if code == w {
				w = "888888"
			}
			wantError(t, e.verify(alice, w), 403, "otp_expired")
		}
		wantError(t, e.verify(alice, code), 403, "otp_expired")
	})
}

func TestVerify_ResendInvalidatesOldCode(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		e.send(alice)
		old := e.sender.lastCode(t, alice)
		e.clock.Advance(31 * time.Second)
		if r := e.do("POST", "/auth/v1/resend", `{"type":"sms","phone":"`+alice+`"}`); r.status != 200 {
			t.Fatalf("resend %d %s", r.status, r.raw)
		}
		fresh := e.sender.lastCode(t, alice)
		if old != fresh {
			wantError(t, e.verify(alice, old), 403, "otp_expired")
		}
		if r := e.verify(alice, fresh); r.status != 200 {
			t.Fatalf("new code refused: %d %s", r.status, r.raw)
		}
	})
}

func TestVerify_CodeBoundToPhone(t *testing.T) {
	e := newEnv(t, openMemory(t))
	bob := "+14155550124"
	e.send(alice)
	e.send(bob)
	if ac, bc := e.sender.lastCode(t, alice), e.sender.lastCode(t, bob); ac != bc {
		wantError(t, e.verify(bob, ac), 403, "otp_expired")
	}
}

func TestVerify_ConcurrentCorrectCodes_OneSession(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		e.send(alice)
		code := e.sender.lastCode(t, alice)
		const n = 16
		var wg sync.WaitGroup
		statuses := make([]int, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				statuses[i] = e.verify(alice, code).status
			}(i)
		}
		wg.Wait()
		ok := 0
		for _, s := range statuses {
			if s == 200 {
				ok++
			} else if s != 403 {
				t.Errorf("unexpected status %d", s)
			}
		}
		if ok != 1 {
			t.Fatalf("%d sessions from one code, want 1 (%v)", ok, statuses)
		}
	})
}

func TestVerify_PerPhoneFailureCapAcrossChallenges_Locks(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t), func(c *Config) {
			c.FailureLockout = 4
			c.MaxAttempts = 2
			c.PhoneLimit = store.Limit{N: 100, Window: time.Minute}
		})
		wrong := func(code string) string {
			if code == "000000" {
				return "111111"
			}
			return "000000"
		}
		for i := 0; i < 2; i++ {
			e.send(alice)
			c := e.sender.lastCode(t, alice)
			e.verify(alice, wrong(c))
			e.verify(alice, wrong(c))
			e.clock.Advance(31 * time.Second)
		}
		e.send(alice)
		// four failures across two challenges: even the right code is refused now
		wantError(t, e.verify(alice, e.sender.lastCode(t, alice)), 403, "otp_expired")
		// a fresh challenge does not unlock the phone either
		e.clock.Advance(31 * time.Second)
		e.send(alice)
		wantError(t, e.verify(alice, e.sender.lastCode(t, alice)), 403, "otp_expired")
	})
}

func TestVerify_BadInput(t *testing.T) {
	e := newEnv(t, openMemory(t))
	for _, body := range []string{
		`{"type":"email","phone":"` + alice + `","token":"123456"}`,
		`{"type":"sms","phone":"` + alice + `","token":"12a456"}`,
		`{"type":"sms","phone":"` + alice + `","token":"١٢٣٤٥٦"}`,
		`{"type":"sms","phone":"nope","token":"123456"}`,
	} {
		if r := e.do("POST", "/auth/v1/verify", body); r.status != 400 {
			t.Errorf("%s: %d %s", body, r.status, r.raw)
		}
	}
}

// @supabase/auth-js verifyOtp spreads its params into the body, so
// verifyOtp({phone, token, type, options: {captchaToken, redirectTo}})
// posts an "options" object; it is accepted, as auth-js works unchanged.
func TestVerify_AuthJSOptionsField_Accepted(t *testing.T) {
	e := newEnv(t, openMemory(t))
	if r := e.send(alice); r.status != 200 {
		t.Fatal(r.raw)
	}
	code := e.sender.lastCode(t, alice)
	r := e.do("POST", "/auth/v1/verify", `{"phone":"`+alice+`","token":"`+code+`","type":"sms","options":{"captchaToken":"x","redirectTo":"/"},"gotrue_meta_security":{"captcha_token":"x"}}`)
	if r.status != 200 {
		t.Fatalf("auth-js verifyOtp body with options: %d %s", r.status, r.raw)
	}
}

// A wrong code is refused with the same body whether the phone has a user
// (and a pending code) or not.
func TestVerify_WrongCodeForKnownAndUnknownPhone_IdenticalRefusal(t *testing.T) {
	e := newEnv(t, openMemory(t), func(c *Config) { c.CreateUser = false })
	known, unknown := "+14155550111", "+14155550222"
	e.do("POST", "/auth/v1/otp", `{"phone":"`+known+`","create_user":true}`)
	e.verify(known, e.sender.lastCode(t, known))
	e.clock.Advance(time.Hour)
	e.send(known)
	e.send(unknown)
	a, b := e.verify(known, "000000"), e.verify(unknown, "000000")
	wantError(t, a, 403, "otp_expired")
	wantError(t, b, 403, "otp_expired")
	if a.raw != b.raw {
		t.Fatalf("bodies differ: %s vs %s", a.raw, b.raw)
	}
}

// Every way a verify can be refused is counted under its error code and
// in verifies_total, and logged with its outcome.
func TestVerify_EveryRefusal_CountedByErrorCodeAndLogged(t *testing.T) {
	st := &countersDown{Store: memstore.New()}
	metrics := NewMetrics(prometheus.NewRegistry())
	core, logs := observer.New(zap.InfoLevel)
	e := newEnv(t, st, func(c *Config) { c.Metrics = metrics; c.Logger = zap.New(core) })
	if r := e.send(alice); r.status != http.StatusOK {
		t.Fatalf("send: %d %s", r.status, r.raw)
	}
	refuse := func(body string, status int, code, outcome string) {
		t.Helper()
		refusals := counterValue(metrics.refusals.WithLabelValues("", code))
		verifies := counterValue(metrics.verifies.WithLabelValues("", outcome))
		logged := logs.FilterMessage("verify").FilterField(zap.String("outcome", outcome)).Len()
		wantError(t, e.do("POST", "/auth/v1/verify", body), status, code)
		if got := counterValue(metrics.refusals.WithLabelValues("", code)); got != refusals+1 {
			t.Errorf("%s: refusals_total{reason=%q} went from %v to %v, want +1", body, code, refusals, got)
		}
		if got := counterValue(metrics.verifies.WithLabelValues("", outcome)); got != verifies+1 {
			t.Errorf("%s: verifies_total{outcome=%q} went from %v to %v, want +1", body, outcome, verifies, got)
		}
		if n := logs.FilterMessage("verify").FilterField(zap.String("outcome", outcome)).Len(); n != logged+1 {
			t.Errorf("%s: %d verify lines with outcome %q, want %d", body, n, outcome, logged+1)
		}
	}
	refuse(`{"type":"sms"`, http.StatusBadRequest, apierr.BadJSON, apierr.BadJSON)
	refuse(`{"type":"email","phone":"+14155550123","token":"123456"}`, http.StatusBadRequest, apierr.ValidationFailed, apierr.ValidationFailed)
	refuse(`{"type":"sms","phone":"+14155550123","token":"12ab56"}`, http.StatusBadRequest, apierr.ValidationFailed, apierr.ValidationFailed)
	wrong := "000000"
	if e.sender.lastCode(t, alice) == wrong {
		wrong = "111111"
	}
	refuse(`{"type":"sms","phone":"+14155550123","token":"`+wrong+`"}`, http.StatusForbidden, apierr.OTPExpired, "wrong_code")
	st.down = true
	refuse(`{"type":"sms","phone":"+14155550123","token":"`+wrong+`"}`, http.StatusServiceUnavailable, apierr.StoreUnavailable, apierr.StoreUnavailable)
}
