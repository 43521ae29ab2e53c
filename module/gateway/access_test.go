package gateway

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/store"
	"github.com/otpgate/otpgate/module/store/memstore"
)

const (
	bob   = "+14155550124"
	carol = "+14155550125"
)

func closedSignup(c *Config) { c.OpenSignup = false }

func withRoster(t *testing.T, list map[string][]string, file string) option {
	t.Helper()
	r, err := NewRoster(list, file)
	if err != nil {
		t.Fatal(err)
	}
	return func(c *Config) { c.Roster = r }
}

// admin calls an admin route of the gateway as Caddy's admin endpoint does.
func (e *env) admin(method, route, body string) resp {
	e.t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	} else {
		rd = strings.NewReader("")
	}
	req := httptest.NewRequest(method, "http://localhost:2019/otpgate"+route, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	e.g.ServeAdmin(w, req, req.URL.Path[len("/otpgate"):], DialectOtpgate, Actor{Kind: "admin", IP: "127.0.0.1", Host: "localhost:2019"})
	out := resp{status: w.Code, header: w.Header(), raw: w.Body.String()}
	_ = json.Unmarshal(w.Body.Bytes(), &out.body)
	return out
}

// userIDOf is the id of the user of a phone, through the admin API.
func (e *env) userIDOf(phone string) string {
	e.t.Helper()
	r := e.admin("GET", "/users?phone="+strings.TrimPrefix(phone, "+"), "")
	users, _ := r.body["users"].([]any)
	if r.status != 200 || len(users) != 1 {
		e.t.Fatalf("user of %s: %d %s", phone, r.status, r.raw)
	}
	return users[0].(map[string]any)["id"].(string)
}

// tokenRoles reads app_metadata.roles from an access token.
func tokenRoles(t *testing.T, tok string) []string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		AppMetadata struct {
			Roles []string `json:"roles"`
		} `json:"app_metadata"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	return p.AppMetadata.Roles
}

func upstreamRoles(t *testing.T, r resp) string {
	t.Helper()
	all, _ := r.body["all"].(map[string]any)
	v, _ := all[HeaderRoles].([]any)
	if len(v) != 1 {
		t.Fatalf("upstream got X-Auth-Roles %v (%s)", v, r.raw)
	}
	return v[0].(string)
}

func accessToken(t *testing.T, r resp) string {
	t.Helper()
	tok, _ := r.body["access_token"].(string)
	if tok == "" {
		t.Fatalf("no access token: %s", r.raw)
	}
	return tok
}

// Under closed sign-up a client cannot widen the policy: its create_user
// true gets the answer of a real send, no SMS, and no code ever verifies.
func TestSignup_Closed_ClientCreateUserCannotSignUp(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		e := newEnv(t, open(t), closedSignup)
		r := e.do("POST", "/auth/v1/otp", `{"phone":"`+bob+`","create_user":true}`)
		if r.status != 200 || r.body["masked_phone"] != "+1***-***-0124" || r.body["message_id"] == "" {
			t.Fatalf("send: %d %s", r.status, r.raw)
		}
		if e.sender.count() != 0 {
			t.Fatal("an SMS went to a phone that may not sign up")
		}
		if len(e.slept) != 1 {
			t.Fatalf("the refusal did not take the time of a real send: slept %v", e.slept)
		}
		for _, code := range []string{"000000", "123456"} {
			wantError(t, e.verify(bob, code), 403, "otp_expired")
		}
	})
}

// A listed phone signs in under closed sign-up, and the roles of its line
// travel in the token and reach the upstream.
func TestSignup_Closed_ListedPhoneSignsInWithItsRoles(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		e := newEnv(t, open(t), closedSignup, withRoster(t, map[string][]string{alice: {"admin", "ops"}}, ""))
		r := e.do("POST", "/auth/v1/otp", `{"phone":"`+alice+`","create_user":false}`)
		if r.status != 200 || e.sender.count() != 1 {
			t.Fatalf("send to a listed phone: %d %s, %d sent", r.status, r.raw, e.sender.count())
		}
		s := e.verify(alice, e.sender.lastCode(t, alice))
		if s.status != 200 {
			t.Fatalf("verify: %d %s", s.status, s.raw)
		}
		if got := strings.Join(tokenRoles(t, accessToken(t, s)), ","); got != "admin,ops" {
			t.Fatalf("token roles %q", got)
		}
		user := s.body["user"].(map[string]any)
		if roles := user["app_metadata"].(map[string]any)["roles"]; len(roles.([]any)) != 2 {
			t.Fatalf("user app_metadata.roles = %v", roles)
		}
		up := e.do("GET", "/app", "", append(bearer(s), HeaderRoles, "superuser")...)
		if up.status != 200 || upstreamRoles(t, up) != "admin,ops" {
			t.Fatalf("upstream: %d %s", up.status, up.raw)
		}
	})
}

// Open sign-up: the request's create_user (default: the server's) decides.
func TestSignup_Open_CreateUserDecides(t *testing.T) {
	e := newEnv(t, memstore.New(), func(c *Config) { c.CreateUser = false; c.NoResendWait = true })
	e.send(bob)
	if e.sender.count() != 0 {
		t.Fatal("create_user defaulting to false still sent a code to an unknown phone")
	}
	e.do("POST", "/auth/v1/otp", `{"phone":"`+bob+`","create_user":true}`)
	if e.sender.count() != 1 {
		t.Fatal("open sign-up with create_user true sent no code")
	}
	if r := e.verify(bob, e.sender.lastCode(t, bob)); r.status != 200 {
		t.Fatalf("verify: %d %s", r.status, r.raw)
	}
}

// A site with roles lets through only sessions holding one of them;
// others get 403 no_access, JSON for scripts and a page for browsers.
func TestGate_SiteRoles_403WithoutRole200With(t *testing.T) {
	e := newEnv(t, memstore.New(), closedSignup,
		withRoster(t, map[string][]string{alice: {"admin"}, bob: {"ops"}}, ""))
	e.site.Roles = []string{"admin"}
	a, b := e.login(alice), e.login(bob)
	if r := e.do("GET", "/app", "", bearer(a)...); r.status != 200 {
		t.Fatalf("admin refused: %d %s", r.status, r.raw)
	}
	wantError(t, e.do("GET", "/app", "", bearer(b)...), 403, "no_access")

	c := noRedirect()
	e.useCookies(c, b)
	req, _ := http.NewRequest("GET", e.srv.URL+"/app", nil)
	req.Header.Set("Accept", "text/html")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("browser without the role: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

// useCookies gives c the session cookies of a sign-in (the test server is
// http, so the Secure cookies are copied by hand).
func (e *env) useCookies(c *http.Client, r resp) {
	e.t.Helper()
	u, _ := http.NewRequest("GET", e.srv.URL, nil)
	var cookies []*http.Cookie
	for _, ck := range r.cookie {
		ck.Secure = false
		cookies = append(cookies, ck)
	}
	c.Jar.SetCookies(u.URL, cookies)
}

// Taking access away on one instance stops the user on another within a
// second, through the feed: a ban, a deletion and a role taken away.
func TestAccessTakenAway_SecondInstanceRefusesWithinOneSecond(t *testing.T) {
	srv := testenv.StartRedis(t)
	for _, tc := range []struct {
		name  string
		take  func(a *env, id string)
		check func(r resp) bool
	}{
		{"ban", func(a *env, id string) {
			if r := a.admin("PATCH", "/users/"+id, `{"banned":true}`); r.status != 200 || r.body["banned_until"] == nil {
				t.Fatalf("ban: %d %s", r.status, r.raw)
			}
		}, func(r resp) bool { return r.status == 401 }},
		{"delete", func(a *env, id string) {
			if r := a.admin("DELETE", "/users/"+id, ""); r.status != 204 {
				t.Fatalf("delete: %d %s", r.status, r.raw)
			}
		}, func(r resp) bool { return r.status == 401 }},
		{"role", func(a *env, id string) {
			if r := a.admin("PATCH", "/users/"+id, `{"roles":["ops"]}`); r.status != 200 {
				t.Fatalf("set roles: %d %s", r.status, r.raw)
			}
		}, func(r resp) bool { return r.status == 403 && r.body["error_code"] == "no_access" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			phone := map[string]string{"ban": alice, "delete": bob, "role": carol}[tc.name]
			a := newEnv(t, openRedis(t, srv.URL()))
			b := newEnv(t, openRedis(t, srv.URL()))
			b.site.Roles = []string{"admin", "ops"}
			if tc.name == "role" {
				b.site.Roles = []string{"admin"}
			}
			s := a.login(phone)
			id := a.userIDOf(phone)
			if r := a.admin("PATCH", "/users/"+id, `{"roles":["admin","ops"]}`); r.status != 200 {
				t.Fatalf("grant: %d %s", r.status, r.raw)
			}
			// granting is not urgent: the next token carries it
			s = refreshed(t, a, s)
			if r := b.do("GET", "/app", "", bearer(s)...); r.status != 200 {
				t.Fatalf("before: %d %s", r.status, r.raw)
			}
			tc.take(a, id)
			deadline := time.Now().Add(time.Second)
			for {
				r := b.do("GET", "/app", "", bearer(s)...)
				if tc.check(r) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("instance b still answers %d %s one second after the change", r.status, r.raw)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// refreshed rotates a session's refresh token and returns the new tokens.
func refreshed(t *testing.T, e *env, s resp) resp {
	t.Helper()
	r := e.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"`+s.body["refresh_token"].(string)+`"}`)
	if r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.raw)
	}
	return r
}

// A browser whose role was taken away but who may still enter is not
// signed out: its next request carries the new roles, and its access
// cookie is re-signed with them.
func TestRoleTakenAway_BrowserKeepsSessionWithNewRoles(t *testing.T) {
	e := newEnv(t, memstore.New())
	c := noRedirect()
	e.useCookies(c, e.login(alice))
	id := e.userIDOf(alice)
	if r := e.admin("PATCH", "/users/"+id, `{"roles":["admin","ops"]}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	e.clock.Advance(2 * time.Hour) // the access cookie expires: refreshed in place with the roles
	if r := doWith(t, c, "GET", e.srv.URL+"/app", ""); r.status != 200 || upstreamRoles(t, r) != "admin,ops" {
		t.Fatalf("after grant and refresh: %d %s", r.status, r.raw)
	}
	keepSecureCookies(c, e.srv.URL)
	if r := e.admin("PATCH", "/users/"+id, `{"roles":["ops"]}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	r := doWith(t, c, "GET", e.srv.URL+"/app", "")
	if r.status != 200 || upstreamRoles(t, r) != "ops" {
		t.Fatalf("after the role was taken away: %d %s", r.status, r.raw)
	}
	var access string
	for _, ck := range r.cookie {
		if strings.HasSuffix(ck.Name, "otpgate-access") {
			access = ck.Value
		}
	}
	if access == "" || strings.Join(tokenRoles(t, access), ",") != "ops" {
		t.Fatalf("the access cookie was not re-signed with the new roles: %q", access)
	}
}

// keepSecureCookies makes the jar send the Secure cookies it holds over
// the plain-http test server again.
func keepSecureCookies(c *http.Client, base string) {
	u, _ := http.NewRequest("GET", base, nil)
	var out []*http.Cookie
	for _, ck := range c.Jar.Cookies(u.URL) {
		out = append(out, &http.Cookie{Name: ck.Name, Value: ck.Value, Path: "/"})
	}
	c.Jar.SetCookies(u.URL, out)
}

// A banned user gets no SMS (the enumeration-proof answer), cannot verify
// a code sent before the ban, and learns of the ban when refreshing.
func TestBan_NoSMSNoVerifyRefreshSaysBanned(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		e := newEnv(t, open(t), func(c *Config) { c.NoResendWait = true })
		s := e.login(alice)
		id := e.userIDOf(alice)
		if r := e.send(alice); r.status != 200 {
			t.Fatal(r.raw)
		}
		pending := e.sender.lastCode(t, alice)
		sent := e.sender.count()
		if r := e.admin("PATCH", "/users/"+id, `{"banned":true}`); r.status != 200 {
			t.Fatal(r.raw)
		}
		wantError(t, e.verify(alice, pending), 403, "otp_expired")
		if r := e.send(alice); r.status != 200 || e.sender.count() != sent {
			t.Fatalf("send to a banned user: %d %s, sent %d", r.status, r.raw, e.sender.count()-sent)
		}
		r := e.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"`+s.body["refresh_token"].(string)+`"}`)
		wantError(t, r, 403, "user_banned")
		wantError(t, e.do("GET", "/app", "", bearer(s)...), 401, "no_authorization")

		if r := e.admin("PATCH", "/users/"+id, `{"banned":false}`); r.status != 200 || r.body["banned_until"] != nil {
			t.Fatalf("unban: %d %s", r.status, r.raw)
		}
		e.clock.Advance(6 * time.Minute) // past the phone's send limit
		e.login(alice)
	})
}

// A phone removed from the users file is refused by every instance that
// follows the file within a second of one of them seeing the change.
func TestUsersFile_RemovalRefusedBySecondInstanceWithinOneSecond(t *testing.T) {
	srv := testenv.StartRedis(t)
	file := filepath.Join(t.TempDir(), "users.txt")
	writeFile(t, file, alice+" admin\n"+bob+" ops\n")
	a := newEnv(t, openRedis(t, srv.URL()), closedSignup, withRoster(t, nil, file),
		func(c *Config) { c.RosterPoll = 20 * time.Millisecond })
	b := newEnv(t, openRedis(t, srv.URL()), closedSignup, withRoster(t, nil, file),
		func(c *Config) { c.RosterPoll = time.Hour }) // b learns only from the feed
	s := a.login(alice)
	if r := b.do("GET", "/app", "", bearer(s)...); r.status != 200 {
		t.Fatalf("before: %d %s", r.status, r.raw)
	}
	writeFile(t, file, "# alice left the team\n"+bob+" ops\n")
	deadline := time.Now().Add(2 * time.Second) // a's poll, then the feed's second
	for {
		r := b.do("GET", "/app", "", bearer(s)...)
		if r.status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance b still lets the unlisted phone in: %d %s", r.status, r.raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// and the phone can no longer get a code
	a.clock.Advance(time.Minute)
	n := a.sender.count()
	if r := a.send(alice); r.status != 200 {
		t.Fatalf("send to an unlisted phone: %d %s", r.status, r.raw)
	}
	if a.sender.count() != n {
		t.Fatal("a code went to a phone removed from the users file")
	}
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// A session unused for inactivity_timeout ends: its refresh is refused
// (and the session revoked); one in use keeps going.
func TestInactivity_IdleSessionEnds(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		e := newEnv(t, open(t), func(c *Config) { c.Inactivity = 30 * time.Minute })
		s := e.login(alice)
		if got := s.body["expires_in"]; got != float64(180) {
			t.Fatalf("access tokens should live a tenth of the timeout: expires_in %v", got)
		}
		for range 5 { // in use: a refresh every 20 minutes
			e.clock.Advance(20 * time.Minute)
			s = refreshed(t, e, s)
		}
		e.clock.Advance(31 * time.Minute)
		r := e.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"`+s.body["refresh_token"].(string)+`"}`)
		wantError(t, r, 401, "session_not_found")
	})
}
