package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/module/store"
)

// Consume implements store.Store. A user that is not yet in the user index
// (just created, or its index write was lost) is added to it after the
// script: two more commands, which an indexed user's sign-in never costs.
// That write is best effort: the sign-in has happened, and the next one
// tries again.
func (s *Store) Consume(ctx context.Context, req store.ConsumeRequest) (store.ConsumeResult, error) {
	if err := req.Check(); err != nil {
		return store.ConsumeResult{}, err
	}
	created := req.Session.CreatedAt
	if created.IsZero() {
		created = req.Now
	}
	keys := []string{
		userKey(req.User, "ch"),
		userKey(req.User, "fail"),
		userKey(req.User, "user"),
		userKey(req.User, "sessions"),
		userKey(req.User, "s:"+req.Session.ID),
		userKey(req.User, "rt:"+req.RefreshHash),
		userKey(req.User, "rts"),
	}
	args := []any{req.Now.UnixMilli(), req.ChallengeID, req.NewUserID, req.Session.ID,
		created.UnixMilli(), req.Session.ExpiresAt.UnixMilli(), req.RefreshHash,
		flag(req.ListedOK), req.Session.IP, store.ClipUserAgent(req.Session.UserAgent), flag(req.NewUser)}
	var v []any
	var err error
	if req.NewUser {
		v, err = s.consumeIndexing(ctx, req, keys, args)
	} else {
		v, err = consumeScript.Run(ctx, s.client, keys, args...).Slice()
	}
	if err != nil {
		return store.ConsumeResult{}, unavailable("consume", err)
	}
	if len(v) == 0 {
		return store.ConsumeResult{}, badReply("consume", v)
	}
	status, _ := v[0].(string)
	switch status {
	case "gone":
		return store.ConsumeResult{Status: store.ConsumeGone}, nil
	case "no_user":
		return store.ConsumeResult{Status: store.ConsumeNoUser}, nil
	case "banned":
		if len(v) != 2 {
			return store.ConsumeResult{}, badReply("consume", v)
		}
		m, ok := fields(v[1])
		if !ok {
			return store.ConsumeResult{}, badReply("consume", v[1])
		}
		return store.ConsumeResult{Status: store.ConsumeBanned, User: userFrom(m)}, nil
	case "ok":
		if len(v) != 3 {
			return store.ConsumeResult{}, badReply("consume", v)
		}
		m, ok := fields(v[2])
		if !ok {
			return store.ConsumeResult{}, badReply("consume", v[2])
		}
		u := userFrom(m)
		if req.NewUser && u.ID != req.NewUserID {
			// the entry written ahead names a user that was not created
			_ = s.client.ZRem(ctx, indexKey, req.NewUserID+":"+string(req.User)).Err()
		}
		if m["ix"] != "1" {
			_ = s.index(ctx, req.User, u.ID)
		}
		return store.ConsumeResult{Status: store.ConsumeOK, User: u, Created: v[1] == int64(1)}, nil
	}
	return store.ConsumeResult{}, badReply("consume", v[0])
}

// consumeIndexing runs the consume script in one round trip with the index
// entry of the user it will probably create (the index is another hash
// slot, so it cannot be written by the script): a first sign-in costs no
// more round trips than any other. The script marks the user indexed only
// when it created it under the id the entry names; any other outcome
// removes the entry again (Consume), and ListUsers drops entries whose user
// does not match. A server that does not know the script yet gets it by
// the usual EVALSHA-then-EVAL.
func (s *Store) consumeIndexing(ctx context.Context, req store.ConsumeRequest, keys []string, args []any) ([]any, error) {
	member := req.NewUserID + ":" + string(req.User)
	var cmd *redis.Cmd
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, indexKey, redis.Z{Member: member})
		cmd = consumeScript.EvalSha(ctx, p, keys, args...)
		return nil
	})
	if err != nil && redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		return consumeScript.Run(ctx, s.client, keys, args...).Slice()
	}
	if err != nil {
		// the entry may be written while the sign-in failed: ListUsers
		// drops it, as it names no user
		return nil, err
	}
	return cmd.Slice()
}
