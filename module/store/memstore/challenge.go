package memstore

import (
	"context"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// Challenge implements store.Store.
func (s *Store) Challenge(ctx context.Context, user store.UserKey) (store.Challenge, bool, int, error) {
	if err := store.CheckUserKey(user); err != nil {
		return store.Challenge{}, false, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.person(user, s.clock(), false)
	if p == nil {
		return store.Challenge{}, false, 0, nil
	}
	failures := 0
	if p.failures != nil {
		failures = p.failures.n
	}
	if p.challenge == nil {
		return store.Challenge{}, false, failures, nil
	}
	c := cloneChallenge(p.challenge.c)
	c.HasUser = p.user != nil
	return c, true, failures, nil
}

// known reports whether the person has a user that counts as existing: a
// user of the list only while listedOK.
func (p *person) known(listedOK bool) bool {
	return p.user != nil && (p.user.Origin != store.OriginList || listedOK)
}

// current returns the challenge with id unless it is gone by now.
func (p *person) current(id string, now time.Time) *challengeRec {
	c := p.challenge
	if c == nil || c.c.ID != id || !now.Before(c.keepUntil) {
		return nil
	}
	return c
}
