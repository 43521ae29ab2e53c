package memstore

import (
	"context"
	"slices"
	"strings"

	"github.com/otpgate/otpgate/module/store"
)

// Phone changes (see store.Store): in this store every step runs under one
// lock, so a move never stops halfway; the steps are still written out as
// in the Redis store, so that both answer alike when called again.

// ClaimMove implements store.Store.
func (s *Store) ClaimMove(ctx context.Context, req store.ClaimMoveRequest) (store.MoveStatus, error) {
	if err := req.Check(); err != nil {
		return 0, err
	}
	roles, err := store.NormRoles(req.Moving.Roles)
	if err != nil {
		return 0, err
	}
	now := ms(req.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(req.User, wall, true)
	c := p.current(req.ChallengeID, now)
	if c == nil || !now.Before(c.c.ExpiresAt) || c.c.ChangeOf != req.Moving.ID || c.c.ChangeFrom != req.From {
		return store.MoveGone, nil
	}
	p.challenge = nil
	p.failures = nil
	if p.user != nil {
		if p.user.ID != req.Moving.ID {
			return store.MoveTaken, nil
		}
		// a copy left by an earlier claim that never completed now waits
		// for the records from where they are
		if p.user.MovingFrom != "" {
			p.user.MovingFrom = req.From
		}
		return store.MoveDone, nil
	}
	u := cloneUser(req.Moving)
	u.Roles = roles
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now
	}
	u.CreatedAt = ms(u.CreatedAt)
	u.LastSignInAt = ms(u.LastSignInAt)
	u.BannedUntil = ms(u.BannedUntil)
	u.ConfirmedAt = now
	u.UpdatedAt = now
	u.MovingFrom = req.From
	p.user = &u
	return store.MoveDone, nil
}

// MoveUser implements store.Store.
func (s *Store) MoveUser(ctx context.Context, req store.MoveRequest) (store.MoveResult, error) {
	if err := req.Check(); err != nil {
		return store.MoveResult{}, err
	}
	now := ms(req.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	from := s.person(req.From, wall, true)
	to := s.person(req.To, wall, true)

	// out: the user's records leave the old key for the move record
	var rec *moveRec
	switch f := from.moved[req.UserID]; {
	case from.user != nil && from.user.ID == req.UserID:
		rec = &moveRec{user: *from.user, sessions: from.sessions, tokens: from.tokens}
		keep := wall.Add(store.AnnounceRetention)
		for _, r := range rec.sessions {
			keep = later(keep, r.wall)
		}
		for _, r := range rec.tokens {
			keep = later(keep, r.wall)
		}
		if f != nil {
			keep = later(keep, f.wall)
		}
		from.user = nil
		from.sessions = make(map[string]*sessionRec)
		from.tokens = make(map[string]*tokenRec)
		from.moved[req.UserID] = &forwardRec{to: req.To, rec: rec, wall: keep}
	case f != nil && f.to == req.To:
		rec = f.rec // nil: the move finished before
	default:
		// the user is gone: a copy still waiting for its records goes too
		if u := to.user; u != nil && u.ID == req.UserID && u.MovingFrom == req.From {
			to.user = nil
		}
		return store.MoveResult{Status: store.MoveGone}, nil
	}

	// in: only into a copy still waiting for them, so never twice
	u := to.user
	if u == nil || u.ID != req.UserID {
		return store.MoveResult{Status: store.MoveGone}, nil
	}
	if u.MovingFrom == req.From {
		if rec != nil {
			phone, confirmed, updated := u.Phone, u.ConfirmedAt, u.UpdatedAt
			moved := cloneUser(rec.user)
			moved.Phone, moved.ConfirmedAt, moved.UpdatedAt = phone, confirmed, updated
			*u = moved
			for id, r := range rec.sessions {
				if _, ok := to.sessions[id]; ok || !alive(r.wall, wall) {
					continue
				}
				c := *r
				c.s.User = req.To
				to.sessions[id] = &c
			}
			for h, r := range rec.tokens {
				if _, ok := to.tokens[h]; ok || !alive(r.wall, wall) {
					continue
				}
				c := *r
				to.tokens[h] = &c
			}
		}
		u.MovingFrom = ""
	}
	if req.Session != nil {
		to.addSession(*req.Session, req.To, u.ID, req.RefreshHash, now, wall)
		u.LastSignInAt = now
		u.UpdatedAt = now
	}

	// index and finish
	s.indexRemove(req.UserID, req.From)
	s.indexAdd(req.UserID, req.To)
	if f := from.moved[req.UserID]; f != nil && f.to == req.To {
		f.rec = nil
	}
	return store.MoveResult{Status: store.MoveDone, User: cloneUser(*u)}, nil
}

// Moved implements store.Store.
func (s *Store) Moved(ctx context.Context, user store.UserKey) ([]store.Forward, error) {
	if err := store.CheckUserKey(user); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.person(user, s.clock(), false)
	if p == nil {
		return nil, nil
	}
	out := make([]store.Forward, 0, len(p.moved))
	for id, f := range p.moved {
		out = append(out, store.Forward{UserID: id, To: f.to, Pending: f.rec != nil})
	}
	slices.SortFunc(out, func(a, b store.Forward) int { return strings.Compare(a.UserID, b.UserID) })
	return out, nil
}
