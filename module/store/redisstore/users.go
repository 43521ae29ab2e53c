package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/module/store"
)

// The user index is one sorted set in its own hash slot: every member has
// score 0 and is "<id>:<user>", so ranks follow IDs (for ListUsers) and a
// lexicographic range finds an ID (for UserByID). Writes to it come after
// the user's own script and may be lost; readers skip (and remove) entries
// whose user is gone or has another ID, and a user that is not marked as
// indexed is indexed again at its next sign-in.

// maxListRounds bounds how often ListUsers reads on to fill a page whose
// entries turned out to be stale.
const maxListRounds = 8

// maxListLimit caps a page, so that a huge limit neither overflows a rank
// nor asks for one pipeline per user of the whole index.
const maxListLimit = 10_000

// CreateUser implements store.Store. Like Consume, it indexes a user that
// is not marked as indexed (a new one, or one whose index write was lost),
// on a best-effort basis.
func (s *Store) CreateUser(ctx context.Context, req store.CreateUserRequest) (store.User, bool, error) {
	if err := req.Check(); err != nil {
		return store.User{}, false, err
	}
	roles, err := store.NormRoles(req.Roles)
	if err != nil {
		return store.User{}, false, err
	}
	v, err := createUserScript.Run(ctx, s.client, []string{userKey(req.User, "user")},
		req.Now.UnixMilli(), req.ID, req.Phone, strings.Join(roles, ","), req.Metadata, flag(req.Confirmed)).Slice()
	if err != nil {
		return store.User{}, false, unavailable("create user", err)
	}
	if len(v) != 2 {
		return store.User{}, false, badReply("create user", v)
	}
	m, ok := fields(v[1])
	if !ok || len(m) == 0 {
		return store.User{}, false, badReply("create user", v)
	}
	u := userFrom(m)
	if m["ix"] != "1" {
		_ = s.index(ctx, req.User, u.ID)
	}
	return u, v[0] == int64(1), nil
}

// UpdateUser implements store.Store.
func (s *Store) UpdateUser(ctx context.Context, user store.UserKey, upd store.UserUpdate) (store.User, bool, error) {
	if err := upd.Check(); err != nil {
		return store.User{}, false, err
	}
	if err := store.CheckUserKey(user); err != nil {
		return store.User{}, false, err
	}
	var roles, banned string
	var meta []byte
	if upd.Roles != nil {
		r, err := store.NormRoles(*upd.Roles)
		if err != nil {
			return store.User{}, false, err
		}
		roles = strings.Join(r, ",")
	}
	if upd.BannedUntil != nil && !upd.BannedUntil.IsZero() {
		banned = strconv.FormatInt(upd.BannedUntil.UnixMilli(), 10)
	}
	if upd.Metadata != nil {
		meta = *upd.Metadata
	}
	v, err := updateUserScript.Run(ctx, s.client, []string{userKey(user, "user")},
		upd.Now.UnixMilli(),
		flag(upd.Roles != nil), roles,
		flag(upd.BannedUntil != nil), banned,
		flag(upd.Metadata != nil), meta,
		flag(upd.Confirmed)).Slice()
	if err != nil {
		return store.User{}, false, unavailable("update user", err)
	}
	if len(v) == 1 && v[0] == int64(0) {
		return store.User{}, false, nil
	}
	if len(v) != 2 {
		return store.User{}, false, badReply("update user", v)
	}
	m, ok := fields(v[1])
	if !ok {
		return store.User{}, false, badReply("update user", v)
	}
	return userFrom(m), true, nil
}

// DeleteUser implements store.Store. The index entry is removed after the
// script, on a best-effort basis: the user is erased either way, and an
// entry left behind is skipped and removed by the readers of the index.
func (s *Store) DeleteUser(ctx context.Context, user store.UserKey, now time.Time) (store.User, []string, bool, error) {
	if err := store.CheckUserKey(user); err != nil {
		return store.User{}, nil, false, err
	}
	keys := []string{
		userKey(user, "user"),
		userKey(user, "ch"),
		userKey(user, "fail"),
		userKey(user, "cool"),
		userKey(user, "sessions"),
		userKey(user, "rts"),
	}
	v, err := deleteUserScript.Run(ctx, s.client, keys,
		now.UnixMilli(), userKey(user, "s:"), userKey(user, "rt:")).Slice()
	if err != nil {
		return store.User{}, nil, false, unavailable("delete user", err)
	}
	if len(v) == 1 && v[0] == int64(0) {
		return store.User{}, nil, false, nil
	}
	if len(v) != 3 {
		return store.User{}, nil, false, badReply("delete user", v)
	}
	m, ok := fields(v[1])
	list, ok2 := v[2].([]any)
	if !ok || !ok2 {
		return store.User{}, nil, false, badReply("delete user", v)
	}
	var active []string
	for _, id := range list {
		sid, ok := id.(string)
		if !ok {
			return store.User{}, nil, false, badReply("delete user", v)
		}
		active = append(active, sid)
	}
	u := userFrom(m)
	_ = s.client.ZRem(ctx, indexKey, u.ID+":"+string(user)).Err()
	return u, active, true, nil
}

// ListUsers implements store.Store. Stale entries met on the way are
// removed and the page is filled from the entries after them; total counts
// the entries of the index, so it is high by the stale entries not met yet.
func (s *Store) ListUsers(ctx context.Context, offset, limit int) ([]store.UserEntry, int, error) {
	if offset < 0 || limit < 0 {
		return nil, 0, fmt.Errorf("%w: negative offset or limit", store.ErrInvalid)
	}
	limit = min(limit, maxListLimit)
	pipe := s.client.Pipeline()
	card := pipe.ZCard(ctx, indexKey)
	var rng *redis.StringSliceCmd
	if limit > 0 {
		rng = pipe.ZRange(ctx, indexKey, int64(offset), int64(offset)+int64(limit)-1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, unavailable("list users", err)
	}
	total := int(card.Val())
	if limit == 0 {
		return nil, total, nil
	}
	members := rng.Val()
	pos := offset
	var out []store.UserEntry
	for round := 0; ; round++ {
		want := limit - len(out)
		entries, stale, err := s.entries(ctx, members)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, entries...)
		pos += len(members)
		if len(stale) > 0 {
			if n, err := s.client.ZRem(ctx, indexKey, stale).Result(); err == nil {
				// the entries after the removed ones moved up
				total -= int(n)
				pos -= int(n)
			}
		}
		if len(stale) == 0 || len(members) < want || len(out) >= limit || round+1 >= maxListRounds {
			break
		}
		want = limit - len(out)
		members, err = s.client.ZRange(ctx, indexKey, int64(pos), int64(pos)+int64(want)-1).Result()
		if err != nil {
			return nil, 0, unavailable("list users", err)
		}
		if len(members) == 0 {
			break
		}
	}
	return out, total, nil
}

// UserByID implements store.Store.
func (s *Store) UserByID(ctx context.Context, id string) (store.UserEntry, bool, error) {
	if id == "" || store.CheckUserID(id) != nil {
		return store.UserEntry{}, false, nil
	}
	members, err := s.client.ZRangeByLex(ctx, indexKey, &redis.ZRangeBy{Min: "[" + id + ":", Max: "(" + id + ";"}).Result()
	if err != nil {
		return store.UserEntry{}, false, unavailable("user by id", err)
	}
	entries, stale, err := s.entries(ctx, members)
	if err != nil {
		return store.UserEntry{}, false, err
	}
	if len(stale) > 0 {
		_ = s.client.ZRem(ctx, indexKey, stale).Err()
	}
	for _, e := range entries {
		if e.User.ID == id {
			return e, true, nil
		}
	}
	return store.UserEntry{}, false, nil
}

// entries reads the users that index members name, in one pipeline (which
// go-redis splits by node in a cluster). Members whose user is gone, has
// another ID or cannot be a user are returned as stale, as []any for ZREM.
func (s *Store) entries(ctx context.Context, members []string) ([]store.UserEntry, []any, error) {
	if len(members) == 0 {
		return nil, nil, nil
	}
	type pending struct {
		member, id string
		key        store.UserKey
		cmd        *redis.MapStringStringCmd
	}
	var stale []any
	reads := make([]pending, 0, len(members))
	pipe := s.client.Pipeline()
	for _, m := range members {
		id, key, ok := strings.Cut(m, ":")
		if !ok || id == "" || store.CheckUserKey(store.UserKey(key)) != nil {
			stale = append(stale, m)
			continue
		}
		reads = append(reads, pending{member: m, id: id, key: store.UserKey(key), cmd: pipe.HGetAll(ctx, userKey(store.UserKey(key), "user"))})
	}
	if len(reads) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, nil, unavailable("read users", err)
		}
	}
	out := make([]store.UserEntry, 0, len(reads))
	for _, r := range reads {
		m := r.cmd.Val()
		if m["id"] != r.id {
			stale = append(stale, r.member)
			continue
		}
		out = append(out, store.UserEntry{Key: r.key, User: userFrom(m)})
	}
	return out, stale, nil
}

// index adds a user to the user index, then marks the user as indexed. The
// index is another hash slot, so this cannot be part of the user's script;
// the mark comes second so that a lost index write is retried.
func (s *Store) index(ctx context.Context, user store.UserKey, id string) error {
	if err := s.client.ZAdd(ctx, indexKey, redis.Z{Member: id + ":" + string(user)}).Err(); err != nil {
		return unavailable("index user", err)
	}
	if err := markIndexedScript.Run(ctx, s.client, []string{userKey(user, "user")}, id).Err(); err != nil {
		return unavailable("index user", err)
	}
	return nil
}

// User implements store.Store.
func (s *Store) User(ctx context.Context, user store.UserKey) (store.User, bool, error) {
	if err := store.CheckUserKey(user); err != nil {
		return store.User{}, false, err
	}
	m, err := s.client.HGetAll(ctx, userKey(user, "user")).Result()
	if err != nil {
		return store.User{}, false, unavailable("user", err)
	}
	if len(m) == 0 {
		return store.User{}, false, nil
	}
	return userFrom(m), true, nil
}
