package gateway

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/store"
	"github.com/otpgate/otpgate/module/store/redisstore"
)

// lostReply lets Redis run the revoke script once it is armed, then loses
// the reply, as a timeout after the command reached Redis does.
type lostReply struct {
	sha   string
	armed atomic.Bool
}

var errReplyLost = errors.New("i/o timeout (reply lost)")

func (h *lostReply) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *lostReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		args := cmd.Args()
		if err == nil && len(args) > 1 && args[0] == "evalsha" && args[1] == h.sha && h.armed.CompareAndSwap(true, false) {
			cmd.SetErr(errReplyLost)
			return errReplyLost
		}
		return err
	}
}

func (h *lostReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// revokeLosingReply opens a Redis store whose revoke script's reply can be
// lost on demand.
func revokeLosingReply(t *testing.T, url string) (store.Store, *lostReply) {
	t.Helper()
	src, err := os.ReadFile("../store/redisstore/lua/revoke.lua")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(src)
	h := &lostReply{sha: hex.EncodeToString(sum[:])}
	opts, err := redisstore.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewUniversalClient(opts)
	client.AddHook(h)
	st := redisstore.New(client)
	t.Cleanup(func() { _ = st.Close() })
	return st, h
}

// waitRefused waits (at most a second) until e's gate refuses the session.
// lostReplyPair is two instances on srv: a, whose revokes lose their
// reply once lost is armed, announcing failed revocations again every
// retry, and b; and a session signed in on a that b lets through.
func lostReplyPair(t *testing.T, srv *testenv.Redis, retry time.Duration) (a, b *env, lost *lostReply, s resp) {
	t.Helper()
	st, lost := revokeLosingReply(t, srv.URL())
	a = newEnv(t, st, func(c *Config) { c.AnnounceRetry = retry })
	b = newEnv(t, openRedis(t, srv.URL()))
	a.do("POST", "/auth/v1/logout", "", bearer(a.login("+14155550100"))...) // loads the revoke script
	s = a.login(alice)
	if r := b.do("GET", "/app", "", bearer(s)...); r.status != 200 {
		t.Fatalf("before: %d", r.status)
	}
	return a, b, lost, s
}

func waitRefused(t *testing.T, e *env, s resp, what string) {
	t.Helper()
	for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
		if r := e.do("GET", "/app", "", bearer(s)...); r.status == 401 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the other instance still lets the revoked session through after 1s", what)
		}
	}
}

// A logout whose reply is lost (the revoke ran, the announcement never
// did) answers 503; its retry finds the session already revoked and
// announces it again before answering, so the other instances refuse it.
func TestLogout_ReplyLost_RetryAnnouncesBeforeAnswering(t *testing.T) {
	srv := testenv.StartRedis(t)
	// the retry loop would repair it too, after an hour: the retry must
	a, b, lost, s := lostReplyPair(t, srv, time.Hour)

	lost.armed.Store(true)
	wantError(t, a.do("POST", "/auth/v1/logout", "", bearer(s)...), 503, "store_unavailable")
	if lost.armed.Load() {
		t.Fatal("the revoke script never ran")
	}
	wantError(t, a.do("POST", "/auth/v1/logout", "", bearer(s)...), 401, "session_not_found")
	waitRefused(t, b, s, "after the retried logout")
}

// Without any retry from the client, the instance that answered 503 keeps
// announcing what the lost revoke may have done until the store answers.
func TestLogout_ReplyLost_503StillAnnounced(t *testing.T) {
	srv := testenv.StartRedis(t)
	a, b, lost, s := lostReplyPair(t, srv, 20*time.Millisecond)
	lost.armed.Store(true)
	wantError(t, a.do("POST", "/auth/v1/logout?scope=global", "", bearer(s)...), 503, "store_unavailable")
	waitRefused(t, b, s, "after a 503 logout")
}

// A revoked session seen anywhere (here: /user on an instance whose token
// check finds it revoked) is announced again, so a gate that missed the
// announcement stops accepting it.
func TestRevokedSessionSeen_AnnouncedAgain(t *testing.T) {
	srv := testenv.StartRedis(t)
	a, b, lost, s := lostReplyPair(t, srv, time.Hour)
	lost.armed.Store(true)
	wantError(t, a.do("POST", "/auth/v1/logout", "", bearer(s)...), 503, "store_unavailable")
	c := newEnv(t, openRedis(t, srv.URL()), func(c *Config) { c.AnnounceRetry = 20 * time.Millisecond })
	wantError(t, c.do("GET", "/auth/v1/user", "", bearer(s)...), 401, "session_not_found")
	waitRefused(t, b, s, "after /user saw the revoked session")
}
