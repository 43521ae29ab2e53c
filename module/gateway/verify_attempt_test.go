package gateway

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/store"
	"github.com/otpgate/otpgate/module/store/redisstore"
)

// wrongCode is a code that is not code.
func wrongCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// A Redis at maxmemory with noeviction refuses writes but still answers
// reads. A wrong code's failure cannot be counted there, so no code is
// judged: the right code answers 503 exactly as a wrong one does (it used
// to answer 200, which made verify an oracle with unlimited guesses), and
// works once Redis accepts writes again.
func TestVerify_RedisRefusingWrites_EveryCodeUnavailable(t *testing.T) {
	srv := testenv.StartRedis(t)
	e := newEnv(t, openRedis(t, srv.URL()))
	e.send(alice)
	code := e.sender.lastCode(t, alice)
	wantError(t, e.verify(alice, wrongCode(code)), 403, "otp_expired") // scripts loaded, one failure counted

	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	ctx := t.Context()
	if err := admin.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		wantError(t, e.verify(alice, wrongCode(code)), 503, "store_unavailable")
		wantError(t, e.verify(alice, code), 503, "store_unavailable")
	}
	if err := admin.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if r := e.verify(alice, code); r.status != 200 {
		t.Fatalf("right code once Redis accepts writes: %d %s", r.status, r.raw)
	}
}

// openCountedRedis opens a Redis store whose commands are counted.
func openCountedRedis(t *testing.T, url string) (store.Store, *redisstore.CommandCounter) {
	t.Helper()
	opts, err := redisstore.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewUniversalClient(opts)
	n := &redisstore.CommandCounter{}
	client.AddHook(n)
	st := redisstore.New(client)
	t.Cleanup(func() { _ = st.Close() })
	return st, n
}

// A wrong code costs one store round trip; a right one two.
func TestVerify_WrongCodeOneRoundTrip(t *testing.T) {
	srv := testenv.StartRedis(t)
	st, n := openCountedRedis(t, srv.URL())
	e := newEnv(t, st)
	e.login("+14155550100") // loads the scripts
	e.send(alice)
	before := n.RoundTrips()
	wantError(t, e.verify(alice, wrongCode(e.sender.lastCode(t, alice))), 403, "otp_expired")
	if got := n.RoundTrips() - before; got != 1 {
		t.Fatalf("a wrong code cost %d round trips, want 1", got)
	}
}

// Someone who knows a number can lock it out with wrong codes, but only
// for a while: the first lock lasts 15 minutes, each further one twice the
// one before. While it lasts no code goes out (the send answers like one
// that did, and costs nothing) and even the right code is refused.
func TestVerify_Lockout_GrowsFrom15Minutes_NoCodeSentWhileLocked(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(*testing.T) store.Store) {
		e := newEnv(t, open(t), func(c *Config) {
			c.FailureLockout = 4
			c.MaxAttempts = 2
			c.PhoneLimit = store.Limit{N: 100, Window: time.Minute}
		})
		lockOut := func() {
			t.Helper()
			for i := 0; i < 2; i++ {
				e.clock.Advance(31 * time.Second) // past the cooldown
				if r := e.send(alice); r.status != 200 {
					t.Fatalf("send: %d %s", r.status, r.raw)
				}
				c := e.sender.lastCode(t, alice)
				wantError(t, e.verify(alice, wrongCode(c)), 403, "otp_expired")
				wantError(t, e.verify(alice, wrongCode(c)), 403, "otp_expired")
			}
		}
		wantLocked := func(what string) {
			t.Helper()
			e.clock.Advance(31 * time.Second)
			sent := e.sender.count()
			r := e.send(alice)
			if r.status != 200 || r.body["message_id"] == nil || r.body["masked_phone"] != "+1***-***-0123" {
				t.Fatalf("%s: send to a locked phone: %d %s, want the answer of a real send", what, r.status, r.raw)
			}
			if e.sender.count() != sent {
				t.Fatalf("%s: a code was sent to a locked phone", what)
			}
			wantError(t, e.verify(alice, e.sender.lastCode(t, alice)), 403, "otp_expired")
		}
		wantOpen := func(what string) string {
			t.Helper()
			e.clock.Advance(31 * time.Second)
			sent := e.sender.count()
			if r := e.send(alice); r.status != 200 || e.sender.count() != sent+1 {
				t.Fatalf("%s: send %d %s, sent %d", what, r.status, r.raw, e.sender.count()-sent)
			}
			return e.sender.lastCode(t, alice)
		}

		lockOut() // four failures: locked for 15 minutes
		lockedAt := e.clock.Now()
		wantLocked("just locked")
		e.clock.Advance(15*time.Minute - e.clock.Now().Sub(lockedAt))
		wantOpen("15 minutes later")

		lockOut() // locked again: 30 minutes this time
		lockedAt = e.clock.Now()
		wantLocked("locked again")
		e.clock.Advance(15*time.Minute - e.clock.Now().Sub(lockedAt))
		wantLocked("15 minutes into the second lock")
		e.clock.Advance(30*time.Minute - e.clock.Now().Sub(lockedAt))
		code := wantOpen("30 minutes later")
		if r := e.verify(alice, code); r.status != 200 {
			t.Fatalf("right code after the lock: %d %s", r.status, r.raw)
		}
	})
}
