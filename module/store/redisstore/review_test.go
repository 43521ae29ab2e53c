package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/store"
)

const (
	r2User store.UserKey = "cmV2aWV3Mi11c2VyLWtleTA"
	r2Ph                 = "+12015550123"
)

func r2Open(t *testing.T, srv *testenv.Redis) (*Store, redis.UniversalClient) {
	t.Helper()
	opts, err := ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewUniversalClient(opts)
	s := New(c)
	t.Cleanup(func() { _ = s.Close() })
	return s, c
}

// hashTag is the part of a key Redis Cluster hashes.
func hashTag(k string) string {
	if i := strings.IndexByte(k, '{'); i >= 0 {
		if j := strings.IndexByte(k[i+1:], '}'); j > 0 {
			return k[i+1 : i+1+j]
		}
	}
	return k
}

type r2Scripts struct {
	mu   sync.Mutex
	bad  []string
	seen int
}

func (h *r2Scripts) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *r2Scripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *r2Scripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		name := strings.ToLower(fmt.Sprint(a[0]))
		if name == "evalsha" || name == "eval" {
			n, _ := strconv.Atoi(fmt.Sprint(a[2]))
			keys := a[3 : 3+n]
			argv := a[3+n:]
			h.mu.Lock()
			h.seen++
			tag := hashTag(fmt.Sprint(keys[0]))
			for _, k := range keys {
				if hashTag(fmt.Sprint(k)) != tag {
					h.bad = append(h.bad, fmt.Sprint(a))
				}
			}
			// key prefixes passed as ARGV and completed inside Lua
			for _, v := range argv {
				if s, ok := v.(string); ok && strings.HasPrefix(s, "otpgate:{") && hashTag(s) != tag {
					h.bad = append(h.bad, "argv key "+s+" in "+fmt.Sprint(a))
				}
			}
			h.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

// Every script's KEYS, and every key prefix it completes inside Lua, share
// one hash tag (one cluster slot).
func TestReview2_ScriptsStayInOneSlot(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, c := r2Open(t, srv)
	var h r2Scripts
	c.AddHook(&h)
	ctx := t.Context()
	now := time.UnixMilli(1_800_000_000_000)

	if _, err := s.Hit(ctx, "ip:2001:db8::/64", 3, time.Minute, now); err != nil {
		t.Fatal(err)
	}
	req := store.SendRequest{User: r2User, Now: now, Keep: time.Hour, Cooldown: time.Second,
		PhoneLimit: store.Limit{N: 5, Window: time.Hour},
		Challenge: store.Challenge{ID: "c1", CodeMAC: []byte("m"), Phone: r2Ph, Channel: "sms", CreateUser: true,
			SentAt: now, ExpiresAt: now.Add(5 * time.Minute)}}
	if _, err := s.BeginSend(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Challenge(ctx, r2User); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Attempt(ctx, store.AttemptRequest{User: r2User, Now: now, MaxAttempts: 5,
		Lockout: store.Lockout{After: 100, Base: time.Minute, Max: time.Hour, Memory: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Consume(ctx, store.ConsumeRequest{User: r2User, ChallengeID: "c1", Now: now, NewUserID: "u1",
		Session: store.Session{ID: "s1", ExpiresAt: now.Add(time.Hour)}, RefreshHash: "h1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(ctx, store.RotateRequest{User: r2User, OldHash: "h1", NewHash: "h2", Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, r2User, store.RevokeAll, "", now); err != nil {
		t.Fatal(err)
	}
	_ = s.AbortSend(ctx, r2User, "c1")
	_ = s.SetOptOut(ctx, r2User, true, now)
	_, _ = s.FirstSeen(ctx, "plivo-nonce:x", time.Minute)
	_, _, _, _, _ = s.Access(ctx, r2User, "s1")
	_, _ = s.Sessions(ctx, r2User, now)
	_, _, _ = s.UpdateUser(ctx, r2User, store.UserUpdate{Now: now, Confirmed: true})
	_, _, _ = s.CreateUser(ctx, store.CreateUserRequest{User: "cmV2aWV3Mi1vdGhlci1rZXk", ID: "u2", Phone: r2Ph, Now: now})
	_, _, _ = s.ListUsers(ctx, 0, 10)
	_, _, _ = s.UserByID(ctx, "u1")
	if _, _, ok, err := s.DeleteUser(ctx, r2User, now); err != nil || !ok {
		t.Fatal(ok, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen < 17 || len(h.bad) > 0 {
		t.Fatalf("%d scripts seen; cross-slot: %v", h.seen, h.bad)
	}
}

// Nothing expires before the session's ExpiresAt, and nothing lives
// (much) longer: session, refresh tokens (first and rotated), index.
func TestReview2_SessionRecordTTLsMatchExpiresAt(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, c := r2Open(t, srv)
	ctx := t.Context()
	now := time.Now()
	life := 2 * time.Hour
	req := store.SendRequest{User: r2User, Now: now, Keep: time.Hour, PhoneLimit: store.Limit{N: 5, Window: time.Hour},
		Challenge: store.Challenge{ID: "c1", CodeMAC: []byte("m"), Phone: r2Ph, Channel: "sms", CreateUser: true,
			SentAt: now, ExpiresAt: now.Add(5 * time.Minute)}}
	if _, err := s.BeginSend(ctx, req); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Consume(ctx, store.ConsumeRequest{User: r2User, ChallengeID: "c1", Now: now, NewUserID: "u1",
		Session: store.Session{ID: "s1", ExpiresAt: now.Add(life)}, RefreshHash: "h1"}); err != nil || r.Status != store.ConsumeOK {
		t.Fatal(r, err)
	}
	later := now.Add(30 * time.Minute)
	if r, err := s.Rotate(ctx, store.RotateRequest{User: r2User, OldHash: "h1", NewHash: "h2", Now: later}); err != nil || r.Status != store.RotateOK {
		t.Fatal(r, err)
	}
	check := func(key string, want time.Duration) {
		t.Helper()
		got, err := c.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got < want-2*time.Second || got > want+2*time.Second {
			t.Errorf("%s: TTL %v, want about %v", key, got, want)
		}
	}
	check(userKey(r2User, "s:s1"), life)
	check(userKey(r2User, "rt:h1"), life)
	// rotated "30 minutes later" by the injected clock: the new token lives
	// to the session's end, measured from that clock
	check(userKey(r2User, "rt:h2"), life-30*time.Minute)
	check(userKey(r2User, "sessions"), life)
	// the token index lives as long as the token that rotation added
	check(userKey(r2User, "rts"), life-30*time.Minute)
	if ttl, _ := c.PTTL(ctx, userKey(r2User, "user")).Result(); ttl != -1 {
		t.Errorf("user TTL %v, want none (users are permanent)", ttl)
	}
	if err := s.Announce(ctx, []string{"s1"}, now); err != nil {
		t.Fatal(err)
	}
	check(revLogKey, store.AnnounceRetention)
}

// Two gateway deployments (different server secrets, different limits)
// sharing one Redis use the same IP limit key "otpgate:{lim:ip:<ip>}": the
// key is not namespaced per deployment, so one deployment's shorter window
// trims (ZREMRANGEBYSCORE) and re-expires (PEXPIRE) the log the other one
// counts on, and its events eat the other's budget. Here deployment A
// allows 2 sends per IP per 10 minutes; after B (100 per minute) sees the
// same IP, A lets a third send through 2 minutes later.
func TestReview2_HitLogNotTrimmedByAnotherLimitOnSameRedis(t *testing.T) {
	srv := testenv.StartRedis(t)
	a, _ := r2Open(t, srv)
	b, _ := r2Open(t, srv)
	ctx := t.Context()
	t0 := time.Now()
	key := "ip:203.0.113.7"
	for i := 0; i < 2; i++ {
		if d, err := a.Hit(ctx, key, 2, 10*time.Minute, t0); err != nil || !d.Allowed {
			t.Fatal(d, err)
		}
	}
	if _, err := b.Hit(ctx, key, 100, time.Minute, t0.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	d, err := a.Hit(ctx, key, 2, 10*time.Minute, t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed {
		t.Fatalf("deployment A's 2-per-10m IP limit was reset by another deployment's 1m window on the same key")
	}
}

type r2Feed struct {
	mu      sync.Mutex
	n       int
	healthy chan bool
}

func (f *r2Feed) Revoked(ids []string) { f.mu.Lock(); f.n += len(ids); f.mu.Unlock() }
func (f *r2Feed) Healthy(ok bool)      { f.healthy <- ok }
func (f *r2Feed) Epoch(time.Time)      {}

// A busy site: every logout and every refresh-reuse adds one entry to the
// revocation log for 25h, and every (re)connecting subscriber reads the
// whole window in one ZRANGEBYSCORE under the 500ms read timeout. With a
// large log the replay times out on every attempt and the feed never gets
// healthy (every gated request then costs a Redis round trip).
func TestReview2_FeedReplaysLargeRevocationLog(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, c := r2Open(t, srv)
	ctx := t.Context()
	now := time.Now()
	const total = 500_000
	for i := 0; i < total; i += 10_000 {
		z := make([]redis.Z, 0, 10_000)
		for j := i; j < i+10_000; j++ {
			z = append(z, redis.Z{Score: float64(now.UnixMilli()), Member: fmt.Sprintf("%08d-aaaa-bbbb-cccc-dddddddddddd", j)})
		}
		if err := c.ZAdd(ctx, revLogKey, z...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	f := &r2Feed{healthy: make(chan bool, 100)}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.Subscribe(sctx, time.Hour, f) }()
	defer func() { cancel(); <-done }()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ok := <-f.healthy:
			if ok {
				return
			}
		case <-deadline:
			t.Fatalf("feed not healthy 5s after start with %d revocations in the log", total)
		}
	}
}

// With Redis down every operation fails with store.ErrUnavailable within
// about a second.
func TestReview2_AllOpsUnavailableFast(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, _ := r2Open(t, srv)
	srv.Stop()
	ctx := t.Context()
	now := time.Now()
	ops := map[string]func() error{
		"hit": func() error { _, err := s.Hit(ctx, "ip:x", 1, time.Minute, now); return err },
		"challenge": func() error {
			_, _, _, err := s.Challenge(ctx, r2User)
			return err
		},
		"session":  func() error { _, _, err := s.Session(ctx, r2User, "s1"); return err },
		"user":     func() error { _, _, err := s.User(ctx, r2User); return err },
		"announce": func() error { return s.Announce(ctx, []string{"x"}, now) },
		"seen":     func() error { _, err := s.FirstSeen(ctx, "k", time.Minute); return err },
		"ping":     func() error { return s.Ping(ctx) },
	}
	for name, op := range ops {
		start := time.Now()
		err := op()
		if !errors.Is(err, store.ErrUnavailable) || time.Since(start) > 1500*time.Millisecond {
			t.Errorf("%s: %v after %v", name, err, time.Since(start))
		}
	}
}
