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

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otpgate/otpgate/module/captcha"
	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/store"
	"github.com/otpgate/otpgate/module/store/redisstore"

	"github.com/redis/go-redis/v9"
)

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
	a := newEnv(t, openRedis(t, srv.URL()), func(c *Config) { c.ResendAfter = -1 })
	b := newEnv(t, openRedis(t, srv.URL()), func(c *Config) { c.ResendAfter = -1 })
	a.send(alice)
	b.send(alice)
	a.send(alice)
	wantError(t, b.send(alice), 429, "over_sms_send_rate_limit")
	wantError(t, a.send(alice), 429, "over_sms_send_rate_limit")
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

// The Redis budget of SPEC section 5: at most 2 commands per send and per
// verify, and none per gated request once the token is cached.
func TestRedisBudget_TwoPerSendTwoPerVerifyNonePerGatedRequest(t *testing.T) {
	srv := testenv.StartRedis(t)
	opts, err := redisstore.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewUniversalClient(opts)
	var n redisstore.CommandCounter
	client.AddHook(&n)
	st := redisstore.New(client)
	t.Cleanup(func() { _ = st.Close() })
	e := newEnv(t, st)
	e.login("+14155550100") // loads the scripts into Redis

	cost := func(f func()) (commands, trips int64) {
		before, beforeTrips := n.Count(), n.RoundTrips()
		f()
		return n.Count() - before, n.RoundTrips() - beforeTrips
	}
	if c, rt := cost(func() { e.send(alice) }); c != 2 || rt != 2 {
		t.Errorf("send cost %d Redis commands in %d round trips, want 2 in 2", c, rt)
	}
	// A first sign-in also writes the user index (another hash slot), in
	// the same round trip as the consume script.
	var s resp
	if c, rt := cost(func() { s = e.verify(alice, e.sender.lastCode(t, alice)) }); c != 3 || rt != 2 || s.status != 200 {
		t.Errorf("first verify cost %d Redis commands in %d round trips (status %d), want 3 in 2", c, rt, s.status)
	}
	e.clock.Advance(time.Minute)
	e.send(alice)
	var again resp
	if c, rt := cost(func() { again = e.verify(alice, e.sender.lastCode(t, alice)) }); c != 2 || rt != 2 || again.status != 200 {
		t.Errorf("verify of a known user cost %d Redis commands in %d round trips (status %d), want 2 in 2", c, rt, again.status)
	}
	e.do("GET", "/app", "", bearer(s)...) // first use verifies and caches
	if c, _ := cost(func() {
		for i := 0; i < 10; i++ {
			if r := e.do("GET", "/app", "", bearer(s)...); r.status != 200 {
				t.Fatalf("gated request %d", r.status)
			}
		}
	}); c != 0 {
		t.Errorf("10 gated requests cost %d Redis commands, want 0", c)
	}
}

// flakyAnnounce stores revocations but fails to announce them the first
// times, as Redis does when the feed's slot is failing over.
type flakyAnnounce struct {
	store.Store
	mu        sync.Mutex
	fails     int
	announced []string
}

func (f *flakyAnnounce) Revoke(ctx context.Context, u store.UserKey, scope store.RevokeScope, sid string, now time.Time) ([]string, error) {
	ids, err := f.Store.Revoke(ctx, u, scope, sid, now)
	if err != nil {
		return ids, err
	}
	return ids, fmt.Errorf("announce: %w", store.ErrUnavailable)
}

func (f *flakyAnnounce) Announce(ctx context.Context, ids []string, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return fmt.Errorf("announce: %w", store.ErrUnavailable)
	}
	f.announced = append(f.announced, ids...)
	return nil
}

// A logout whose announcement fails still ends the session here at once,
// answers 204, and keeps announcing until the feed takes it, so no other
// instance keeps accepting the session.
func TestLogout_AnnouncementFails_RetriedUntilAnnounced(t *testing.T) {
	fa := &flakyAnnounce{Store: openMemory(t), fails: 3}
	e := newEnv(t, fa, func(c *Config) { c.AnnounceRetry = 5 * time.Millisecond })
	s := e.login(alice)
	if r := e.do("POST", "/auth/v1/logout", "", bearer(s)...); r.status != 204 {
		t.Fatalf("logout %d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/app", "", bearer(s)...); r.status != 401 {
		t.Fatalf("this instance still accepts the session: %d", r.status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		fa.mu.Lock()
		n := len(fa.announced)
		fa.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the revocation was never announced")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
