package redisstore

import (
	"context"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// BeginSend implements store.Store.
func (s *Store) BeginSend(ctx context.Context, req store.SendRequest) (store.SendResult, error) {
	if err := req.Check(); err != nil {
		return store.SendResult{}, err
	}
	c := req.Challenge
	keys := []string{
		userKey(req.User, "ch"),
		userKey(req.User, "sends"),
		userKey(req.User, "cool"),
		userKey(req.User, "optout"),
		userKey(req.User, "user"),
		userKey(req.User, "fail"),
	}
	v, err := beginSendScript.Run(ctx, s.client, keys,
		req.Now.UnixMilli(), req.PhoneLimit.N, req.PhoneLimit.Window.Milliseconds(),
		req.Cooldown.Milliseconds(), flag(req.RequireUser), flag(req.Resend),
		req.Keep.Milliseconds(), c.ID, c.CodeMAC, c.Phone, c.Channel,
		flag(c.CreateUser), c.Metadata, millis(c.SentAt), millis(c.ExpiresAt),
		flag(req.ListedOK), c.Origin, flag(req.Unlimited),
		c.ChangeOf, string(c.ChangeFrom),
	).Slice()
	if err != nil {
		return store.SendResult{}, unavailable("begin send", err)
	}
	if len(v) < 2 {
		return store.SendResult{}, badReply("begin send", v)
	}
	status, _ := v[0].(string)
	retry, _ := v[1].(int64)
	res := store.SendResult{RetryAfter: time.Duration(retry) * time.Millisecond}
	switch status {
	case "ok":
		if len(v) != 8 {
			return store.SendResult{}, badReply("begin send", v)
		}
		channel, _ := v[2].(string)
		create, _ := v[3].(string)
		meta, _ := v[4].(string)
		origin, _ := v[5].(string)
		chg, _ := v[6].(string)
		chgFrom, _ := v[7].(string)
		c.Channel = channel
		c.CreateUser = create == "1"
		c.Metadata = bytesOrNil(meta)
		c.Origin = origin
		c.ChangeOf = chg
		c.ChangeFrom = store.UserKey(chgFrom)
		c.CodeMAC = bytesOrNil(string(c.CodeMAC))
		c.SentAt = roundTrip(c.SentAt)
		c.ExpiresAt = roundTrip(c.ExpiresAt)
		c.Attempts = 0
		res.Status = store.SendOK
		res.Challenge = c
	case "unknown_user":
		res.Status = store.SendUnknownUser
	case "no_challenge":
		res.Status = store.SendNoChallenge
	case "opted_out":
		res.Status = store.SendOptedOut
	case "cooldown":
		res.Status = store.SendCooldown
	case "phone_limited":
		res.Status = store.SendPhoneLimited
	case "banned":
		res.Status = store.SendBanned
	case "locked":
		res.Status = store.SendLocked
	case "taken":
		res.Status = store.SendTaken
	default:
		return store.SendResult{}, badReply("begin send", v[0])
	}
	return res, nil
}

// AbortSend implements store.Store.
func (s *Store) AbortSend(ctx context.Context, user store.UserKey, challengeID string) error {
	if err := store.CheckUserKey(user); err != nil {
		return err
	}
	if challengeID == "" {
		return nil
	}
	keys := []string{userKey(user, "ch"), userKey(user, "sends"), userKey(user, "cool")}
	if err := abortSendScript.Run(ctx, s.client, keys, challengeID).Err(); err != nil {
		return unavailable("abort send", err)
	}
	return nil
}
