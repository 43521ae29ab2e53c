package redisstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/store"
	"github.com/otpgate/otpgate/module/store/storetest"
)

// refuseWrites puts Redis over its memory limit with noeviction: reads
// still answer, every command that could grow memory is refused (unless a
// script already wrote, which Redis then lets go on).
func refuseWrites(t *testing.T, c redis.UniversalClient) (restore func()) {
	t.Helper()
	ctx := t.Context()
	if err := c.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := c.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// A Redis that refuses writes refuses the attempt as a whole: no challenge
// comes back to compare a code with, and nothing is half recorded. (A
// read of the challenge would still answer, and Consume, whose first write
// is a DEL, would still succeed: that is why the attempt is counted first.)
func TestAttempt_RedisRefusingWrites_UnavailableNothingRecorded(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, c, _ := open(t, srv)
	ctx := t.Context()
	if res, err := s.BeginSend(ctx, sendReq(alice, "c1", base)); err != nil || res.Status != store.SendOK {
		t.Fatalf("BeginSend: %v %v", res.Status, err)
	}
	if _, err := s.Attempt(ctx, attemptReq(bob, base)); err != nil { // loads the script
		t.Fatal(err)
	}

	restore := refuseWrites(t, c)
	if _, _, _, err := s.Challenge(ctx, alice); err != nil {
		t.Fatalf("a read under maxmemory: %v", err)
	}
	res, err := s.Attempt(ctx, attemptReq(alice, base.Add(time.Second)))
	if !errors.Is(err, store.ErrUnavailable) || res.Challenge.ID != "" {
		t.Fatalf("Attempt under maxmemory = %+v, %v; want ErrUnavailable and no challenge", res, err)
	}
	restore()

	ch, ok, failures, err := s.Challenge(ctx, alice)
	if err != nil || !ok || ch.Attempts != 0 || failures != 0 {
		t.Fatalf("after the refused attempt: found=%v attempts=%d failures=%d err=%v, want untouched", ok, ch.Attempts, failures, err)
	}
	if res, err := s.Attempt(ctx, attemptReq(alice, base.Add(2*time.Second))); err != nil || res.Status != store.AttemptOK || res.Challenge.Attempts != 1 {
		t.Fatalf("Attempt once writes are accepted again = %+v, %v", res, err)
	}
}

// A Redis that comes back empty (restarted without persistence) begins a
// new epoch, which the feed reports on reconnecting, before it is healthy.
func TestSubscribe_RedisLostItsData_NewEpochReported(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, _, _ := open(t, srv)
	feed := storetest.Subscribe(t, s, time.Minute)
	feed.WaitHealthy(t, true)
	first := feed.Epochs()
	if len(first) != 1 {
		t.Fatalf("epochs at the first connection = %v, want one", first)
	}

	srv.Stop()
	feed.WaitHealthy(t, false)
	time.Sleep(5 * time.Millisecond) // epochs have millisecond precision
	srv.Restart()
	feed.WaitHealthy(t, true)
	epochs := feed.Epochs()
	if len(epochs) != 2 || !epochs[1].After(epochs[0]) {
		t.Fatalf("epochs after Redis came back empty = %v, want a second, later one", epochs)
	}
}

// A Redis that kept its data keeps its epoch across reconnections.
func TestSubscribe_Reconnect_SameEpoch(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, c, _ := open(t, srv)
	feed := storetest.Subscribe(t, s, time.Minute)
	feed.WaitHealthy(t, true)
	if err := c.Do(t.Context(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	feed.WaitHealthy(t, false)
	feed.WaitHealthy(t, true)
	epochs := feed.Epochs()
	if len(epochs) != 2 || !epochs[1].Equal(epochs[0]) {
		t.Fatalf("epochs across a reconnection = %v, want the same twice", epochs)
	}
}
