package redisstore

import (
	"context"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// Attempt implements store.Store: one script, so a wrong code costs one
// round trip.
func (s *Store) Attempt(ctx context.Context, req store.AttemptRequest) (store.AttemptResult, error) {
	if err := req.Check(); err != nil {
		return store.AttemptResult{}, err
	}
	keys := []string{userKey(req.User, "ch"), userKey(req.User, "fail"), userKey(req.User, "user")}
	l := req.Lockout
	v, err := attemptScript.Run(ctx, s.client, keys, req.Now.UnixMilli(), req.MaxAttempts,
		l.After, l.Base.Milliseconds(), l.Max.Milliseconds(), l.Memory.Milliseconds()).Slice()
	if err != nil {
		return store.AttemptResult{}, unavailable("attempt", err)
	}
	if len(v) == 0 {
		return store.AttemptResult{}, badReply("attempt", v)
	}
	status, _ := v[0].(string)
	switch status {
	case "none":
		return store.AttemptResult{Status: store.AttemptNoChallenge}, nil
	case "expired":
		return store.AttemptResult{Status: store.AttemptExpired}, nil
	case "locked":
		left, ok := v[len(v)-1].(int64)
		if len(v) != 2 || !ok {
			return store.AttemptResult{}, badReply("attempt", v)
		}
		return store.AttemptResult{Status: store.AttemptLocked, Locked: time.Duration(left) * time.Millisecond}, nil
	case "ok":
		if len(v) != 5 {
			return store.AttemptResult{}, badReply("attempt", v)
		}
		m, ok1 := fields(v[1])
		failures, ok2 := v[2].(int64)
		hasUser, ok3 := v[3].(int64)
		lock, ok4 := v[4].(int64)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return store.AttemptResult{}, badReply("attempt", v)
		}
		c := challengeFrom(m)
		c.HasUser = hasUser == 1
		return store.AttemptResult{Status: store.AttemptOK, Challenge: c, Failures: int(failures),
			Locked: time.Duration(lock) * time.Millisecond}, nil
	}
	return store.AttemptResult{}, badReply("attempt", v[0])
}
