package memstore

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// Announce implements store.Store.
func (s *Store) Announce(ctx context.Context, sessionIDs []string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.announce(sessionIDs, ms(now))
	return nil
}

// announce logs ids for replay and queues them to every subscriber; s.mu is held.
func (s *Store) announce(ids []string, now time.Time) {
	if len(ids) == 0 {
		return
	}
	for _, id := range ids {
		s.feed[id] = now
	}
	cut := now.Add(-store.AnnounceRetention)
	for id, at := range s.feed {
		if !at.After(cut) {
			delete(s.feed, id)
		}
	}
	for sub := range s.subs {
		sub.push(slices.Clone(ids))
	}
}

// subscriber is one Subscribe call; Announce queues to it without blocking,
// and the Subscribe goroutine delivers in order.
type subscriber struct {
	mu      sync.Mutex
	pending [][]string
	wake    chan struct{}
}

func (sub *subscriber) push(ids []string) {
	sub.mu.Lock()
	sub.pending = append(sub.pending, ids)
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

func (sub *subscriber) take() [][]string {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	p := sub.pending
	sub.pending = nil
	return p
}

// Subscribe implements store.Store. The replay window is measured from the
// wall clock (time.Now), like the Redis store's, since the feed outlives any
// one request's `now`. The connection of an in-process feed never breaks, so
// Healthy(false) is never reported.
func (s *Store) Subscribe(ctx context.Context, retain time.Duration, h store.FeedHandler) {
	sub := &subscriber{wake: make(chan struct{}, 1)}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	replay := s.replay(time.Now().Add(-retain))
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}()

	h.Epoch(s.began)
	if len(replay) > 0 {
		h.Revoked(replay)
	}
	h.Healthy(true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.wake:
			for _, ids := range sub.take() {
				h.Revoked(ids)
			}
		}
	}
}

// replay lists announcements made at or after since, oldest first (ties by
// ID, the order of a Redis sorted set); s.mu is held.
func (s *Store) replay(since time.Time) []string {
	var ids []string
	for id, at := range s.feed {
		if !at.Before(since) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int {
		if c := s.feed[a].Compare(s.feed[b]); c != 0 {
			return c
		}
		return bytes.Compare([]byte(a), []byte(b))
	})
	return ids
}
