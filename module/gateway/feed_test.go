package gateway

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// Two gateways sharing one Redis: a logout on one is refused by the other
// within a second, without a store round trip per request.
func TestGate_RevocationSeenBySecondInstanceWithinOneSecond(t *testing.T) {
	srv := testenv.StartRedis(t)
	a := newEnv(t, openRedis(t, srv.URL()))
	b := newEnv(t, openRedis(t, srv.URL()))
	s := a.login(alice)
	if r := b.do("GET", "/app", "", bearer(s)...); r.status != 200 {
		t.Fatalf("instance b refused a valid session: %d %s", r.status, r.raw)
	}
	if r := a.do("POST", "/auth/v1/logout", "", bearer(s)...); r.status != 204 {
		t.Fatalf("logout %d", r.status)
	}
	deadline := time.Now().Add(time.Second)
	for {
		r := b.do("GET", "/app", "", bearer(s)...)
		if r.status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("instance b still lets the revoked session through after 1s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Redis down: the gate cannot vouch for sessions, so it refuses them, and
// the auth routes answer 503; when Redis returns everything recovers. (This
// Redis comes back empty: the sessions it held are gone, and so is their
// access; see TestGate_RedisLostItsData_CachedTokensCheckedAgain.)
func TestStoreDown_FailsClosedAndRecovers(t *testing.T) {
	srv := testenv.StartRedis(t)
	e := newEnv(t, openRedis(t, srv.URL()))
	s := e.login(alice)
	if r := e.do("GET", "/app", "", bearer(s)...); r.status != 200 {
		t.Fatalf("before: %d", r.status)
	}
	srv.Stop()
	deadline := time.Now().Add(3 * time.Second)
	for e.g.feedOK.Load() {
		if time.Now().After(deadline) {
			t.Fatal("feed still healthy with Redis down")
		}
		time.Sleep(10 * time.Millisecond)
	}
	wantError(t, e.do("GET", "/app", "", bearer(s)...), 503, "store_unavailable")
	wantError(t, e.send("+14155550124"), 503, "store_unavailable")
	wantError(t, e.verify(alice, "123456"), 503, "store_unavailable")

	srv.Restart()
	waitFeed(t, e.g)
	if r := e.send("+14155550124"); r.status != 200 {
		t.Fatalf("send after recovery: %d %s", r.status, r.raw)
	}
	again := e.login(alice)
	if r := e.do("GET", "/app", "", bearer(again)...); r.status != 200 {
		t.Fatalf("a sign-in after Redis came back: %d %s", r.status, r.raw)
	}
}

// Redis comes back empty (restarted without persistence): the sessions
// and the revocation log are gone. The gate must not go on trusting the
// tokens it cached before: each is checked in the store again, which no
// longer knows its session, so it is refused, as /user refuses it.
func TestGate_RedisLostItsData_CachedTokensCheckedAgain(t *testing.T) {
	srv := testenv.StartRedis(t)
	e := newEnv(t, openRedis(t, srv.URL()))
	s := e.login(alice)
	if r := e.do("GET", "/app", "", bearer(s)...); r.status != 200 {
		t.Fatalf("before: %d", r.status)
	}
	srv.Stop()
	for deadline := time.Now().Add(3 * time.Second); e.g.feedOK.Load(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("feed still healthy with Redis down")
		}
	}
	srv.Restart()
	waitFeed(t, e.g)
	wantError(t, e.do("GET", "/auth/v1/user", "", bearer(s)...), 401, "session_not_found")
	if r := e.do("GET", "/app", "", bearer(s)...); r.status != 401 {
		t.Fatalf("a token whose session Redis lost still passes the gate: %d %s", r.status, r.raw)
	}
	again := e.login(alice)
	if r := e.do("GET", "/app", "", bearer(again)...); r.status != 200 {
		t.Fatalf("a new sign-in: %d %s", r.status, r.raw)
	}
}

// A second instance that starts after the store lost its data (or a
// memory store after a restart) cannot know what was revoked before: the
// tokens issued before the store's data began are checked once.
func TestGate_StartedAfterDataLoss_EarlierTokensCheckedOnce(t *testing.T) {
	srv := testenv.StartRedis(t)
	a := newEnv(t, openRedis(t, srv.URL()))
	s := a.login(alice)
	a.clock.Advance(time.Minute) // a token issued a minute before the data began
	old := a.do("POST", "/auth/v1/token?grant_type=refresh_token", `{"refresh_token":"`+s.body["refresh_token"].(string)+`"}`)
	if old.status != 200 {
		t.Fatalf("refresh: %d %s", old.status, old.raw)
	}
	a.clock.Advance(time.Minute)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	if err := admin.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	b := newEnv(t, openRedis(t, srv.URL()), func(c *Config) { c.Now = a.clock.Now })
	if r := b.do("GET", "/app", "", bearer(old)...); r.status != 401 {
		t.Fatalf("a token issued before the store's data began passes a new instance: %d %s", r.status, r.raw)
	}
	fresh := b.login("+14155550124")
	if r := b.do("GET", "/app", "", bearer(fresh)...); r.status != 200 {
		t.Fatalf("a token issued after: %d %s", r.status, r.raw)
	}
}
