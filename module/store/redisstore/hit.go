package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// randomMember names one Hit event; sorted-set members must be unique.
func randomMember(now int64) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(now, 10) + "-" + hex.EncodeToString(b[:])
}

// Hit implements store.Store.
func (s *Store) Hit(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (store.Decision, error) {
	if err := store.CheckLimit(window); err != nil {
		return store.Decision{}, err
	}
	nowMs := now.UnixMilli()
	// The limit's shape is part of the key: two limits on one key (two
	// deployments sharing Redis) must not trim each other's logs.
	logKey := "otpgate:{lim:" + key + "}:" + strconv.Itoa(limit) + "/" + strconv.FormatInt(window.Milliseconds(), 10)
	v, err := hitScript.Run(ctx, s.client, []string{logKey},
		nowMs, limit, window.Milliseconds(), randomMember(nowMs)).Int64Slice()
	if err != nil {
		return store.Decision{}, unavailable("hit", err)
	}
	if len(v) != 3 {
		return store.Decision{}, badReply("hit", v)
	}
	return store.Decision{
		Allowed:    v[0] == 1,
		Remaining:  int(v[1]),
		RetryAfter: time.Duration(v[2]) * time.Millisecond,
	}, nil
}
