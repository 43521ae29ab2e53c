package memstore

import (
	"context"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// Consume implements store.Store.
func (s *Store) Consume(ctx context.Context, req store.ConsumeRequest) (store.ConsumeResult, error) {
	if err := req.Check(); err != nil {
		return store.ConsumeResult{}, err
	}
	now := ms(req.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(req.User, wall, true)

	c := p.current(req.ChallengeID, now)
	if c == nil || !now.Before(c.c.ExpiresAt) {
		return store.ConsumeResult{Status: store.ConsumeGone}, nil
	}
	p.challenge = nil

	created := false
	switch {
	case p.user == nil:
		if !c.c.CreateUser {
			return store.ConsumeResult{Status: store.ConsumeNoUser}, nil
		}
		origin := c.c.Origin
		if origin == "" {
			origin = store.OriginSignup
		}
		p.user = &store.User{
			ID:        req.NewUserID,
			Phone:     c.c.Phone,
			CreatedAt: now,
			Metadata:  cloneBytes(c.c.Metadata),
			Origin:    origin,
		}
		created = true
	case !p.known(req.ListedOK):
		return store.ConsumeResult{Status: store.ConsumeNoUser}, nil
	case p.user.Banned(now):
		return store.ConsumeResult{Status: store.ConsumeBanned, User: cloneUser(*p.user)}, nil
	}
	p.failures = nil
	u := p.user
	// as in the Redis store, a user that signs in joins the index if it is
	// not in it yet: a new user, or the copy a phone change's claim reserved
	s.indexAdd(u.ID, req.User)
	if u.ConfirmedAt.IsZero() {
		u.ConfirmedAt = now
	}
	u.UpdatedAt = now
	u.LastSignInAt = now

	p.addSession(req.Session, req.User, u.ID, req.RefreshHash, now, wall)

	return store.ConsumeResult{Status: store.ConsumeOK, User: cloneUser(*u), Created: created}, nil
}

// addSession stores a new session with its first refresh token, as a
// sign-in (or the sign-in that completes a phone change) creates it.
func (p *person) addSession(sess store.Session, key store.UserKey, userID, refreshHash string, now, wall time.Time) {
	sess.User = key
	sess.UserID = userID
	sess.CreatedAt = ms(sess.CreatedAt)
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = now
	}
	sess.ExpiresAt = ms(sess.ExpiresAt)
	sess.RevokedAt = time.Time{}
	sess.RefreshedAt = time.Time{}
	sess.UserAgent = store.ClipUserAgent(sess.UserAgent)
	life := wall.Add(sess.ExpiresAt.Sub(now))
	p.sessions[sess.ID] = &sessionRec{s: sess, wall: life}
	p.tokens[refreshHash] = &tokenRec{sessionID: sess.ID, wall: life}
}
