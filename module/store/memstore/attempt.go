package memstore

import (
	"context"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// Attempt implements store.Store.
func (s *Store) Attempt(ctx context.Context, req store.AttemptRequest) (store.AttemptResult, error) {
	if err := req.Check(); err != nil {
		return store.AttemptResult{}, err
	}
	now := ms(req.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(req.User, wall, false)
	if p == nil {
		return store.AttemptResult{Status: store.AttemptNoChallenge}, nil
	}

	var f failureRec
	if p.failures != nil {
		f = *p.failures
	}
	if now.Before(f.until) {
		return store.AttemptResult{Status: store.AttemptLocked, Locked: f.until.Sub(now)}, nil
	}
	memory := req.Lockout.Memory
	if now.Sub(f.last) >= memory {
		f.n = 0
	}
	if now.Sub(later(f.last, f.until)) >= memory {
		f.locks = 0
	}

	c := p.challenge
	switch {
	case c == nil || !now.Before(c.keepUntil):
		return store.AttemptResult{Status: store.AttemptNoChallenge}, nil
	case !now.Before(c.c.ExpiresAt):
		return store.AttemptResult{Status: store.AttemptExpired}, nil
	case c.c.Attempts >= req.MaxAttempts:
		return store.AttemptResult{Status: store.AttemptNoChallenge}, nil
	}
	c.c.Attempts++
	f.n++
	res := store.AttemptResult{Status: store.AttemptOK, Failures: f.n}
	if f.n >= req.Lockout.After {
		res.Locked = lockFor(req.Lockout, f.locks)
		f.locks++
		f.n = 0
		f.until = now.Add(res.Locked)
	}
	f.last = now
	f.wall = wall.Add(max(f.until.Sub(now), 0) + memory)
	p.failures = &f
	res.Challenge = cloneChallenge(c.c)
	res.Challenge.HasUser = p.user != nil
	return res, nil
}

// lockFor is the length of a person's next lock after locks earlier ones:
// Base doubled for each, at most Max.
func lockFor(l store.Lockout, locks int) time.Duration {
	d := l.Base
	for range locks {
		if d >= l.Max/2 {
			return l.Max
		}
		d *= 2
	}
	return min(d, l.Max)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
