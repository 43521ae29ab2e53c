package memstore

import (
	"context"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// FirstSeen implements store.Store. The interface gives it no `now`, so ttl
// runs on the wall clock.
func (s *Store) FirstSeen(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl < time.Millisecond {
		return false, store.ErrInvalid
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	if exp, ok := s.seen[key]; ok && alive(exp, wall) {
		return false, nil
	}
	s.seen[key] = wall.Add(ttl)
	return true, nil
}

// Claim implements store.Store.
func (s *Store) Claim(ctx context.Context, key, value string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claims == nil {
		s.claims = map[string]string{}
	}
	if v, ok := s.claims[key]; ok {
		return v, nil
	}
	s.claims[key] = value
	return value, nil
}

// Forget implements store.Store.
func (s *Store) Forget(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.seen, key)
	return nil
}
