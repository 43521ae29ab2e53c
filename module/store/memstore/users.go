package memstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// maxListLimit caps a ListUsers page, as the Redis store does.
const maxListLimit = 10_000

func indexMember(id string, key store.UserKey) string { return id + ":" + string(key) }

// indexAdd and indexRemove keep s.index; s.mu is held.
func (s *Store) indexAdd(id string, key store.UserKey) {
	m := indexMember(id, key)
	if i, found := slices.BinarySearch(s.index, m); !found {
		s.index = slices.Insert(s.index, i, m)
	}
}

func (s *Store) indexRemove(id string, key store.UserKey) {
	if i, found := slices.BinarySearch(s.index, indexMember(id, key)); found {
		s.index = slices.Delete(s.index, i, i+1)
	}
}

// indexed returns the user an index entry names, unless the entry is
// stale; s.mu is held.
func (s *Store) indexed(member string) (store.UserEntry, bool) {
	id, key, _ := strings.Cut(member, ":")
	p := s.people[store.UserKey(key)]
	if p == nil || p.user == nil || p.user.ID != id {
		return store.UserEntry{}, false
	}
	return store.UserEntry{Key: store.UserKey(key), User: cloneUser(*p.user)}, true
}

// User implements store.Store.
func (s *Store) User(ctx context.Context, user store.UserKey) (store.User, bool, error) {
	if err := store.CheckUserKey(user); err != nil {
		return store.User{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.person(user, s.clock(), false)
	if p == nil || p.user == nil {
		return store.User{}, false, nil
	}
	return cloneUser(*p.user), true, nil
}

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, req store.CreateUserRequest) (store.User, bool, error) {
	if err := req.Check(); err != nil {
		return store.User{}, false, err
	}
	roles, err := store.NormRoles(req.Roles)
	if err != nil {
		return store.User{}, false, err
	}
	now := ms(req.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(req.User, wall, true)
	if p.user != nil {
		// as in the Redis store, the user joins the index if it is not in
		// it yet: the copy a phone change's claim reserved
		s.indexAdd(p.user.ID, req.User)
		return cloneUser(*p.user), false, nil
	}
	u := &store.User{
		ID:        req.ID,
		Phone:     req.Phone,
		CreatedAt: now,
		UpdatedAt: now,
		Metadata:  cloneBytes(req.Metadata),
		Roles:     roles,
		Origin:    store.OriginAdmin,
	}
	if req.Confirmed {
		u.ConfirmedAt = now
	}
	p.user = u
	s.indexAdd(u.ID, req.User)
	return cloneUser(*u), true, nil
}

// UpdateUser implements store.Store.
func (s *Store) UpdateUser(ctx context.Context, user store.UserKey, upd store.UserUpdate) (store.User, bool, error) {
	if err := store.CheckUserKey(user); err != nil {
		return store.User{}, false, err
	}
	if err := upd.Check(); err != nil {
		return store.User{}, false, err
	}
	var roles []string
	if upd.Roles != nil {
		var err error
		if roles, err = store.NormRoles(*upd.Roles); err != nil {
			return store.User{}, false, err
		}
	}
	now := ms(upd.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(user, wall, false)
	if p == nil || p.user == nil {
		return store.User{}, false, nil
	}
	u := p.user
	if upd.Roles != nil {
		u.Roles = roles
	}
	if upd.BannedUntil != nil {
		u.BannedUntil = ms(*upd.BannedUntil)
	}
	if upd.Metadata != nil {
		u.Metadata = cloneBytes(*upd.Metadata)
	}
	if upd.Confirmed && u.ConfirmedAt.IsZero() {
		u.ConfirmedAt = now
	}
	u.UpdatedAt = now
	return cloneUser(*u), true, nil
}

// DeleteUser implements store.Store. The opt-out marker and the send log
// stay: they protect the phone's owner, whoever signs in with it next.
func (s *Store) DeleteUser(ctx context.Context, user store.UserKey, now time.Time) (store.User, []string, bool, error) {
	if err := store.CheckUserKey(user); err != nil {
		return store.User{}, nil, false, err
	}
	now = ms(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(user, wall, false)
	if p == nil || p.user == nil {
		return store.User{}, nil, false, nil
	}
	u := *p.user
	var active []string
	for id, r := range p.sessions {
		if r.s.Active(now) {
			active = append(active, id)
		}
	}
	slices.Sort(active)
	s.indexRemove(u.ID, user)
	p.user = nil
	p.challenge = nil
	p.failures = nil
	p.cooldown = nil
	p.sessions = make(map[string]*sessionRec)
	p.tokens = make(map[string]*tokenRec)
	if p.empty() {
		delete(s.people, user)
	}
	return u, active, true, nil
}

// ListUsers implements store.Store. It drops every stale index entry
// first, so that the total counts users (the Redis store drops the stale
// entries its pages meet).
func (s *Store) ListUsers(ctx context.Context, offset, limit int) ([]store.UserEntry, int, error) {
	if offset < 0 || limit < 0 {
		return nil, 0, fmt.Errorf("%w: negative offset or limit", store.ErrInvalid)
	}
	limit = min(limit, maxListLimit)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index = slices.DeleteFunc(s.index, func(m string) bool {
		_, ok := s.indexed(m)
		return !ok
	})
	total := len(s.index)
	var out []store.UserEntry
	for i := offset; i < total && len(out) < limit; i++ {
		e, _ := s.indexed(s.index[i])
		out = append(out, e)
	}
	return out, total, nil
}

// UserByID implements store.Store. Like the Redis store, it reads every
// index entry of id, drops the stale ones and answers the first of the
// others in the index's order: an ID can be under two keys while a phone
// change is under way.
func (s *Store) UserByID(ctx context.Context, id string) (store.UserEntry, bool, error) {
	if id == "" || store.CheckUserID(id) != nil {
		return store.UserEntry{}, false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prefix := id + ":"
	from, _ := slices.BinarySearch(s.index, prefix)
	to := from
	for to < len(s.index) && strings.HasPrefix(s.index[to], prefix) {
		to++
	}
	var found []store.UserEntry
	live := s.index[from:from]
	for _, m := range s.index[from:to] {
		if e, ok := s.indexed(m); ok {
			found = append(found, e)
			live = append(live, m)
		}
	}
	s.index = slices.Delete(s.index, from+len(live), to)
	if len(found) == 0 {
		return store.UserEntry{}, false, nil
	}
	return found[0], true, nil
}
