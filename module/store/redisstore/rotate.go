package redisstore

import (
	"context"

	"github.com/otpgate/otpgate/module/store"
)

// Rotate implements store.Store.
func (s *Store) Rotate(ctx context.Context, req store.RotateRequest) (store.RotateResult, error) {
	if err := req.Check(); err != nil {
		return store.RotateResult{}, err
	}
	keys := []string{
		userKey(req.User, "rt:"+req.OldHash),
		userKey(req.User, "rt:"+req.NewHash),
		userKey(req.User, "user"),
		userKey(req.User, "rts"),
	}
	v, err := rotateScript.Run(ctx, s.client, keys,
		req.Now.UnixMilli(), req.ReuseInterval.Milliseconds(), userKey(req.User, "s:"),
		req.Inactivity.Milliseconds(), req.NewHash).Slice()
	if err != nil {
		return store.RotateResult{}, unavailable("rotate", err)
	}
	if len(v) == 0 {
		return store.RotateResult{}, badReply("rotate", v)
	}
	status, _ := v[0].(string)
	switch status {
	case "not_found":
		return store.RotateResult{Status: store.RotateNotFound}, nil
	case "reused", "idle":
		if len(v) != 2 {
			return store.RotateResult{}, badReply("rotate", v)
		}
		m, ok := fields(v[1])
		if !ok {
			return store.RotateResult{}, badReply("rotate", v)
		}
		res := store.RotateResult{Status: store.RotateReused, Session: sessionFrom(req.User, m)}
		if status == "idle" {
			res.Status = store.RotateIdle
		}
		return res, nil
	case "ok":
		if len(v) != 3 {
			return store.RotateResult{}, badReply("rotate", v)
		}
		sm, ok1 := fields(v[1])
		um, ok2 := fields(v[2])
		if !ok1 || !ok2 {
			return store.RotateResult{}, badReply("rotate", v)
		}
		return store.RotateResult{Status: store.RotateOK, Session: sessionFrom(req.User, sm), User: userFrom(um)}, nil
	}
	return store.RotateResult{}, badReply("rotate", v[0])
}
