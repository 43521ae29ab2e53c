package redisstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/store"
)

// The benchmarks run against a private local redis-server; commands/op is
// the round-trip budget the spec holds sends and verifies to.

func benchUser(i int) store.UserKey { return store.UserKey("bench-user-" + strconv.Itoa(i)) }

func BenchmarkBeginSend(b *testing.B) {
	srv := testenv.StartRedis(b)
	s, _, n := open(b, srv)
	ctx := context.Background()
	if _, err := s.BeginSend(ctx, sendReq("warm-up", "c", base)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	before := n.Count()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := s.BeginSend(ctx, sendReq(benchUser(i), "c", base))
		if err != nil || res.Status != store.SendOK {
			b.Fatalf("BeginSend: %v %v", res.Status, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n.Count()-before)/float64(b.N), "commands/op")
}

// BenchmarkChallengeConsume is the store's part of a verify of a user who
// signed in before (the steady state; a sign-up also writes the user
// index): read the challenge, then consume it into a session.
func BenchmarkChallengeConsume(b *testing.B) {
	srv := testenv.StartRedis(b)
	s, _, n := open(b, srv)
	ctx := context.Background()
	signedUp, now := base, base.Add(time.Minute) // past the cooldown of the sign-up's send
	warm := func(u store.UserKey) {
		if _, err := s.BeginSend(ctx, sendReq(u, "first", signedUp)); err != nil {
			b.Fatal(err)
		}
		if res, err := s.Consume(ctx, consumeReq(u, "first", "first", signedUp)); err != nil || res.Status != store.ConsumeOK {
			b.Fatalf("sign-up: %v %v", res.Status, err)
		}
		if _, err := s.BeginSend(ctx, sendReq(u, "c", now)); err != nil {
			b.Fatal(err)
		}
	}
	warm("warm-up")
	if _, _, _, err := s.Challenge(ctx, "warm-up"); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Consume(ctx, consumeReq("warm-up", "c", "s", now)); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		warm(benchUser(i))
	}
	b.ReportAllocs()
	before := n.Count()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		u := benchUser(i)
		c, ok, _, err := s.Challenge(ctx, u)
		if err != nil || !ok {
			b.Fatalf("Challenge: %v %v", ok, err)
		}
		res, err := s.Consume(ctx, consumeReq(u, c.ID, "s"+strconv.Itoa(i), now.Add(time.Second)))
		if err != nil || res.Status != store.ConsumeOK {
			b.Fatalf("Consume: %v %v", res.Status, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n.Count()-before)/float64(b.N), "commands/op")
}
