package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// Revoke implements store.Store. When the revocation succeeds but its
// announcement fails, it returns the revoked IDs with the error, so that the
// caller can still Announce them: a retried Revoke would not return them
// again.
func (s *Store) Revoke(ctx context.Context, user store.UserKey, scope store.RevokeScope, sessionID string, now time.Time) ([]string, error) {
	if err := store.CheckUserKey(user); err != nil {
		return nil, err
	}
	if scope != store.RevokeOne && scope != store.RevokeAll && scope != store.RevokeOthers {
		return nil, fmt.Errorf("%w: revoke scope %d", store.ErrInvalid, scope)
	}
	ids, err := revokeScript.Run(ctx, s.client, []string{userKey(user, "sessions")},
		now.UnixMilli(), scope.String(), sessionID, userKey(user, "s:")).StringSlice()
	if err != nil {
		return nil, unavailable("revoke", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if err := s.Announce(ctx, ids, now); err != nil {
		return ids, err
	}
	return ids, nil
}

// Reannounce implements store.Store: a read of the person's sessions, then
// Announce (the log is another hash slot).
func (s *Store) Reannounce(ctx context.Context, user store.UserKey, now time.Time) ([]string, error) {
	if err := store.CheckUserKey(user); err != nil {
		return nil, err
	}
	ids, err := revokedScript.Run(ctx, s.client, []string{userKey(user, "sessions")},
		now.UnixMilli(), now.Add(-store.AnnounceRetention).UnixMilli(), userKey(user, "s:")).StringSlice()
	if err != nil {
		return nil, unavailable("reannounce", err)
	}
	if err := s.Announce(ctx, ids, now); err != nil {
		return ids, err
	}
	return ids, nil
}
