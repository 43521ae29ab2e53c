package redisstore_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/store"
	"github.com/otpgate/otpgate/module/store/redisstore"
	"github.com/otpgate/otpgate/module/store/storetest"
)

// open returns a store over a new client of srv, closed when the test ends,
// and a counter of the commands it sends.
func open(t testing.TB, srv *testenv.Redis) (*redisstore.Store, redis.UniversalClient, *redisstore.CommandCounter) {
	t.Helper()
	opts, err := redisstore.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewUniversalClient(opts)
	var n redisstore.CommandCounter
	client.AddHook(&n)
	s := redisstore.New(client)
	t.Cleanup(func() { _ = s.Close() })
	return s, client, &n
}

func TestConformance(t *testing.T) {
	srv := testenv.StartRedis(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s, client, _ := open(t, srv)
		if err := client.FlushDB(t.Context()).Err(); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

var base = storetest.Base

const (
	alice store.UserKey = "YWxpY2UtdXNlci1rZXktMDA"
	bob   store.UserKey = "Ym9iLXVzZXIta2V5LTAwMDA"
	phone               = "+12015550123"
)

func sendReq(u store.UserKey, id string, now time.Time) store.SendRequest {
	return store.SendRequest{
		User: u, Now: now, Keep: 10 * time.Minute, Cooldown: 30 * time.Second,
		PhoneLimit: store.Limit{N: 3, Window: 5 * time.Minute},
		Challenge: store.Challenge{
			ID: id, CodeMAC: []byte("mac"), Phone: phone, Channel: "sms", CreateUser: true,
			SentAt: now, ExpiresAt: now.Add(5 * time.Minute),
		},
	}
}

func attemptReq(u store.UserKey, now time.Time) store.AttemptRequest {
	return store.AttemptRequest{User: u, Now: now, MaxAttempts: 5,
		Lockout: store.Lockout{After: 100, Base: 15 * time.Minute, Max: 24 * time.Hour, Memory: time.Hour}}
}

func consumeReq(u store.UserKey, challengeID, sessionID string, now time.Time) store.ConsumeRequest {
	return store.ConsumeRequest{
		User: u, ChallengeID: challengeID, Now: now, NewUserID: "user-" + sessionID,
		Session:     store.Session{ID: sessionID, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)},
		RefreshHash: "rt-" + sessionID,
	}
}

// flow exercises every kind of record for u, so that scripts are cached and
// every key exists. It also creates and deletes a user under another key,
// which leaves nothing behind.
func flow(t *testing.T, s store.Store, u store.UserKey, now time.Time) {
	t.Helper()
	ctx := t.Context()
	steps := []func() error{
		func() error { _, err := s.Hit(ctx, "ip:192.0.2.1", 10, time.Minute, now); return err },
		func() error { _, err := s.BeginSend(ctx, sendReq(u, "x", now)); return err },
		func() error { return s.AbortSend(ctx, u, "x") },
		func() error { _, err := s.BeginSend(ctx, sendReq(u, "c1", now)); return err },
		func() error { _, _, _, err := s.Challenge(ctx, u); return err },
		func() error { _, err := s.Attempt(ctx, attemptReq(u, now)); return err },
		func() error { _, err := s.Consume(ctx, consumeReq(u, "c1", "s1", now)); return err },
		func() error { _, _, err := s.User(ctx, u); return err },
		func() error { _, _, err := s.Session(ctx, u, "s1"); return err },
		func() error {
			_, err := s.Rotate(ctx, store.RotateRequest{User: u, OldHash: "rt-s1", NewHash: "rt-2", Now: now})
			return err
		},
		func() error { _, err := s.Revoke(ctx, u, store.RevokeAll, "", now); return err },
		func() error { return s.Announce(ctx, []string{"s0"}, now) },
		func() error { return s.SetOptOut(ctx, u, false, now) },
		func() error { _, err := s.FirstSeen(ctx, "nonce:1", time.Hour); return err },
		func() error { _, _, _, _, err := s.Access(ctx, u, "s1"); return err },
		func() error { _, err := s.Sessions(ctx, u, now); return err },
		func() error { _, _, err := s.UpdateUser(ctx, u, store.UserUpdate{Now: now}); return err },
		func() error { _, _, err := s.CreateUser(ctx, createReq(u, "never", now)); return err },
		func() error { _, _, err := s.ListUsers(ctx, 0, 10); return err },
		func() error { _, _, err := s.UserByID(ctx, "user-s1"); return err },
		func() error { _, _, err := s.CreateUser(ctx, createReq(u+"-gone", "gone-"+string(u), now)); return err },
		func() error { _, _, _, err := s.DeleteUser(ctx, u+"-gone", now); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("flow step %d: %v", i, err)
		}
	}
}

func createReq(u store.UserKey, id string, now time.Time) store.CreateUserRequest {
	return store.CreateUserRequest{User: u, ID: id, Phone: phone, Now: now}
}

// costs measures the commands of store calls.
func costs(t *testing.T, n *redisstore.CommandCounter) func(name string, want int64, call func() error) {
	return func(name string, want int64, call func() error) {
		t.Helper()
		before := n.Count()
		if err := call(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := n.Count() - before; got != want {
			t.Errorf("%s cost %d commands, want %d", name, got, want)
		}
	}
}

func TestCommands_OnePerCall(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, _, n := open(t, srv)
	ctx := t.Context()
	flow(t, s, alice, base) // loads the scripts: EVALSHA then EVAL the first time
	flow(t, s, bob, base)   // bob's user exists and is indexed: his sign-ins are ordinary

	cost := costs(t, n)
	now := base.Add(time.Hour)
	cost("Hit", 1, func() error { _, err := s.Hit(ctx, "ip:192.0.2.9", 10, time.Minute, now); return err })
	cost("BeginSend", 1, func() error { _, err := s.BeginSend(ctx, sendReq(bob, "x", now)); return err })
	cost("AbortSend", 1, func() error { return s.AbortSend(ctx, bob, "x") })
	cost("BeginSend", 1, func() error { _, err := s.BeginSend(ctx, sendReq(bob, "c1", now)); return err })
	cost("Challenge", 1, func() error { _, _, _, err := s.Challenge(ctx, bob); return err })
	cost("Attempt", 1, func() error { _, err := s.Attempt(ctx, attemptReq(bob, now)); return err })
	cost("Consume (sign-in of an indexed user)", 1, func() error {
		res, err := s.Consume(ctx, consumeReq(bob, "c1", "s1", now))
		if err == nil && (res.Status != store.ConsumeOK || res.Created) {
			t.Errorf("Consume status %d created %v", res.Status, res.Created)
		}
		return err
	})
	cost("Access", 1, func() error { _, _, _, _, err := s.Access(ctx, bob, "s1"); return err })
	cost("Sessions", 1, func() error { _, err := s.Sessions(ctx, bob, now); return err })
	cost("UpdateUser", 1, func() error {
		_, _, err := s.UpdateUser(ctx, bob, store.UserUpdate{Now: now, Roles: &[]string{"staff"}})
		return err
	})
	cost("CreateUser (existing indexed user)", 1, func() error { _, _, err := s.CreateUser(ctx, createReq(bob, "other", now)); return err })
	cost("User", 1, func() error { _, _, err := s.User(ctx, bob); return err })
	cost("Session", 1, func() error { _, _, err := s.Session(ctx, bob, "s1"); return err })
	cost("Rotate", 1, func() error {
		_, err := s.Rotate(ctx, store.RotateRequest{User: bob, OldHash: "rt-s1", NewHash: "rt-2", Now: now})
		return err
	})
	cost("Revoke (nothing to revoke)", 1, func() error { _, err := s.Revoke(ctx, bob, store.RevokeOne, "none", now); return err })
	cost("Revoke (revoke and announce)", 2, func() error { _, err := s.Revoke(ctx, bob, store.RevokeAll, "", now); return err })
	cost("Announce", 1, func() error { return s.Announce(ctx, []string{"s9"}, now) })
	cost("SetOptOut", 1, func() error { return s.SetOptOut(ctx, bob, true, now) })
	cost("FirstSeen", 1, func() error { _, err := s.FirstSeen(ctx, "nonce:9", time.Hour); return err })
}

func TestTwoStores_ShareLimitsAndState(t *testing.T) {
	srv := testenv.StartRedis(t)
	s1, _, _ := open(t, srv)
	s2, _, _ := open(t, srv)
	ctx := t.Context()

	for i := range 2 {
		if d, err := s1.Hit(ctx, "ip:192.0.2.1", 2, time.Minute, base.Add(time.Duration(i)*time.Second)); err != nil || !d.Allowed {
			t.Fatalf("s1 hit %d: %+v %v", i, d, err)
		}
	}
	if d, err := s2.Hit(ctx, "ip:192.0.2.1", 2, time.Minute, base.Add(2*time.Second)); err != nil || d.Allowed {
		t.Fatalf("s2 hit over the shared limit: %+v %v", d, err)
	}

	res, err := s1.BeginSend(ctx, sendReq(alice, "c1", base))
	if err != nil || res.Status != store.SendOK {
		t.Fatalf("s1 BeginSend: %v %v", res.Status, err)
	}
	res, err = s2.BeginSend(ctx, sendReq(alice, "c2", base.Add(time.Second)))
	if err != nil || res.Status != store.SendCooldown {
		t.Fatalf("s2 BeginSend within s1's cooldown: %v %v", res.Status, err)
	}
	for i, d := range []time.Duration{30 * time.Second, time.Minute} {
		res, err = s2.BeginSend(ctx, sendReq(alice, "d"+string(rune('0'+i)), base.Add(d)))
		if err != nil || res.Status != store.SendOK {
			t.Fatalf("s2 BeginSend %d: %v %v", i, res.Status, err)
		}
	}
	res, err = s1.BeginSend(ctx, sendReq(alice, "c3", base.Add(2*time.Minute)))
	if err != nil || res.Status != store.SendPhoneLimited {
		t.Fatalf("s1 4th send = %v %v, want phone_limited", res.Status, err)
	}
}

var keyShape = regexp.MustCompile(`^otpgate:\{[^{}]+\}(:[^{}]*)?$`)

func TestKeys_TaggedBoundedAndPhoneFree(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, client, _ := open(t, srv)
	ctx := t.Context()
	flow(t, s, alice, base)
	if err := s.SetOptOut(ctx, bob, true, base); err != nil {
		t.Fatal(err)
	}
	keys, err := client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 10 {
		t.Fatalf("only %d keys after a full flow: %q", len(keys), keys)
	}
	digits := strings.TrimPrefix(phone, "+")
	for _, k := range keys {
		if !keyShape.MatchString(k) {
			t.Errorf("key %q: want otpgate:{tag}[:part]", k)
		}
		if strings.Contains(k, digits[len(digits)-7:]) {
			t.Errorf("key %q contains the phone number", k)
		}
		if strings.HasPrefix(k, "otpgate:{"+string(alice)+"}") != strings.Contains(k, string(alice)) {
			t.Errorf("key %q names the person outside its hash tag", k)
		}
		ttl, err := client.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		permanent := strings.HasSuffix(k, ":user") || strings.HasSuffix(k, ":optout") || k == "otpgate:{users}:index" || k == "otpgate:{rev}:epoch"
		if permanent && ttl != -1 {
			t.Errorf("key %q: TTL %v, want none (permanent)", k, ttl)
		}
		if !permanent && ttl <= 0 {
			t.Errorf("key %q has no TTL", k)
		}
	}
}

// everyCall runs each Store method once and returns their errors by name.
func everyCall(t *testing.T, s store.Store, now time.Time) map[string]error {
	ctx := t.Context()
	errs := map[string]error{}
	_, errs["Hit"] = s.Hit(ctx, "ip:192.0.2.1", 10, time.Minute, now)
	_, errs["BeginSend"] = s.BeginSend(ctx, sendReq(bob, "c1", now))
	errs["AbortSend"] = s.AbortSend(ctx, bob, "c1")
	_, _, _, errs["Challenge"] = s.Challenge(ctx, bob)
	_, errs["Attempt"] = s.Attempt(ctx, attemptReq(bob, now))
	_, errs["Consume"] = s.Consume(ctx, consumeReq(bob, "c1", "s1", now))
	_, _, errs["User"] = s.User(ctx, bob)
	_, _, errs["Session"] = s.Session(ctx, bob, "s1")
	_, errs["Rotate"] = s.Rotate(ctx, store.RotateRequest{User: bob, OldHash: "a", NewHash: "b", Now: now})
	_, errs["Revoke"] = s.Revoke(ctx, bob, store.RevokeAll, "", now)
	errs["Announce"] = s.Announce(ctx, []string{"s1"}, now)
	errs["SetOptOut"] = s.SetOptOut(ctx, bob, true, now)
	_, errs["FirstSeen"] = s.FirstSeen(ctx, "nonce:1", time.Hour)
	_, _, _, _, errs["Access"] = s.Access(ctx, bob, "s1")
	_, _, errs["CreateUser"] = s.CreateUser(ctx, createReq(alice, "u-alice", now))
	_, _, errs["UpdateUser"] = s.UpdateUser(ctx, alice, store.UserUpdate{Now: now, Confirmed: true})
	_, _, errs["ListUsers"] = s.ListUsers(ctx, 0, 10)
	_, _, errs["UserByID"] = s.UserByID(ctx, "u-alice")
	_, errs["Sessions"] = s.Sessions(ctx, alice, now)
	_, _, _, errs["DeleteUser"] = s.DeleteUser(ctx, alice, now)
	errs["Ping"] = s.Ping(ctx)
	return errs
}

func TestRedisDown_UnavailableThenRecovers(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, _, _ := open(t, srv)
	feed := storetest.Subscribe(t, s, time.Minute)
	feed.WaitHealthy(t, true)

	srv.Stop()
	feed.WaitHealthy(t, false)
	for name, err := range everyCall(t, s, base) {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with Redis down: err = %v, want store.ErrUnavailable", name, err)
		}
	}

	srv.Restart()
	other, _, _ := open(t, srv)
	if err := other.Announce(t.Context(), []string{"while-away"}, time.Now()); err != nil {
		t.Fatalf("Announce through a second client: %v", err)
	}
	// After as many failed dials as its pool size, go-redis stops dialing
	// and probes once a second: the client may need that long to notice.
	for deadline := time.Now().Add(3 * time.Second); s.Ping(t.Context()) != nil; {
		if time.Now().After(deadline) {
			t.Fatal("no answer 3s after the restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// time.Now, not base: an announcement at base would trim the log
	// up to an hour before 2031, the one above included.
	for name, err := range everyCall(t, s, time.Now()) {
		if err != nil {
			t.Errorf("%s after restart: %v", name, err)
		}
	}
	feed.WaitHealthy(t, true)
	feed.WaitRevoked(t, "while-away")
}

func TestLogicalResults_NotErrors(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, _, _ := open(t, srv)
	ctx := t.Context()
	if err := s.SetOptOut(ctx, alice, true, base); err != nil {
		t.Fatal(err)
	}
	res, err := s.BeginSend(ctx, sendReq(alice, "c1", base))
	if err != nil || res.Status != store.SendOptedOut {
		t.Fatalf("BeginSend = %v, %v; want opted_out and no error", res.Status, err)
	}
	_, err = s.BeginSend(ctx, store.SendRequest{User: "bad{key}", Now: base, Keep: time.Minute,
		PhoneLimit: store.Limit{N: 1, Window: time.Minute}, Challenge: store.Challenge{ID: "c"}})
	if !errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("user key with braces: err = %v, want ErrInvalid", err)
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		url        string
		addrs      []string
		db         int
		user, pass string
		cluster    bool
		master     string
		sentinelPw string
		tls        bool
		serverName string
	}{
		{url: "redis://127.0.0.1:6380/2", addrs: []string{"127.0.0.1:6380"}, db: 2},
		{url: "redis://localhost", addrs: []string{"localhost:6379"}},
		{url: "redis://:s3cret@h:6379/0", addrs: []string{"h:6379"}, pass: "s3cret"},
		{url: "redis://s3cret@h", addrs: []string{"h:6379"}, pass: "s3cret"},
		{url: "redis://app:p%40ss@h/1", addrs: []string{"h:6379"}, db: 1, user: "app", pass: "p@ss"},
		{url: "redis://[::1]:6380", addrs: []string{"[::1]:6380"}},
		{url: "rediss://cache.example.com:6380", addrs: []string{"cache.example.com:6380"}, tls: true, serverName: "cache.example.com"},
		{url: "redis://h1:7000,h2:7001", addrs: []string{"h1:7000", "h2:7001"}, cluster: true},
		{url: "redis://h1:7000?cluster=true", addrs: []string{"h1:7000"}, cluster: true},
		{url: "rediss://:pw@h1:7000,h2:7001?cluster=true", addrs: []string{"h1:7000", "h2:7001"}, pass: "pw", cluster: true, tls: true},
		{url: "redis-sentinel://pw@s1:26379,s2:26380/3?master=mymaster", addrs: []string{"s1:26379", "s2:26380"}, db: 3, pass: "pw", master: "mymaster"},
		{url: "redis-sentinel://s1?master=m&sentinel_password=spw", addrs: []string{"s1:26379"}, master: "m", sentinelPw: "spw"},
		{url: "rediss-sentinel://s1:26379?master=m", addrs: []string{"s1:26379"}, master: "m", tls: true},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			o, err := redisstore.ParseURL(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(o.Addrs, " ") != strings.Join(tc.addrs, " ") || o.DB != tc.db ||
				o.Username != tc.user || o.Password != tc.pass || o.IsClusterMode != tc.cluster ||
				o.MasterName != tc.master || o.SentinelPassword != tc.sentinelPw {
				t.Fatalf("got addrs=%q db=%d user=%q pass=%q cluster=%v master=%q sentinel_password=%q",
					o.Addrs, o.DB, o.Username, o.Password, o.IsClusterMode, o.MasterName, o.SentinelPassword)
			}
			if (o.TLSConfig != nil) != tc.tls {
				t.Fatalf("TLS = %v, want %v", o.TLSConfig != nil, tc.tls)
			}
			if tc.tls && (o.TLSConfig.MinVersion != tls.VersionTLS12 || o.TLSConfig.ServerName != tc.serverName) {
				t.Fatalf("TLS config = min %x server %q", o.TLSConfig.MinVersion, o.TLSConfig.ServerName)
			}
			// Fail within about a second when Redis is down, never retry a script.
			if o.DialTimeout != 500*time.Millisecond || o.ReadTimeout != 500*time.Millisecond ||
				o.WriteTimeout != 500*time.Millisecond || o.PoolTimeout != 600*time.Millisecond || o.MaxRetries != -1 || o.DialerRetries != 1 {
				t.Fatalf("timeouts dial=%v read=%v write=%v pool=%v retries=%d dials=%d",
					o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.MaxRetries, o.DialerRetries)
			}
			client := redis.NewUniversalClient(o)
			defer client.Close()
			_, isCluster := client.(*redis.ClusterClient)
			if isCluster != tc.cluster {
				t.Fatalf("client %T, cluster %v", client, tc.cluster)
			}
		})
	}
}

func TestParseURL_Refused(t *testing.T) {
	for _, u := range []string{
		"",
		"localhost:6379",
		"http://h:6379",
		"redis://",
		"redis://h:port",
		"redis://h:99999",
		"redis://h/abc",
		"redis://h/0/1",
		"redis://h?foo=bar",
		"redis://h?master=m",
		"redis://h?cluster=maybe",
		"redis://h1,h2?cluster=false",
		"redis://h1,h2/1",
		"redis://h,",
		"redis-sentinel://s1:26379",
		"redis-sentinel://s1?master=",
		"redis-sentinel://s1?master=m&cluster=true",
		"redis://:hunter2@h:bad",
	} {
		_, err := redisstore.ParseURL(u)
		if err == nil {
			t.Errorf("ParseURL(%q): no error", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseURL error shows the password: %v", err)
		}
	}
}

// A connection that stays open but goes quiet (a paused or unreachable
// server) must be reported as fast as a dropped one: the gateway fails
// closed meanwhile.
func TestSubscribe_SilentServer_UnhealthyThenRecovers(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, client, _ := open(t, srv)
	feed := storetest.Subscribe(t, s, time.Minute)
	feed.WaitHealthy(t, true)

	if err := client.Do(t.Context(), "CLIENT", "PAUSE", "2000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	feed.WaitHealthy(t, false)
	feed.WaitHealthy(t, true) // the pause ends by itself
}

// Every script's KEYS, and every key prefix it completes inside Lua, share
// one hash tag (one cluster slot).
func TestScripts_KeysAndKeyPrefixesInOneSlot(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, c, _ := open(t, srv)
	var h slotChecker
	c.AddHook(&h)
	ctx := t.Context()
	now := time.UnixMilli(1_800_000_000_000)

	if _, err := s.Hit(ctx, "ip:2001:db8::/64", 3, time.Minute, now); err != nil {
		t.Fatal(err)
	}
	req := store.SendRequest{User: alice, Now: now, Keep: time.Hour, Cooldown: time.Second,
		PhoneLimit: store.Limit{N: 5, Window: time.Hour},
		Challenge: store.Challenge{ID: "c1", CodeMAC: []byte("m"), Phone: phone, Channel: "sms", CreateUser: true,
			SentAt: now, ExpiresAt: now.Add(5 * time.Minute)}}
	if _, err := s.BeginSend(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Challenge(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Attempt(ctx, store.AttemptRequest{User: alice, Now: now, MaxAttempts: 5,
		Lockout: store.Lockout{After: 100, Base: time.Minute, Max: time.Hour, Memory: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Consume(ctx, store.ConsumeRequest{User: alice, ChallengeID: "c1", Now: now, NewUserID: "u1",
		Session: store.Session{ID: "s1", ExpiresAt: now.Add(time.Hour)}, RefreshHash: "h1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(ctx, store.RotateRequest{User: alice, OldHash: "h1", NewHash: "h2", Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, alice, store.RevokeAll, "", now); err != nil {
		t.Fatal(err)
	}
	_ = s.AbortSend(ctx, alice, "c1")
	_ = s.SetOptOut(ctx, alice, true, now)
	_, _ = s.FirstSeen(ctx, "plivo-nonce:x", time.Minute)
	_, _, _, _, _ = s.Access(ctx, alice, "s1")
	_, _ = s.Sessions(ctx, alice, now)
	_, _, _ = s.UpdateUser(ctx, alice, store.UserUpdate{Now: now, Confirmed: true})
	_, _, _ = s.CreateUser(ctx, store.CreateUserRequest{User: bob, ID: "u2", Phone: phone, Now: now})
	_, _, _ = s.ListUsers(ctx, 0, 10)
	_, _, _ = s.UserByID(ctx, "u1")
	if _, _, ok, err := s.DeleteUser(ctx, alice, now); err != nil || !ok {
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
func TestSessionRecords_TTLsMatchExpiresAt(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, c, _ := open(t, srv)
	ctx := t.Context()
	now := time.Now()
	life := 2 * time.Hour
	req := store.SendRequest{User: alice, Now: now, Keep: time.Hour, PhoneLimit: store.Limit{N: 5, Window: time.Hour},
		Challenge: store.Challenge{ID: "c1", CodeMAC: []byte("m"), Phone: phone, Channel: "sms", CreateUser: true,
			SentAt: now, ExpiresAt: now.Add(5 * time.Minute)}}
	if _, err := s.BeginSend(ctx, req); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Consume(ctx, store.ConsumeRequest{User: alice, ChallengeID: "c1", Now: now, NewUserID: "u1",
		Session: store.Session{ID: "s1", ExpiresAt: now.Add(life)}, RefreshHash: "h1"}); err != nil || r.Status != store.ConsumeOK {
		t.Fatal(r, err)
	}
	later := now.Add(30 * time.Minute)
	if r, err := s.Rotate(ctx, store.RotateRequest{User: alice, OldHash: "h1", NewHash: "h2", Now: later}); err != nil || r.Status != store.RotateOK {
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
	check(personKey(alice, "s:s1"), life)
	check(personKey(alice, "rt:h1"), life)
	// rotated "30 minutes later" by the injected clock: the new token lives
	// to the session's end, measured from that clock
	check(personKey(alice, "rt:h2"), life-30*time.Minute)
	check(personKey(alice, "sessions"), life)
	// the token index lives as long as the token that rotation added
	check(personKey(alice, "rts"), life-30*time.Minute)
	if ttl, _ := c.PTTL(ctx, personKey(alice, "user")).Result(); ttl != -1 {
		t.Errorf("user TTL %v, want none (users are permanent)", ttl)
	}
	if err := s.Announce(ctx, []string{"s1"}, now); err != nil {
		t.Fatal(err)
	}
	check(revLogKey, store.AnnounceRetention)
}

// A limit's log belongs to the limit, not only to its key: two deployments
// sharing one Redis (different limits on the same "ip:<ip>" key) neither
// trim nor re-expire each other's logs. Here deployment A allows 2 sends
// per IP per 10 minutes; B (100 per minute) seeing the same IP does not
// give A a third send 2 minutes later.
func TestHit_TwoLimitsOnOneKey_DoNotTrimEachOther(t *testing.T) {
	srv := testenv.StartRedis(t)
	a, _, _ := open(t, srv)
	b, _, _ := open(t, srv)
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

// A subscriber gets healthy within seconds even when the revocation log
// holds a busy site's 25 hours of revocations: the replay is not one read
// that the 500ms read timeout cuts off on every attempt.
func TestSubscribe_LargeRevocationLog_ReplayedHealthy(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, _, _ := open(t, srv)
	ctx := t.Context()
	now := time.Now()
	const total = 500_000
	// the log is written by a client with generous timeouts: filling it
	// is not what is tested, and a loaded machine may take seconds
	opts, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	opts.ReadTimeout, opts.WriteTimeout = time.Minute, time.Minute
	c := redis.NewClient(opts)
	defer c.Close()
	for i := 0; i < total; i += 10_000 {
		z := make([]redis.Z, 0, 10_000)
		for j := i; j < i+10_000; j++ {
			z = append(z, redis.Z{Score: float64(now.UnixMilli()), Member: fmt.Sprintf("%08d-aaaa-bbbb-cccc-dddddddddddd", j)})
		}
		if err := c.ZAdd(ctx, revLogKey, z...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	f := &healthFeed{healthy: make(chan bool, 100)}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.Subscribe(sctx, time.Hour, f) }()
	defer func() { cancel(); <-done }()
	// a bound for a hung feed, not a speed requirement: the replay takes
	// about a second on an idle machine
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ok := <-f.healthy:
			if ok {
				return
			}
		case <-deadline:
			t.Fatalf("feed not healthy 30s after start with %d revocations in the log", total)
		}
	}
}

// With Redis down every operation fails with store.ErrUnavailable within
// about a second.
func TestRedisDown_UnavailableWithinASecond(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, _, _ := open(t, srv)
	srv.Stop()
	ctx := t.Context()
	now := time.Now()
	ops := map[string]func() error{
		"hit": func() error { _, err := s.Hit(ctx, "ip:x", 1, time.Minute, now); return err },
		"challenge": func() error {
			_, _, _, err := s.Challenge(ctx, alice)
			return err
		},
		"session":  func() error { _, _, err := s.Session(ctx, alice, "s1"); return err },
		"user":     func() error { _, _, err := s.User(ctx, alice); return err },
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
