package gateway

import (
	"testing"
	"time"

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
// the auth routes answer 503; when Redis returns everything recovers.
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
	if r := e.do("GET", "/app", "", bearer(s)...); r.status != 200 {
		t.Fatalf("after Redis came back: %d %s", r.status, r.raw)
	}
	if r := e.send("+14155550124"); r.status != 200 {
		t.Fatalf("send after recovery: %d %s", r.status, r.raw)
	}
}
