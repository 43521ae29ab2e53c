package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// FirstSeen implements store.Store. The interface gives it no `now`, so ttl
// is the key's Redis TTL.
func (s *Store) FirstSeen(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl < time.Millisecond {
		return false, fmt.Errorf("%w: first seen ttl under 1ms", store.ErrInvalid)
	}
	n, err := firstSeenScript.Run(ctx, s.client, []string{"otpgate:{seen:" + key + "}"}, ttl.Milliseconds()).Int64()
	if err != nil {
		return false, unavailable("first seen", err)
	}
	return n == 1, nil
}

// Claim implements store.Store: SET NX, then GET (two commands; used
// once per provisioning, not per request).
func (s *Store) Claim(ctx context.Context, key, value string) (string, error) {
	k := "otpgate:{claim:" + key + "}"
	if err := s.client.SetNX(ctx, k, value, 0).Err(); err != nil {
		return "", unavailable("claim", err)
	}
	v, err := s.client.Get(ctx, k).Result()
	if err != nil {
		return "", unavailable("claim", err)
	}
	return v, nil
}

// Forget implements store.Store.
func (s *Store) Forget(ctx context.Context, key string) error {
	if err := s.client.Del(ctx, "otpgate:{seen:"+key+"}").Err(); err != nil {
		return unavailable("forget", err)
	}
	return nil
}
