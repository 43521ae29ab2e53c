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
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/module/store"
)

const (
	revLogKey  = "otpgate:{rev}:log"
	epochKey   = "otpgate:{rev}:epoch"
	revChannel = "otpgate:rev"
	indexKey   = "otpgate:{users}:index"
)

// maxUserAgent is the longest User-Agent a session keeps.
const maxUserAgent = 512

var (
	//go:embed lua/hit.lua
	hitSrc    string
	hitScript = redis.NewScript(hitSrc)

	//go:embed lua/begin_send.lua
	beginSendSrc    string
	beginSendScript = redis.NewScript(beginSendSrc)

	//go:embed lua/abort_send.lua
	abortSendSrc    string
	abortSendScript = redis.NewScript(abortSendSrc)

	//go:embed lua/challenge.lua
	challengeSrc    string
	challengeScript = redis.NewScript(challengeSrc)

	//go:embed lua/attempt.lua
	attemptSrc    string
	attemptScript = redis.NewScript(attemptSrc)

	//go:embed lua/consume.lua
	consumeSrc    string
	consumeScript = redis.NewScript(consumeSrc)

	//go:embed lua/rotate.lua
	rotateSrc    string
	rotateScript = redis.NewScript(rotateSrc)

	//go:embed lua/revoke.lua
	revokeSrc    string
	revokeScript = redis.NewScript(revokeSrc)

	//go:embed lua/revoked.lua
	revokedSrc    string
	revokedScript = redis.NewScript(revokedSrc)

	//go:embed lua/epoch.lua
	epochSrc    string
	epochScript = redis.NewScript(epochSrc)

	//go:embed lua/announce.lua
	announceSrc    string
	announceScript = redis.NewScript(announceSrc)

	//go:embed lua/opt_out.lua
	optOutSrc    string
	optOutScript = redis.NewScript(optOutSrc)

	//go:embed lua/first_seen.lua
	firstSeenSrc    string
	firstSeenScript = redis.NewScript(firstSeenSrc)

	//go:embed lua/access.lua
	accessSrc    string
	accessScript = redis.NewScript(accessSrc)

	//go:embed lua/create_user.lua
	createUserSrc    string
	createUserScript = redis.NewScript(createUserSrc)

	//go:embed lua/update_user.lua
	updateUserSrc    string
	updateUserScript = redis.NewScript(updateUserSrc)

	//go:embed lua/delete_user.lua
	deleteUserSrc    string
	deleteUserScript = redis.NewScript(deleteUserSrc)

	//go:embed lua/sessions.lua
	sessionsSrc    string
	sessionsScript = redis.NewScript(sessionsSrc)

	//go:embed lua/mark_indexed.lua
	markIndexedSrc    string
	markIndexedScript = redis.NewScript(markIndexedSrc)

	//go:embed lua/claim_move.lua
	claimMoveSrc    string
	claimMoveScript = redis.NewScript(claimMoveSrc)

	//go:embed lua/move_out.lua
	moveOutSrc    string
	moveOutScript = redis.NewScript(moveOutSrc)

	//go:embed lua/move_in.lua
	moveInSrc    string
	moveInScript = redis.NewScript(moveInSrc)

	//go:embed lua/move_finish.lua
	moveFinishSrc    string
	moveFinishScript = redis.NewScript(moveFinishSrc)

	//go:embed lua/moved.lua
	movedSrc    string
	movedScript = redis.NewScript(movedSrc)
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

func checkUser(u store.UserKey) error {
	if u == "" || strings.ContainsAny(string(u), "{}") {
		return fmt.Errorf("%w: user key empty or with braces", store.ErrInvalid)
	}
	return nil
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

// randomMember names one Hit event; sorted-set members must be unique.
func randomMember(now int64) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(now, 10) + "-" + hex.EncodeToString(b[:])
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

// clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
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

// BeginSend implements store.Store.
func (s *Store) BeginSend(ctx context.Context, req store.SendRequest) (store.SendResult, error) {
	if err := req.Check(); err != nil {
		return store.SendResult{}, err
	}
	if err := checkUser(req.User); err != nil {
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
	if err := checkUser(user); err != nil {
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

// Challenge implements store.Store. It uses a (read-only) script so that
// the challenge and the failure count come back in one round trip; plain
// EVALSHA rather than EVALSHA_RO keeps Redis 6 supported.
func (s *Store) Challenge(ctx context.Context, user store.UserKey) (store.Challenge, bool, int, error) {
	if err := checkUser(user); err != nil {
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

// Attempt implements store.Store: one script, so a wrong code costs one
// round trip.
func (s *Store) Attempt(ctx context.Context, req store.AttemptRequest) (store.AttemptResult, error) {
	if err := req.Check(); err != nil {
		return store.AttemptResult{}, err
	}
	if err := checkUser(req.User); err != nil {
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

// Consume implements store.Store. A user that is not yet in the user index
// (just created, or its index write was lost) is added to it after the
// script: two more commands, which an indexed user's sign-in never costs.
// That write is best effort: the sign-in has happened, and the next one
// tries again.
func (s *Store) Consume(ctx context.Context, req store.ConsumeRequest) (store.ConsumeResult, error) {
	if err := req.Check(); err != nil {
		return store.ConsumeResult{}, err
	}
	if err := checkUser(req.User); err != nil {
		return store.ConsumeResult{}, err
	}
	if err := store.CheckUserID(req.NewUserID); err != nil {
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
		flag(req.ListedOK), req.Session.IP, clip(req.Session.UserAgent, maxUserAgent), flag(req.NewUser)}
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
	if err := checkUser(user); err != nil {
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

// Session implements store.Store.
func (s *Store) Session(ctx context.Context, user store.UserKey, sessionID string) (store.Session, bool, error) {
	if err := checkUser(user); err != nil {
		return store.Session{}, false, err
	}
	if sessionID == "" {
		return store.Session{}, false, nil
	}
	m, err := s.client.HGetAll(ctx, userKey(user, "s:"+sessionID)).Result()
	if err != nil {
		return store.Session{}, false, unavailable("session", err)
	}
	if len(m) == 0 {
		return store.Session{}, false, nil
	}
	return sessionFrom(user, m), true, nil
}

// Rotate implements store.Store.
func (s *Store) Rotate(ctx context.Context, req store.RotateRequest) (store.RotateResult, error) {
	if err := req.Check(); err != nil {
		return store.RotateResult{}, err
	}
	if err := checkUser(req.User); err != nil {
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

// Revoke implements store.Store. When the revocation succeeds but its
// announcement fails, it returns the revoked IDs with the error, so that the
// caller can still Announce them: a retried Revoke would not return them
// again.
func (s *Store) Revoke(ctx context.Context, user store.UserKey, scope store.RevokeScope, sessionID string, now time.Time) ([]string, error) {
	if err := checkUser(user); err != nil {
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
	if err := checkUser(user); err != nil {
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

// Announce implements store.Store.
func (s *Store) Announce(ctx context.Context, sessionIDs []string, now time.Time) error {
	if len(sessionIDs) == 0 {
		return nil
	}
	args := make([]any, 0, 3+len(sessionIDs))
	args = append(args, now.UnixMilli(), store.AnnounceRetention.Milliseconds(), revChannel)
	for _, id := range sessionIDs {
		args = append(args, id)
	}
	if err := announceScript.Run(ctx, s.client, []string{revLogKey}, args...).Err(); err != nil {
		return unavailable("announce", err)
	}
	return nil
}

// SetOptOut implements store.Store.
func (s *Store) SetOptOut(ctx context.Context, user store.UserKey, out bool, now time.Time) error {
	if err := checkUser(user); err != nil {
		return err
	}
	if err := optOutScript.Run(ctx, s.client, []string{userKey(user, "optout")}, flag(out), now.UnixMilli()).Err(); err != nil {
		return unavailable("set opt-out", err)
	}
	return nil
}

// FirstSeen implements store.Store. The interface gives it no `now`, so ttl
// is the key's Redis TTL.
func (s *Store) FirstSeen(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl < time.Millisecond {
		return false, fmt.Errorf("%w: first seen ttl under 1ms", store.ErrInvalid)
	}
	n, err := firstSeenScript.Run(ctx, s.client, []string{"otpgate:{seen:" + key + "}"}, ttl.Milliseconds()).Int64()
	if err != nil {
		return false, unavailable("first seen", err)
	}
	return n == 1, nil
}

// Claim implements store.Store: SET NX, then GET (two commands; used
// once per provisioning, not per request).
func (s *Store) Claim(ctx context.Context, key, value string) (string, error) {
	k := "otpgate:{claim:" + key + "}"
	if err := s.client.SetNX(ctx, k, value, 0).Err(); err != nil {
		return "", unavailable("claim", err)
	}
	v, err := s.client.Get(ctx, k).Result()
	if err != nil {
		return "", unavailable("claim", err)
	}
	return v, nil
}

// Forget implements store.Store.
func (s *Store) Forget(ctx context.Context, key string) error {
	if err := s.client.Del(ctx, "otpgate:{seen:"+key+"}").Err(); err != nil {
		return unavailable("forget", err)
	}
	return nil
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
