package memstore

import (
	"context"
	"slices"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// Revoke implements store.Store.
func (s *Store) Revoke(ctx context.Context, user store.UserKey, scope store.RevokeScope, sessionID string, now time.Time) ([]string, error) {
	if err := store.CheckUserKey(user); err != nil {
		return nil, err
	}
	if scope != store.RevokeOne && scope != store.RevokeAll && scope != store.RevokeOthers {
		return nil, store.ErrInvalid
	}
	now = ms(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(user, wall, false)
	if p == nil {
		return nil, nil
	}
	var revoked []string
	for id, r := range p.sessions {
		switch {
		case scope == store.RevokeOne && id != sessionID,
			scope == store.RevokeOthers && id == sessionID,
			!r.s.Active(now):
			continue
		}
		r.s.RevokedAt = now
		revoked = append(revoked, id)
	}
	slices.Sort(revoked)
	s.announce(revoked, now)
	return revoked, nil
}

// Reannounce implements store.Store.
func (s *Store) Reannounce(ctx context.Context, user store.UserKey, now time.Time) ([]string, error) {
	if err := store.CheckUserKey(user); err != nil {
		return nil, err
	}
	now = ms(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(user, wall, false)
	if p == nil {
		return nil, nil
	}
	since := now.Add(-store.AnnounceRetention)
	var ids []string
	for id, r := range p.sessions {
		if !r.s.RevokedAt.IsZero() && !r.s.RevokedAt.Before(since) && now.Before(r.s.ExpiresAt) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	s.announce(ids, now)
	return ids, nil
}
