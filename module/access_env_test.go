package otpgate

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// accessGateway is real Caddy with otpgate on either store, the fake
// Plivo, Caddy's admin endpoint on a free port, and two sites in front of
// an upstream that echoes the headers it received: one any signed-in user
// may use, one (`roles admin`) only admins may.
type accessGateway struct {
	store     string // "memory" or "redis"
	base      string // the site for every signed-in user
	admins    string // the site with `roles admin`
	admin     string // host:port of Caddy's admin endpoint
	usersFile string // a users file the config may point at
	caddyfile string
	plivo     *testenv.FakePlivo
}

// forEachStoreKind runs f against the memory store and a real redis-server.
func forEachStoreKind(t *testing.T, f func(t *testing.T, storeLine string)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) { f(t, "store memory") })
	t.Run("redis", func(t *testing.T) { f(t, "store redis "+testenv.StartRedis(t).URL()) })
}

// startAccessGateway loads the config with storeLine (e.g. "store memory")
// and extra global options; usersFile, when not "", is written to a file
// that `users { file ... }` may name with {env.OTPGATE_TEST_USERS}.
func startAccessGateway(t *testing.T, storeLine, global, usersFile string) *accessGateway {
	t.Helper()
	plivo := testenv.NewFakePlivo(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "headers": r.Header})
	}))
	t.Cleanup(up.Close)
	file := filepath.Join(t.TempDir(), "users.txt")
	if err := os.WriteFile(file, []byte(usersFile), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OTPGATE_TEST_USERS", file)
	port, adminsPort, adminPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	upstream := strings.TrimPrefix(up.URL, "http://")
	cfg := fmt.Sprintf(`{
	storage file_system %s
	admin 127.0.0.1:%d
	auto_https off
	otpgate {
		%s
		sms plivo {
			auth_id %s
			auth_token %s
			from +14155550100
			api_url %s
			timeout 2s
		}
		otp {
			resend_after 0s
		}
		limit ip 1000 10m
		limit phone 100 5m
		%s
	}
}

http://127.0.0.1:%d {
	route {
		otpgate
		request_header X-Placeholder-Roles "roles={http.auth.user.roles}"
		reverse_proxy %s
	}
}

http://127.0.0.1:%d {
	route {
		otpgate {
			roles admin
		}
		reverse_proxy %s
	}
}
`, t.TempDir(), adminPort, storeLine, plivo.AuthID, plivo.AuthToken, plivo.URL(), global,
		port, upstream, adminsPort, upstream)
	testenv.LoadCaddyfile(t, cfg)
	kind, _, _ := strings.Cut(strings.TrimPrefix(storeLine, "store "), " ")
	return &accessGateway{
		store:     kind,
		base:      fmt.Sprintf("http://127.0.0.1:%d", port),
		admins:    fmt.Sprintf("http://127.0.0.1:%d", adminsPort),
		admin:     fmt.Sprintf("127.0.0.1:%d", adminPort),
		usersFile: file,
		caddyfile: cfg,
		plivo:     plivo,
	}
}

// reloadWith loads the gateway's config with global's old text replaced
// by new, as `caddy reload` does, and waits until the new gateway follows
// the revocation feed (so that nothing but what the reload applied makes
// it check sessions in the store).
func (g *accessGateway) reloadWith(t *testing.T, old, new string) {
	t.Helper()
	if !strings.Contains(g.caddyfile, old) {
		t.Fatalf("config has no %q", old)
	}
	g.caddyfile = strings.Replace(g.caddyfile, old, new, 1)
	if err := caddy.Load(testenv.AdaptCaddyfile(t, g.caddyfile), true); err != nil {
		t.Fatalf("reload: %v", err)
	}
	g.waitFeed(t)
}

// waitFeed polls /health until the running gateway's revocation feed is up.
func (g *accessGateway) waitFeed(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _, body := call(t, http.DefaultClient, "GET", g.base+"/auth/v1/health", "")
		if st == 200 && body["revocation_feed"] == true {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("revocation feed not healthy: %d %v", st, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// signIn sends a code to phone through the fake Plivo and verifies it; it
// returns the verify answer.
func (g *accessGateway) signIn(t *testing.T, phone string) map[string]any {
	t.Helper()
	c := http.DefaultClient
	if st, _, b := call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"`+phone+`"}`); st != 200 {
		t.Fatalf("send to %s: %d %v", phone, st, b)
	}
	code := g.plivo.LastCode(phone)
	if code == "" {
		t.Fatalf("no SMS reached %s", phone)
	}
	st, _, tok := call(t, c, "POST", g.base+"/auth/v1/verify", `{"type":"sms","phone":"`+phone+`","token":"`+code+`"}`)
	if st != 200 {
		t.Fatalf("verify %s: %d %v", phone, st, tok)
	}
	return tok
}

// gatedGet requests path of site with a bearer token and returns the status,
// the answer and, when the upstream answered, the headers it received.
func gatedGet(t *testing.T, site, path, access string) (int, map[string]any, http.Header) {
	t.Helper()
	st, _, body := call(t, http.DefaultClient, "GET", site+path, "", "Authorization", "Bearer "+access)
	hdr := http.Header{}
	if h, ok := body["headers"].(map[string]any); ok {
		for k, v := range h {
			for _, s := range v.([]any) {
				hdr.Add(k, s.(string))
			}
		}
	}
	return st, body, hdr
}

// adminCall calls Caddy's admin endpoint and returns the status, the raw
// body and the body decoded (nil when it is not a JSON object).
func (g *accessGateway) adminCall(t *testing.T, method, path, body string) (int, string, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+g.admin+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "otpgate-test")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return res.StatusCode, string(raw), m
}
