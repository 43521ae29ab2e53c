package redisstore

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
	if sessionID == "" {
		return store.Session{}, false, nil
	}
	m, err := s.client.HGetAll(ctx, userKey(user, "s:"+sessionID)).Result()
	if err != nil {
		return store.Session{}, false, unavailable("session", err)
	}
	if len(m) == 0 {
		return store.Session{}, false, nil
	}
	return sessionFrom(user, m), true, nil
}

// Access implements store.Store.
func (s *Store) Access(ctx context.Context, user store.UserKey, sessionID string) (store.Session, bool, store.User, bool, error) {
	if err := store.CheckUserKey(user); err != nil {
		return store.Session{}, false, store.User{}, false, err
	}
	keys := []string{userKey(user, "s:"+sessionID), userKey(user, "user")}
	v, err := accessScript.Run(ctx, s.client, keys).Slice()
	if err != nil {
		return store.Session{}, false, store.User{}, false, unavailable("access", err)
	}
	if len(v) != 2 {
		return store.Session{}, false, store.User{}, false, badReply("access", v)
	}
	sm, ok1 := fields(v[0])
	um, ok2 := fields(v[1])
	if !ok1 || !ok2 {
		return store.Session{}, false, store.User{}, false, badReply("access", v)
	}
	var (
		sess store.Session
		u    store.User
	)
	if len(sm) > 0 {
		sess = sessionFrom(user, sm)
	}
	if len(um) > 0 {
		u = userFrom(um)
	}
	return sess, len(sm) > 0, u, len(um) > 0, nil
}

// Sessions implements store.Store.
func (s *Store) Sessions(ctx context.Context, user store.UserKey, now time.Time) ([]store.Session, error) {
	if err := store.CheckUserKey(user); err != nil {
		return nil, err
	}
	v, err := sessionsScript.Run(ctx, s.client, []string{userKey(user, "sessions")},
		now.UnixMilli(), userKey(user, "s:")).Slice()
	if err != nil {
		return nil, unavailable("sessions", err)
	}
	var out []store.Session
	for _, e := range v {
		m, ok := fields(e)
		if !ok {
			return nil, badReply("sessions", e)
		}
		if sess := sessionFrom(user, m); sess.Active(now) {
			out = append(out, sess)
		}
	}
	slices.SortFunc(out, func(a, b store.Session) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}
