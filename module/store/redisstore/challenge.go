package redisstore

import (
	"context"

	"github.com/otpgate/otpgate/module/store"
)

// Challenge implements store.Store. It uses a (read-only) script so that
// the challenge and the failure count come back in one round trip; plain
// EVALSHA rather than EVALSHA_RO keeps Redis 6 supported.
func (s *Store) Challenge(ctx context.Context, user store.UserKey) (store.Challenge, bool, int, error) {
	if err := store.CheckUserKey(user); err != nil {
		return store.Challenge{}, false, 0, err
	}
	keys := []string{userKey(user, "ch"), userKey(user, "fail"), userKey(user, "user")}
	v, err := challengeScript.Run(ctx, s.client, keys).Slice()
	if err != nil {
		return store.Challenge{}, false, 0, unavailable("challenge", err)
	}
	if len(v) != 3 {
		return store.Challenge{}, false, 0, badReply("challenge", v)
	}
	m, ok := fields(v[0])
	failures, ok2 := v[1].(int64)
	hasUser, ok3 := v[2].(int64)
	if !ok || !ok2 || !ok3 {
		return store.Challenge{}, false, 0, badReply("challenge", v)
	}
	if len(m) == 0 {
		return store.Challenge{}, false, int(failures), nil
	}
	c := challengeFrom(m)
	c.HasUser = hasUser == 1
	return c, true, int(failures), nil
}
