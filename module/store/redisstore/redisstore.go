// Package redisstore keeps otpgate's state in Redis, so that any number of
// gateways share limits, challenges and sessions.
//
// Every method that changes state is one Lua script (in lua/, each with its
// keys, arguments and reply in a header comment), so each is atomic and costs
// one round trip. Revoke and Reannounce add a second for the announcement,
// because the revocation log lives in another hash slot; for the same
// reason the user index costs extra commands, but only when a user is
// created, repaired or deleted, and in the administrator's reads.
//
// Key layout (cluster-safe: one person's keys share the hash tag of the
// pseudonymous UserKey; no phone number ever appears in a key):
//
//	otpgate:{<user>}:ch          challenge (hash), TTL keep
//	otpgate:{<user>}:sends       phone send log (sorted set), TTL limit window
//	otpgate:{<user>}:cool        cooldown (hash), TTL cooldown
//	otpgate:{<user>}:fail        consecutive failures and locks (hash), TTL lock + failure memory
//	otpgate:{<user>}:optout      opt-out marker, no TTL (ended by START)
//	otpgate:{<user>}:user        user (hash), no TTL (users are permanent)
//	otpgate:{<user>}:sessions    session index (sorted set), TTL last session expiry
//	otpgate:{<user>}:s:<id>      session (hash), TTL session expiry
//	otpgate:{<user>}:rt:<hash>   refresh token (hash), TTL session expiry
//	otpgate:{<user>}:rts         refresh token index (sorted set), TTL last token expiry
//	otpgate:{<user>}:moved       forwards of users that moved away (hash: <id> -> new key,
//	                             rec:<id> -> the move's record until it finished), TTL last moved session
//	otpgate:{users}:index        user index (sorted set, score 0, member "<id>:<user>"), no TTL
//	otpgate:{lim:<key>}          Hit limit log (sorted set), TTL window
//	otpgate:{seen:<key>}         FirstSeen marker, TTL ttl
//	otpgate:{rev}:log            revocation log (sorted set), TTL store.AnnounceRetention
//	otpgate:{rev}:epoch          when the data began (ms), no TTL: missing after a data loss
//	otpgate:rev                  revocation pub/sub channel
//
// Decisions use the `now` the caller passes (sent as milliseconds), never
// Redis TIME, so tests can inject time; key TTLs are durations and only bound
// memory.
//
// Every error from Redis wraps store.ErrUnavailable.
package redisstore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/module/store"
)

const (
	revLogKey  = "otpgate:{rev}:log"
	epochKey   = "otpgate:{rev}:epoch"
	revChannel = "otpgate:rev"
	indexKey   = "otpgate:{users}:index"
)

// Store is the Redis store.
type Store struct {
	client redis.UniversalClient
}

var _ store.Store = (*Store)(nil)

// New returns a store over client and takes ownership of it: Close closes
// it. The client should have short timeouts (see ParseURL) so that a Redis
// outage turns into store.ErrUnavailable within a second.
func New(client redis.UniversalClient) *Store {
	return &Store{client: client}
}

// unavailable marks a failure to get an answer from Redis, keeping the cause.
func unavailable(op string, err error) error {
	return fmt.Errorf("redisstore %s: %w: %w", op, store.ErrUnavailable, err)
}

// badReply reports a reply the scripts never give: the store is not usable.
func badReply(op string, reply any) error {
	return fmt.Errorf("redisstore %s: %w: unexpected reply %T", op, store.ErrUnavailable, reply)
}

// userKey builds the key of one part of a person's state. The UserKey is the
// hash tag, so it must not contain braces of its own.
func userKey(u store.UserKey, part string) string {
	return "otpgate:{" + string(u) + "}:" + part
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(v string) time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// roundTrip gives t the precision and location it has after a trip
// through Redis.
func roundTrip(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMilli(t.UnixMilli())
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// fields turns a flat name, value list (an HGETALL reply) into a map.
func fields(v any) (map[string]string, bool) {
	list, ok := v.([]any)
	if !ok || len(list)%2 != 0 {
		return nil, false
	}
	m := make(map[string]string, len(list)/2)
	for i := 0; i < len(list); i += 2 {
		k, ok1 := list[i].(string)
		val, ok2 := list[i+1].(string)
		if !ok1 || !ok2 {
			return nil, false
		}
		m[k] = val
	}
	return m, true
}

func bytesOrNil(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

func challengeFrom(m map[string]string) store.Challenge {
	attempts, _ := strconv.Atoi(m["att"])
	return store.Challenge{
		ID:         m["id"],
		CodeMAC:    bytesOrNil(m["mac"]),
		Phone:      m["phone"],
		Channel:    m["channel"],
		CreateUser: m["create"] == "1",
		Metadata:   bytesOrNil(m["meta"]),
		Origin:     m["via"],
		ChangeOf:   m["chg"],
		ChangeFrom: store.UserKey(m["chgfrom"]),
		SentAt:     fromMillis(m["sent"]),
		ExpiresAt:  fromMillis(m["exp"]),
		Attempts:   attempts,
	}
}

func userFrom(m map[string]string) store.User {
	return store.User{
		ID:           m["id"],
		Phone:        m["phone"],
		CreatedAt:    fromMillis(m["created"]),
		UpdatedAt:    fromMillis(m["updated"]),
		ConfirmedAt:  fromMillis(m["confirmed"]),
		LastSignInAt: fromMillis(m["signin"]),
		Metadata:     bytesOrNil(m["meta"]),
		Roles:        splitRoles(m["roles"]),
		BannedUntil:  fromMillis(m["banned"]),
		Origin:       m["via"],
		MovingFrom:   store.UserKey(m["moving"]),
	}
}

func sessionFrom(u store.UserKey, m map[string]string) store.Session {
	return store.Session{
		ID:          m["id"],
		User:        u,
		UserID:      m["uid"],
		CreatedAt:   fromMillis(m["created"]),
		ExpiresAt:   fromMillis(m["exp"]),
		RevokedAt:   fromMillis(m["revoked"]),
		RefreshedAt: fromMillis(m["refreshed"]),
		IP:          m["ip"],
		UserAgent:   m["ua"],
	}
}

func splitRoles(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Close implements store.Store: it closes the client.
func (s *Store) Close() error {
	if err := s.client.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("redisstore close: %w", err)
	}
	return nil
}
