package redisstore

import (
	"context"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// SetOptOut implements store.Store.
func (s *Store) SetOptOut(ctx context.Context, user store.UserKey, out bool, now time.Time) error {
	if err := store.CheckUserKey(user); err != nil {
		return err
	}
	if err := optOutScript.Run(ctx, s.client, []string{userKey(user, "optout")}, flag(out), now.UnixMilli()).Err(); err != nil {
		return unavailable("set opt-out", err)
	}
	return nil
}
