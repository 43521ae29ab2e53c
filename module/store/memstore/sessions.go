package memstore

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// Session implements store.Store.
func (s *Store) Session(ctx context.Context, user store.UserKey, sessionID string) (store.Session, bool, error) {
	if err := store.CheckUserKey(user); err != nil {
		return store.Session{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.person(user, s.clock(), false)
	if p == nil {
		return store.Session{}, false, nil
	}
	r := p.sessions[sessionID]
	if r == nil {
		return store.Session{}, false, nil
	}
	return r.s, true, nil
}

// Access implements store.Store.
func (s *Store) Access(ctx context.Context, user store.UserKey, sessionID string) (store.Session, bool, store.User, bool, error) {
	if err := store.CheckUserKey(user); err != nil {
		return store.Session{}, false, store.User{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.person(user, s.clock(), false)
	if p == nil {
		return store.Session{}, false, store.User{}, false, nil
	}
	var (
		sess   store.Session
		sok    bool
		u      store.User
		userOK bool
	)
	if r := p.sessions[sessionID]; r != nil {
		sess, sok = r.s, true
	}
	if p.user != nil {
		u, userOK = cloneUser(*p.user), true
	}
	return sess, sok, u, userOK, nil
}

// Sessions implements store.Store.
func (s *Store) Sessions(ctx context.Context, user store.UserKey, now time.Time) ([]store.Session, error) {
	if err := store.CheckUserKey(user); err != nil {
		return nil, err
	}
	now = ms(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.person(user, s.clock(), false)
	if p == nil {
		return nil, nil
	}
	var out []store.Session
	for _, r := range p.sessions {
		if r.s.Active(now) {
			out = append(out, r.s)
		}
	}
	slices.SortFunc(out, compareSessions)
	return out, nil
}

// compareSessions orders sessions oldest first, ties by ID.
func compareSessions(a, b store.Session) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}
