package gateway

// Review tests: each asserts the behaviour the spec (or a careful auth
// gateway) requires. A failing test here demonstrates a bug.

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/sender"
	"github.com/otpgate/otpgate/module/store"
)

// ---------- helpers ----------

// quietFeed wraps a store: its revocation feed reports healthy and then
// delivers nothing (a lost pub/sub message), and it can be switched down so
// that every state call fails like an unreachable Redis.
type quietFeed struct {
	store.Store
	down           atomic.Bool
	revokeAnnounce bool // Revoke succeeds in the store but the publish fails
}

var errDown = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

func (q *quietFeed) Subscribe(ctx context.Context, _ time.Duration, h store.FeedHandler) {
	h.Healthy(true)
	<-ctx.Done()
}

func (q *quietFeed) Revoke(ctx context.Context, u store.UserKey, scope store.RevokeScope, sid string, now time.Time) ([]string, error) {
	if q.down.Load() {
		return nil, errDown
	}
	ids, err := q.Store.Revoke(ctx, u, scope, sid, now)
	if err == nil && q.revokeAnnounce && len(ids) > 0 {
		// exactly what redisstore.Revoke returns when PUBLISH fails after
		// the revoke script ran
		return ids, errors.New("announce: i/o timeout")
	}
	return ids, err
}

func (q *quietFeed) Session(ctx context.Context, u store.UserKey, sid string) (store.Session, bool, error) {
	if q.down.Load() {
		return store.Session{}, false, errDown
	}
	return q.Store.Session(ctx, u, sid)
}

func (q *quietFeed) Access(ctx context.Context, u store.UserKey, sid string) (store.Session, bool, store.User, bool, error) {
	if q.down.Load() {
		return store.Session{}, false, store.User{}, false, errDown
	}
	return q.Store.Access(ctx, u, sid)
}

func (q *quietFeed) Rotate(ctx context.Context, req store.RotateRequest) (store.RotateResult, error) {
	if q.down.Load() {
		return store.RotateResult{}, errDown
	}
	return q.Store.Rotate(ctx, req)
}

func (q *quietFeed) User(ctx context.Context, u store.UserKey) (store.User, bool, error) {
	if q.down.Load() {
		return store.User{}, false, errDown
	}
	return q.Store.User(ctx, u)
}

// ctxSender is a provider that delivers the message unless the context it
// is given is already cancelled, as plivo-go does with a cancelled request.
type ctxSender struct {
	mu       sync.Mutex
	accepted int
}

func (s *ctxSender) Send(ctx context.Context, m sender.Message) (sender.Result, error) {
	if err := ctx.Err(); err != nil {
		return sender.Result{}, err
	}
	s.mu.Lock()
	s.accepted++
	s.mu.Unlock()
	return sender.Result{MessageID: "11111111-2222-3333-4444-555555555555"}, nil
}

func (s *ctxSender) Supports(ch string) bool { return ch == sender.SMS }

func (s *ctxSender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

func cookieHeader(cs []*http.Cookie) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

func refreshOf(r resp) string { return r.body["refresh_token"].(string) }

// ---------- bugs ----------

// auth-js resend() sends {phone, type, gotrue_meta_security}: never
// create_user. A person who signed up with signInWithOtp (create_user: true,
// auth-js's default) on a server whose create_user default is false (the
// spec's default) must still get the resent code. Today the resend is
// silently "suppressed": 200, no SMS.
func TestReview_ResendAfterSignupWithCreateUser_SendsCode(t *testing.T) {
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
// create_user is false) must look exactly like a real resend.
func TestReview_ResendUnknownPhone_SameBodyAsKnown(t *testing.T) {
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

// Duplicate keys are refused so that a proxy and the gateway cannot read
// different values; encoding/json matches keys case-insensitively, so
// "phone" and "PHONE" are the same field to it.
func TestReview_DuplicateKeysDifferingInCase_Refused(t *testing.T) {
	e := newEnv(t, openMemory(t))
	for _, body := range []string{
		`{"phone":"+14155550123","PHONE":"+14155550124"}`,
		`{"phone":"+14155550123","Phone":"+14155550124"}`,
	} {
		r := e.do("POST", "/auth/v1/otp", body)
		if r.status != 400 || r.body["error_code"] != "bad_json" {
			t.Errorf("%s: got %d %s, want 400 bad_json", body, r.status, r.raw)
		}
	}
	if e.sender.count() != 0 {
		t.Fatalf("ambiguous body reached the provider (%d SMS)", e.sender.count())
	}
}

// @supabase/auth-js verifyOtp spreads its params into the body, so
// verifyOtp({phone, token, type, options: {captchaToken, redirectTo}})
// posts an "options" object. The spec requires auth-js to work unchanged.
func TestReview_VerifyAcceptsAuthJSOptionsField(t *testing.T) {
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

// With Redis, Revoke runs the revoke script and then PUBLISHes; when the
// publish fails it returns the revoked ids *and* an error. The session is
// revoked in the store, yet the gateway neither caches the revocation nor
// retries the announcement: the gate (feed healthy, no store round trip)
// keeps accepting the token on this instance, and a retried logout can no
// longer fix it (the session is already revoked: 401).
func TestReview_LogoutPublishFails_TokenStillRefusedOnThisInstance(t *testing.T) {
	q := &quietFeed{Store: openMemory(t), revokeAnnounce: true}
	e := newEnv(t, q)
	s := e.login(alice)
	if r := e.do("GET", "/app", "", bearer(s)...); r.status != 200 {
		t.Fatalf("before logout: %d", r.status)
	}
	first := e.do("POST", "/auth/v1/logout", "", bearer(s)...)
	retry := e.do("POST", "/auth/v1/logout", "", bearer(s)...)
	if r := e.do("GET", "/app", "", bearer(s)...); r.status != 401 {
		t.Fatalf("revoked session still let through the gate (logout answered %d then %d): %d",
			first.status, retry.status, r.status)
	}
}

// A client that disconnects while the provider is answering must not get
// the per-phone quota and cooldown back: the message may well have been
// delivered. Otherwise anyone can bomb a phone past every per-phone limit.
func TestReview_SendClientDisconnect_KeepsCooldown(t *testing.T) {
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

// After an idle hour the access cookie has expired but the refresh cookie
// is valid (the gate would refresh in place). "Sign out" must still end the
// session; today logout answers 401 bad_jwt, revokes nothing and clears no
// cookie, and the next page load signs the person straight back in.
func TestReview_LogoutWithExpiredAccessCookie_EndsSession(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		s := e.login(alice)
		ck := cookieHeader(s.cookie)
		e.clock.Advance(2 * time.Hour)
		r := e.do("POST", "/auth/v1/logout", "", "Cookie", ck)
		if r.status != 204 {
			t.Errorf("logout with expired access cookie + valid refresh cookie: %d %s", r.status, r.raw)
		}
		g := e.do("GET", "/app", "", "Cookie", ck, "Accept", "application/json")
		if g.status == 200 {
			t.Fatalf("after logout the old cookies still open the app")
		}
	})
}

// ---------- checked, expected to pass ----------

func TestReview_LogoutThenCachedTokenRefusedSameInstance(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		s := e.login(alice)
		other := e.login("+14155550177")
		for i := 0; i < 2; i++ { // warm the verified-token cache
			if r := e.do("GET", "/app", "", bearer(s)...); r.status != 200 {
				t.Fatal(r.raw)
			}
		}
		if r := e.do("POST", "/auth/v1/logout", "", bearer(s)...); r.status != 204 {
			t.Fatalf("logout %d %s", r.status, r.raw)
		}
		r := e.do("GET", "/app", "", bearer(s)...)
		wantError(t, r, 401, "no_authorization")
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
		}
		wantError(t, e.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"`+refreshOf(s)+`"}`), 401, "session_not_found")
		wantError(t, e.do("GET", "/auth/v1/user", "", bearer(s)...), 401, "session_not_found")
		if r := e.do("GET", "/app", "", bearer(other)...); r.status != 200 {
			t.Fatalf("another user's session was hit by a local logout: %d", r.status)
		}
	})
}

func TestReview_RefreshReuseRevokesAccessAtGate(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t), func(c *Config) { c.RefreshReuse = -1 })
		s := e.login(alice)
		if r := e.do("GET", "/app", "", bearer(s)...); r.status != 200 {
			t.Fatal(r.raw)
		}
		body := `{"refresh_token":"` + refreshOf(s) + `"}`
		n := e.do("POST", "/auth/v1/token?grant_type=refresh_token", body)
		if n.status != 200 {
			t.Fatal(n.raw)
		}
		wantError(t, e.do("POST", "/auth/v1/token?grant_type=refresh_token", body), 401, "refresh_token_already_used")
		for name, tok := range map[string]resp{"old access": s, "new access": n} {
			if r := e.do("GET", "/app", "", bearer(tok)...); r.status != 401 {
				t.Errorf("%s token still passes after reuse revoked the session: %d", name, r.status)
			}
		}
		wantError(t, e.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"`+refreshOf(n)+`"}`), 401, "session_not_found")
	})
}

func TestReview_GateFailsClosedWhenStoreErrors(t *testing.T) {
	q := &quietFeed{Store: openMemory(t)}
	e := newEnv(t, q)
	s := e.login(alice)
	ck := cookieHeader(s.cookie)
	feedHandler{e.g}.Healthy(false)
	q.down.Store(true)
	r := e.do("GET", "/app", "", bearer(s)...)
	wantError(t, r, 503, "store_unavailable")
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if strings.Contains(r.raw, "127.0.0.1") || strings.Contains(r.raw, "refused") {
		t.Errorf("store error leaked to the client: %s", r.raw)
	}
	wantError(t, e.do("GET", "/auth/v1/user", "", bearer(s)...), 503, "store_unavailable")
	// expired access cookie, refresh needs the store: refused, not let through
	e.clock.Advance(2 * time.Hour)
	wantError(t, e.do("GET", "/app", "", "Cookie", ck, "Accept", "application/json"), 503, "store_unavailable")
}

func TestReview_CrossSiteAuthPosts_Refused(t *testing.T) {
	e := newEnv(t, openMemory(t))
	s := e.login(alice)
	before := e.sender.count()
	hdrs := [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Origin", "null"},
		{"Origin", "https://evil.example"},
		{"Origin", "https://" + strings.TrimPrefix(e.srv.URL, "http://") + ".evil.example"},
	}
	routes := map[string]string{
		"/auth/v1/otp":    `{"phone":"+14155550124"}`,
		"/auth/v1/resend": `{"type":"sms","phone":"+14155550124"}`,
		"/auth/v1/verify": `{"type":"sms","phone":"+14155550124","token":"123456"}`,
		"/auth/v1/token?grant_type=refresh_token": `{"refresh_token":"` + refreshOf(s) + `"}`,
		"/auth/v1/logout":                         "",
	}
	for route, body := range routes {
		for _, h := range hdrs {
			r := e.do("POST", route, body, append(append([]string{}, h...), bearer(s)...)...)
			if r.status != 403 {
				t.Errorf("%s with %v: %d %s", route, h, r.status, r.raw)
			}
		}
	}
	if e.sender.count() != before {
		t.Fatal("cross-site request sent an SMS")
	}
	if r := e.do("GET", "/app", "", bearer(s)...); r.status != 200 {
		t.Fatal("cross-site logout went through")
	}
	// text/plain (a no-cors fetch / form) is refused too
	r := e.do("POST", "/auth/v1/otp", "", "Content-Type", "text/plain")
	if r.status != 400 {
		t.Fatalf("text/plain: %d", r.status)
	}
}

var dataReturnTo = regexp.MustCompile(`data-return-to="([^"]*)"`)

func TestReview_ReturnToTricks_StaySameOrigin(t *testing.T) {
	e := newEnv(t, openMemory(t))
	for _, rt := range []string{
		"//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example",
		"/%2F%2Fevil.example", "/%2f/evil.example", "/%5Cevil.example", "/%5C%5Cevil.example",
		"https://evil.example", "javascript:alert(1)", "/\t/evil.example", "/%09/evil.example",
		"/%0d%0a/evil.example", "/.//evil.example", "/%2e%2e//evil.example", "/x/..//evil.example",
		" //evil.example", "/%252F%252Fevil.example",
	} {
		page := e.do("GET", "/auth/login?return_to="+url.QueryEscape(rt), "")
		m := dataReturnTo.FindStringSubmatch(page.raw)
		if page.status != 200 || m == nil {
			t.Fatalf("%q: %d, no data-return-to", rt, page.status)
		}
		v := html.UnescapeString(m[1])
		dec, _ := url.PathUnescape(v)
		if !strings.HasPrefix(v, "/") || strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, "/\\") ||
			strings.ContainsAny(dec, "\t\r\n\\") {
			t.Errorf("return_to %q rendered as %q", rt, v)
		}
	}
	// the gate's own redirect
	c := noRedirect()
	for _, p := range []string{"/a/..//evil.example", "/%2e%2e/%2e%2e//evil.example"} {
		r := doWith(t, c, "GET", e.srv.URL+p, "", "Accept", "text/html")
		if r.status != 302 {
			continue
		}
		loc, _ := url.Parse(r.header.Get("Location"))
		if loc.Host != "" || loc.Path != "/auth/login" {
			t.Errorf("%s: Location %q", p, r.header.Get("Location"))
		}
		rt := loc.Query().Get("return_to")
		if dec, _ := url.PathUnescape(rt); !strings.HasPrefix(rt, "/") || strings.HasPrefix(dec, "//") {
			t.Errorf("%s: return_to %q", p, rt)
		}
	}
}

func TestReview_PublicPathTricks_Gated(t *testing.T) {
	e := newEnv(t, openMemory(t))
	for _, p := range []string{"/assets/..%2fadmin", "/healthz/../admin", "/assets%2f..%2fadmin", "/healthz%2f..%2fadmin", "/auth/v1/../../admin"} {
		r := e.do("GET", p, "", "X-Auth-User-Id", "attacker")
		if r.status == 200 {
			t.Errorf("%s reached the upstream without a session: %s", p, r.raw)
		}
	}
}

func TestReview_VerifyUnknownAndKnown_SameRefusal(t *testing.T) {
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
