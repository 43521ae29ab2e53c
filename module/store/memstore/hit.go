package memstore

import (
	"context"
	"fmt"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// Hit implements store.Store.
func (s *Store) Hit(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (store.Decision, error) {
	if err := store.CheckLimit(window); err != nil {
		return store.Decision{}, err
	}
	// The limit's shape is part of the key, as in the Redis store: two
	// limits on one key (two sites counting one IP) must not trim each
	// other's logs.
	key = fmt.Sprintf("%s\x00%d/%d", key, limit, window.Milliseconds())
	now = ms(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	l := s.limits[key]
	if l == nil || !alive(l.wall, wall) {
		l = &eventLog{}
		s.limits[key] = l
	}
	ok, remaining, retry := l.add("", limit, window, now, wall)
	if !ok {
		return store.Decision{RetryAfter: retry}, nil
	}
	return store.Decision{Allowed: true, Remaining: remaining}, nil
}
