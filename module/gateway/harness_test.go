package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/loginpage"
	"github.com/otpgate/otpgate/module/sender"
	"github.com/otpgate/otpgate/module/session"
	"github.com/otpgate/otpgate/module/store"
	"github.com/otpgate/otpgate/module/store/memstore"
	"github.com/otpgate/otpgate/module/store/redisstore"

	"github.com/redis/go-redis/v9"
)

// clock is an injected, settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recSender records messages; err makes it fail.
type recSender struct {
	mu       sync.Mutex
	msgs     []sender.Message
	err      error
	whatsapp bool
}

func (s *recSender) Send(_ context.Context, m sender.Message) (sender.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return sender.Result{}, s.err
	}
	s.msgs = append(s.msgs, m)
	return sender.Result{MessageID: "msg-" + m.To[len(m.To)-4:]}, nil
}

func (s *recSender) Supports(ch string) bool {
	return ch == sender.SMS || (ch == sender.WhatsApp && s.whatsapp)
}

func (s *recSender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

func (s *recSender) lastCode(t testing.TB, to string) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.msgs) - 1; i >= 0; i-- {
		if s.msgs[i].To == to {
			return s.msgs[i].Code
		}
	}
	t.Fatalf("no message sent to %s", to)
	return ""
}

// storeKind runs a test against each store: the memory store and a real
// redis-server started for the test.
type storeKind struct {
	name string
	open func(t *testing.T) store.Store
}

func storeKinds() []storeKind {
	return []storeKind{
		{"memory", func(t *testing.T) store.Store { return memstore.New() }},
		{"redis", func(t *testing.T) store.Store {
			srv := testenv.StartRedis(t)
			return openRedis(t, srv.URL())
		}},
	}
}

func openRedis(t *testing.T, url string) store.Store {
	t.Helper()
	opts, err := redisstore.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	st := redisstore.New(redis.NewUniversalClient(opts))
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func eachStore(t *testing.T, f func(t *testing.T, open func(t *testing.T) store.Store)) {
	for _, k := range storeKinds() {
		t.Run(k.name, func(t *testing.T) { f(t, k.open) })
	}
}

// env is one gateway behind a test server, with an upstream that echoes
// the identity headers it received.
type env struct {
	t      *testing.T
	g      *Gateway
	site   *Site
	srv    *httptest.Server
	clock  *clock
	sender *recSender
	slept  []time.Duration
	mu     sync.Mutex
	ip     string
}

type option func(*Config)

var sharedKey = func() session.Key {
	k, err := session.GenerateKey("ES256")
	if err != nil {
		panic(err)
	}
	return k
}()

// baseConfig is the configuration every test and benchmark gateway shares.
func baseConfig(st store.Store, snd sender.Sender) Config {
	return Config{
		Store:      st,
		Sender:     snd,
		Tokens:     session.NewTokens(session.KeyRing{Current: sharedKey}, "otpgate", "authenticated"),
		Secret:     []byte("0123456789abcdef0123456789abcdef"),
		CreateUser: true,
		// most tests sign people up; the sign-up policy has tests of its own
		OpenSignup: true,
	}
}

func newEnv(t *testing.T, st store.Store, opts ...option) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), sender: &recSender{}, ip: "203.0.113.7"}
	cfg := baseConfig(st, e.sender)
	cfg.Now = e.clock.Now
	cfg.Sleep = func(_ context.Context, d time.Duration) {
		e.mu.Lock()
		e.slept = append(e.slept, d)
		e.mu.Unlock()
	}
	for _, o := range opts {
		o(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.Start()
	t.Cleanup(g.Stop)
	page, err := loginpage.New(loginpage.Options{APIPrefix: "/auth/v1", LoginPath: "/auth/login"})
	if err != nil {
		t.Fatal(err)
	}
	e.g = g
	e.site = &Site{G: g, APIPrefix: "/auth/v1", LoginPath: "/auth/login", Public: []string{"/healthz", "/assets/*"}, Gate: true, Page: page}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		ip := e.ip
		e.mu.Unlock()
		if _, done, _ := e.site.Handle(w, r, ip); done {
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"path":       r.URL.Path,
			"user_id":    r.Header.Values(HeaderUserID),
			"phone":      r.Header.Values(HeaderPhone),
			"session_id": r.Header.Values(HeaderSessionID),
			"all":        r.Header,
		})
	}))
	t.Cleanup(e.srv.Close)
	waitFeed(t, g)
	return e
}

// waitFeed waits until the gateway follows the revocation feed.
func waitFeed(t testing.TB, g *Gateway) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !g.feedOK.Load() {
		if time.Now().After(deadline) {
			t.Fatal("revocation feed did not become healthy")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) setIP(ip string) {
	e.mu.Lock()
	e.ip = ip
	e.mu.Unlock()
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
	cookie []*http.Cookie
}

func (e *env) do(method, path, body string, hdr ...string) resp {
	e.t.Helper()
	return doWith(e.t, http.DefaultClient, method, e.srv.URL+path, body, hdr...)
}

func doWith(t *testing.T, c *http.Client, method, url, body string, hdr ...string) resp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header, raw: string(b), cookie: res.Cookies()}
	_ = json.Unmarshal(b, &out.body)
	return out
}

func (e *env) send(phone string) resp {
	e.t.Helper()
	return e.do("POST", "/auth/v1/otp", `{"phone":"`+phone+`"}`)
}

func (e *env) verify(phone, code string) resp {
	e.t.Helper()
	return e.do("POST", "/auth/v1/verify", `{"type":"sms","phone":"`+phone+`","token":"`+code+`"}`)
}

// login sends and verifies a code and returns the token response.
func (e *env) login(phone string) resp {
	e.t.Helper()
	if r := e.send(phone); r.status != 200 {
		e.t.Fatalf("send: %d %s", r.status, r.raw)
	}
	r := e.verify(phone, e.sender.lastCode(e.t, phone))
	if r.status != 200 {
		e.t.Fatalf("verify: %d %s", r.status, r.raw)
	}
	return r
}

func wantError(t *testing.T, r resp, status int, code string) {
	t.Helper()
	if r.status != status || r.body["error_code"] != code {
		t.Fatalf("got %d %s, want %d %s", r.status, r.raw, status, code)
	}
	if r.header.Get("x-sb-error-code") != code {
		t.Fatalf("x-sb-error-code = %q, want %q", r.header.Get("x-sb-error-code"), code)
	}
	if got := r.body["code"]; got != float64(status) {
		t.Fatalf("body code = %v, want %d", got, status)
	}
}

func noRedirect() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var errBoom = errors.New("plivo said no")

func cookieHeader(cs []*http.Cookie) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

func refreshOf(r resp) string { return r.body["refresh_token"].(string) }
