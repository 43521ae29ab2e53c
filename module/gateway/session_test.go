package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/session"
	"github.com/otpgate/otpgate/module/store"
)

func bearer(r resp) []string {
	return []string{"Authorization", "Bearer " + r.body["access_token"].(string)}
}

func TestRefresh_RotatesAndReuseAfterGraceRevokesSession(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		s := e.login(alice)
		r0 := s.body["refresh_token"].(string)
		r1 := e.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"`+r0+`"}`)
		if r1.status != 200 || r1.body["refresh_token"] == r0 {
			t.Fatalf("rotate: %d %s", r1.status, r1.raw)
		}
		// a second tab within the grace interval still gets a session
		e.clock.Advance(5 * time.Second)
		r2 := e.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"`+r0+`"}`)
		if r2.status != 200 {
			t.Fatalf("reuse within grace: %d %s", r2.status, r2.raw)
		}
		// past the interval the reuse is theft: the whole session ends
		e.clock.Advance(10 * time.Second)
		wantError(t, e.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"`+r0+`"}`), 401, "refresh_token_already_used")
		wantError(t, e.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"`+r1.body["refresh_token"].(string)+`"}`), 401, "session_not_found")
		if r := e.do("GET", "/app", "", bearer(r1)...); r.status != 401 {
			t.Fatalf("gate let a revoked session through: %d", r.status)
		}
	})
}

func TestRefresh_ZeroReuseInterval_AnyReuseRevokes(t *testing.T) {
	e := newEnv(t, openMemory(t), func(c *Config) { c.NoReuseGrace = true })
	s := e.login(alice)
	r0 := s.body["refresh_token"].(string)
	e.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"`+r0+`"}`)
	wantError(t, e.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"`+r0+`"}`), 401, "refresh_token_already_used")
}

func TestRefresh_GarbageAndWrongGrant(t *testing.T) {
	e := newEnv(t, openMemory(t))
	wantError(t, e.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"garbage"}`), 401, "session_not_found")
	if r := e.do("POST", "/auth/v1/token?grant_type=password", `{"refresh_token":"x"}`); r.status != 400 {
		t.Fatalf("%d", r.status)
	}
}

func TestUser_ReturnsTheBearersUser(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		s := e.login(alice)
		r := e.do("GET", "/auth/v1/user", "", bearer(s)...)
		if r.status != 200 || r.body["phone"] != alice[1:] || r.body["id"] != s.body["user"].(map[string]any)["id"] {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		wantError(t, e.do("GET", "/auth/v1/user", ""), 401, "no_authorization")
		wantError(t, e.do("GET", "/auth/v1/user", "", "Authorization", "Bearer x.y.z"), 401, "bad_jwt")
	})
}

func TestLogout_Local_RevokesAtOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		s := e.login(alice)
		if r := e.do("GET", "/app", "", bearer(s)...); r.status != 200 {
			t.Fatalf("before logout: %d", r.status)
		}
		if r := e.do("POST", "/auth/v1/logout", "", bearer(s)...); r.status != 204 {
			t.Fatalf("logout %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/app", "", bearer(s)...); r.status != 401 {
			t.Fatalf("after logout: %d", r.status)
		}
		wantError(t, e.do("GET", "/auth/v1/user", "", bearer(s)...), 401, "session_not_found")
	})
}

func TestLogout_GlobalAndOthers(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t), func(c *Config) { c.NoResendWait = true })
		a := e.login(alice)
		b := e.login(alice)
		c := e.login(alice)
		if r := e.do("POST", "/auth/v1/logout?scope=others", "", bearer(a)...); r.status != 204 {
			t.Fatalf("%d", r.status)
		}
		if e.do("GET", "/app", "", bearer(a)...).status != 200 || e.do("GET", "/app", "", bearer(b)...).status != 401 {
			t.Fatal("scope=others")
		}
		if r := e.do("POST", "/auth/v1/logout?scope=global", "", bearer(a)...); r.status != 204 {
			t.Fatalf("%d", r.status)
		}
		if e.do("GET", "/app", "", bearer(a)...).status != 401 || e.do("GET", "/app", "", bearer(c)...).status != 401 {
			t.Fatal("scope=global")
		}
	})
}

func TestJWKS_PublishesTheSigningKey(t *testing.T) {
	e := newEnv(t, openMemory(t))
	r := e.do("GET", "/auth/v1/.well-known/jwks.json", "")
	ks, _ := r.body["keys"].([]any)
	if r.status != 200 || len(ks) != 1 || ks[0].(map[string]any)["kid"] != sharedKey.Kid || ks[0].(map[string]any)["alg"] != "ES256" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

func TestGate_NoSession_BrowserRedirectedAPIGets401(t *testing.T) {
	e := newEnv(t, openMemory(t))
	c := noRedirect()
	r := doWith(t, c, "GET", e.srv.URL+"/reports?q=1", "", "Accept", "text/html,application/xhtml+xml")
	if r.status != 302 {
		t.Fatalf("browser: %d", r.status)
	}
	loc, _ := url.Parse(r.header.Get("Location"))
	if loc.Path != "/auth/login" || loc.Query().Get("return_to") != "/reports?q=1" {
		t.Fatalf("Location %q", r.header.Get("Location"))
	}
	r = e.do("GET", "/reports", "", "Accept", "application/json")
	wantError(t, r, 401, "no_authorization")
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
	r = e.do("POST", "/reports", "{}", "Accept", "text/html")
	if r.status != 401 {
		t.Fatalf("POST from a browser: %d", r.status)
	}
	r = doWith(t, c, "GET", e.srv.URL+"/reports", "", "Accept", "text/html", "X-Requested-With", "XMLHttpRequest")
	if r.status != 401 {
		t.Fatalf("XHR: %d", r.status)
	}
}

func TestGate_ReturnToIsAlwaysSameOrigin(t *testing.T) {
	e := newEnv(t, openMemory(t))
	c := noRedirect()
	for _, p := range []string{"//evil.example/x", "/%2F%2Fevil.example", "/\\evil.example"} {
		r := doWith(t, c, "GET", e.srv.URL+p, "", "Accept", "text/html")
		if r.status != 302 {
			continue
		}
		loc, _ := url.Parse(r.header.Get("Location"))
		rt := loc.Query().Get("return_to")
		if !strings.HasPrefix(rt, "/") || strings.HasPrefix(rt, "//") || strings.HasPrefix(rt, "/\\") {
			t.Errorf("%s: return_to %q", p, rt)
		}
	}
	page := e.do("GET", "/auth/login?return_to=https://evil.example/", "")
	if page.status != 200 || strings.Contains(page.raw, "evil.example") {
		t.Fatalf("login page kept an off-site return_to")
	}
}

func TestGate_ValidSession_PassesAndOwnsIdentityHeaders(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		s := e.login(alice)
		uid := s.body["user"].(map[string]any)["id"].(string)
		r := e.do("GET", "/app", "", append(bearer(s),
			"X-Auth-User-Id", "attacker", "X_Auth_Phone", "+19999999999", "x-auth-session-id", "forged", "X-AUTH-PHONE", "+18888888888")...)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		if got := r.body["user_id"].([]any); len(got) != 1 || got[0] != uid {
			t.Fatalf("user id header %v", got)
		}
		if got := r.body["phone"].([]any); len(got) != 1 || got[0] != alice {
			t.Fatalf("phone header %v", got)
		}
		if strings.Contains(r.raw, "attacker") || strings.Contains(r.raw, "+1999") || strings.Contains(r.raw, "forged") || strings.Contains(r.raw, "+1888") {
			t.Fatalf("a spoofed identity header reached the upstream: %s", r.raw)
		}
		// cookies work as well as bearer tokens
		c := noRedirect()
		u, _ := url.Parse(e.srv.URL)
		for _, ck := range s.cookie {
			c.Jar.SetCookies(u, []*http.Cookie{{Name: ck.Name, Value: ck.Value}})
		}
		r = doWith(t, c, "GET", e.srv.URL+"/app", "", "Accept", "text/html")
		if r.status != 200 {
			t.Fatalf("cookie session: %d", r.status)
		}
		if strings.Contains(r.raw, "otpgate-access") || strings.Contains(r.raw, "otpgate-refresh") {
			t.Fatalf("the upstream received the session cookies: %s", r.raw)
		}
	})
}

func TestGate_PublicPathsAndSpoofedHeadersStrippedThere(t *testing.T) {
	e := newEnv(t, openMemory(t))
	r := e.do("GET", "/healthz", "", "X-Auth-User-Id", "attacker")
	if r.status != 200 || strings.Contains(r.raw, "attacker") {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/assets/app.css", ""); r.status != 200 {
		t.Fatalf("prefix public: %d", r.status)
	}
	if r := e.do("GET", "/assets/../admin", ""); r.status != 401 {
		t.Fatalf("traversal out of a public prefix: %d", r.status)
	}
}

func TestGate_Off_ServesAuthRoutesOnly(t *testing.T) {
	e := newEnv(t, openMemory(t))
	e.site.Gate = false
	if r := e.do("GET", "/app", "", "X-Auth-User-Id", "attacker"); r.status != 200 || strings.Contains(r.raw, "attacker") {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

func TestGate_ExpiredAccessCookieWithRefreshCookie_RefreshedInPlace(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t))
		s := e.login(alice)
		e.clock.Advance(2 * time.Hour)
		c := noRedirect()
		u, _ := url.Parse(e.srv.URL)
		for _, ck := range s.cookie {
			c.Jar.SetCookies(u, []*http.Cookie{{Name: ck.Name, Value: ck.Value}})
		}
		r := doWith(t, c, "GET", e.srv.URL+"/app", "", "Accept", "text/html")
		if r.status != 200 {
			t.Fatalf("expired access + refresh cookie: %d %s", r.status, r.raw)
		}
		var fresh string
		for _, ck := range r.cookie {
			if ck.Name == "__Host-otpgate-access" {
				fresh = ck.Value
			}
		}
		if fresh == "" || fresh == s.body["access_token"] {
			t.Fatal("no new access cookie on the response")
		}
		// a bearer token that expired is not refreshed (no cookie to use)
		if r := e.do("GET", "/app", "", bearer(s)...); r.status != 401 {
			t.Fatalf("expired bearer: %d", r.status)
		}
	})
}

func TestGate_ForgedTokens_Refused(t *testing.T) {
	e := newEnv(t, openMemory(t))
	s := e.login(alice)
	tok := s.body["access_token"].(string)
	parts := strings.Split(tok, ".")
	other, _ := session.GenerateKey("ES256")
	foreign, _ := session.NewTokens(session.KeyRing{Current: other}, "otpgate", "authenticated").Sign(session.Claims{
		Issuer: "otpgate", Audience: "authenticated", Subject: "x", Phone: alice, SessionID: "s",
		IssuedAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(time.Hour), Role: "authenticated",
	})
	forged := map[string]string{
		"garbage":        "garbage",
		"alg none":       "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".",
		"changed claims": parts[0] + "." + strings.TrimRight(parts[1], "A") + "B." + parts[2],
		"another key":    foreign,
	}
	for name, f := range forged {
		if r := e.do("GET", "/app", "", "Authorization", "Bearer "+f); r.status != 401 {
			t.Errorf("%s: %d", name, r.status)
		}
	}
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

// A logout whose revocation is stored but whose announcement fails (what
// the Redis store returns when the publish after the revoke script fails:
// the revoked IDs and an error) still ends the session on this instance at
// once, whether the person retries the logout or not.
func TestLogout_RevokedButNotAnnounced_RefusedHereAtOnce(t *testing.T) {
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

// Signing out after an idle hour (the access cookie expired, the refresh
// cookie still valid, which the gate would refresh in place) ends the
// session: the old cookies no longer open the app.
func TestLogout_ExpiredAccessCookieValidRefreshCookie_EndsSession(t *testing.T) {
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

// After a logout the session's access token is refused at once although
// the gate had cached it as verified, its refresh token and /user answer
// session_not_found, and another person's session still passes.
func TestLogout_CachedTokenRefusedAtOnce_OtherSessionsUntouched(t *testing.T) {
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

// Reusing a rotated refresh token revokes the session: the old and the new
// access tokens are refused at the gate and the new refresh token is gone.
func TestRefresh_Reuse_OldAndNewAccessRefusedAtGate(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t), func(c *Config) { c.NoReuseGrace = true })
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

// With the feed down and the store failing, the gate fails closed: 503
// store_unavailable with Retry-After and no detail of the store's error,
// for a bearer token, for /user, and for an expired access cookie whose
// refresh needs the store.
func TestGate_StoreDown_FailsClosedWith503(t *testing.T) {
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
