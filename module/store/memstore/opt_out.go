package memstore

import (
	"context"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// SetOptOut implements store.Store. An opt-out never expires: only the
// owner's START clears it.
func (s *Store) SetOptOut(ctx context.Context, user store.UserKey, out bool, now time.Time) error {
	if err := store.CheckUserKey(user); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(user, wall, out)
	if p != nil {
		p.optedOut = out
	}
	return nil
}
