package memstore

import (
	"context"

	"github.com/otpgate/otpgate/module/store"
)

// Rotate implements store.Store.
func (s *Store) Rotate(ctx context.Context, req store.RotateRequest) (store.RotateResult, error) {
	if err := req.Check(); err != nil {
		return store.RotateResult{}, err
	}
	now := ms(req.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(req.User, wall, false)
	if p == nil {
		return store.RotateResult{Status: store.RotateNotFound}, nil
	}
	t := p.tokens[req.OldHash]
	if t == nil {
		return store.RotateResult{Status: store.RotateNotFound}, nil
	}
	r := p.sessions[t.sessionID]
	if r == nil || !r.s.Active(now) {
		return store.RotateResult{Status: store.RotateNotFound}, nil
	}
	if !t.usedAt.IsZero() && (req.ReuseInterval <= 0 || now.Sub(t.usedAt) > req.ReuseInterval) {
		r.s.RevokedAt = now
		return store.RotateResult{Status: store.RotateReused, Session: r.s}, nil
	}
	if req.Inactivity > 0 {
		last := r.s.RefreshedAt
		if last.IsZero() {
			last = r.s.CreatedAt
		}
		if now.Sub(last) > req.Inactivity {
			r.s.RevokedAt = now
			return store.RotateResult{Status: store.RotateIdle, Session: r.s}, nil
		}
	}
	if t.usedAt.IsZero() {
		t.usedAt = now
	}
	r.s.RefreshedAt = now
	p.tokens[req.NewHash] = &tokenRec{sessionID: t.sessionID, wall: r.wall}
	res := store.RotateResult{Status: store.RotateOK, Session: r.s}
	if p.user != nil {
		res.User = cloneUser(*p.user)
	}
	return res, nil
}
