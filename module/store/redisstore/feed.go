package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/module/store"
)

// The gateway fails closed while the feed is unhealthy, so a silent
// connection must be noticed quickly: the subscriber pings when nothing
// arrives for pingEvery and gives the connection up when nothing (not even
// the pong) arrives for silenceLimit.
const (
	pingEvery    = 250 * time.Millisecond
	silenceLimit = 750 * time.Millisecond
	minBackoff   = 50 * time.Millisecond
	maxBackoff   = time.Second
)

var errSilent = errors.New("pub/sub connection silent")

// Announce implements store.Store.
func (s *Store) Announce(ctx context.Context, sessionIDs []string, now time.Time) error {
	if len(sessionIDs) == 0 {
		return nil
	}
	args := make([]any, 0, 3+len(sessionIDs))
	args = append(args, now.UnixMilli(), store.AnnounceRetention.Milliseconds(), revChannel)
	for _, id := range sessionIDs {
		args = append(args, id)
	}
	if err := announceScript.Run(ctx, s.client, []string{revLogKey}, args...).Err(); err != nil {
		return unavailable("announce", err)
	}
	return nil
}

// Subscribe implements store.Store.
//
// go-redis's PubSub.Channel reconnects silently, which would hide gaps in the
// feed, so each connection is a fresh PubSub read with ReceiveTimeout and
// kept alive with PING; any error ends it, reports Healthy(false) and a new
// one is made after a backoff (50ms doubling to 1s).
//
// The replay window is measured from the wall clock (time.Now() - retain),
// not an injected `now`: a reconnection is not part of any request. Healthy
// reports only changes: Healthy(false) once when a connection is lost or the
// first one cannot be made, Healthy(true) after each successful replay.
func (s *Store) Subscribe(ctx context.Context, retain time.Duration, h store.FeedHandler) {
	reported, healthy := false, false
	report := func(ok bool) {
		if reported && healthy == ok {
			return
		}
		reported, healthy = true, ok
		h.Healthy(ok)
	}
	backoff := minBackoff
	for ctx.Err() == nil {
		s.follow(ctx, retain, h, func() {
			report(true)
			backoff = minBackoff
		})
		if ctx.Err() != nil {
			return
		}
		report(false)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// follow runs one connection of the feed until it fails or ctx is done;
// connected is called once the subscription is confirmed, the epoch
// reported and the replay delivered. Subscribing before reading the log means an announcement made
// in between arrives at least once (maybe twice, which is harmless).
func (s *Store) follow(ctx context.Context, retain time.Duration, h store.FeedHandler, connected func()) error {
	ps := s.client.Subscribe(ctx)
	defer ps.Close()

	if err := ps.Subscribe(ctx, revChannel); err != nil {
		return err
	}
	msg, err := ps.ReceiveTimeout(ctx, silenceLimit)
	if err != nil {
		return err
	}
	if sub, ok := msg.(*redis.Subscription); !ok || sub.Kind != "subscribe" {
		return fmt.Errorf("pub/sub: unexpected %T while subscribing", msg)
	}

	// The epoch is read (or, in a Redis that lost it, written) on every
	// connection: a Redis that comes back empty is noticed before anything
	// is trusted again.
	began, err := epochScript.Run(ctx, s.client, []string{epochKey}, time.Now().UnixMilli()).Int64()
	if err != nil {
		return err
	}
	h.Epoch(time.UnixMilli(began))

	since := time.Now().Add(-retain).UnixMilli()
	ids, err := s.client.ZRangeByScore(ctx, revLogKey, &redis.ZRangeBy{
		Min: strconv.FormatInt(since, 10),
		Max: "+inf",
	}).Result()
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		h.Revoked(ids)
	}
	connected()

	heard := time.Now()
	for {
		msg, err := ps.ReceiveTimeout(ctx, pingEvery)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if !isTimeout(err) {
				return err
			}
			if time.Since(heard) >= silenceLimit {
				return errSilent
			}
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			continue
		}
		heard = time.Now()
		switch m := msg.(type) {
		case *redis.Message:
			var ids []string
			if err := json.Unmarshal([]byte(m.Payload), &ids); err != nil {
				continue // not an announcement: Announce always sends a JSON list
			}
			if len(ids) > 0 {
				h.Revoked(ids)
			}
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				return fmt.Errorf("pub/sub: %s", m.Kind)
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}
