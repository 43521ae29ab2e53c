// Package store defines where otpgate keeps its state: challenges, send
// limits, users, sessions, refresh tokens, opt-outs and the revocation feed.
//
// Two implementations exist: memstore (one process, the default) and
// redisstore (any number of gateways sharing Redis). Both must pass the
// conformance suite in storetest; it is the definition of the semantics
// documented here.
//
// All per-person state is addressed by a UserKey: a pseudonymous, stable tag
// derived from the phone number by the caller (an HMAC under the server
// secret). It keeps phone numbers out of key names and lets the Redis store
// put everything one person owns in one cluster hash slot.
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrUnavailable wraps every failure to reach the backing store. Callers map
// it to 503 store_unavailable and fail closed.
var ErrUnavailable = errors.New("store unavailable")

// ErrInvalid wraps the refusal of a request that no correct caller makes
// (an empty ID, a non-positive TTL); both stores check requests the same way
// so that such a bug fails loudly instead of storing a record that never
// expires.
var ErrInvalid = errors.New("invalid store request")

// AnnounceRetention is how long the revocation feed keeps announcements for
// replay. Announce has no retain of its own, so the stores keep this much;
// a Subscribe retain beyond it replays no further back. A revocation
// matters for the access token lifetime (plus skew), so access_ttl is
// limited to 24h.
const AnnounceRetention = 25 * time.Hour

// UserKey is the pseudonymous tag of one phone number, e.g. 22 base64url
// characters. It never contains the phone itself.
type UserKey string

// Store is the state backend.
type Store interface {
	// Hit records one event against a sliding-window limit (a sliding log:
	// at most limit events in any window ending now) and reports whether it
	// was allowed. A refused hit is not recorded. Used for the per-IP send
	// limit; key is an opaque string chosen by the caller (e.g. "ip:1.2.3.4").
	Hit(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (Decision, error)

	// BeginSend atomically runs every per-person check of a send and, when all
	// pass, records the send and stores the new challenge (replacing any
	// earlier one, which makes the old code invalid). Order of checks:
	// opted out, then cooldown, then the per-phone limit, then (only when
	// RequireUser) whether the user exists, then (for a phone change: a
	// challenge with ChangeOf, given or kept on resend) whether a user of
	// another ID has the phone (SendTaken), then whether the user is
	// banned, then whether the person is locked out (see Lockout). An unknown, banned or
	// locked-out person still consumes the phone limit and cooldown (so the
	// answers of known and unknown phones cannot be told apart) but no
	// challenge is stored. With Unlimited the cooldown and limit are skipped.
	// For Resend, the stored challenge's Channel, CreateUser, Metadata,
	// Origin, ChangeOf and ChangeFrom are kept (Channel only when req.Challenge.Channel is empty); when there is no
	// stored challenge the result is SendNoChallenge and nothing is recorded
	// except the limit and cooldown.
	BeginSend(ctx context.Context, req SendRequest) (SendResult, error)

	// AbortSend undoes a BeginSend whose message could not be delivered: it
	// deletes the challenge if it is still the one with challengeID, clears the
	// cooldown and removes the send from the per-phone limit.
	AbortSend(ctx context.Context, user UserKey, challengeID string) error

	// Challenge returns the pending challenge (found=false when there is none)
	// and the person's count of consecutive failed verifies since the last
	// lock. An expired challenge may still be returned; the caller checks
	// ExpiresAt. It is a read: a code is never judged against it (see
	// Attempt).
	Challenge(ctx context.Context, user UserKey) (c Challenge, found bool, failures int, err error)

	// Attempt records one verify attempt before its code is compared, and
	// returns the challenge to compare it with: the challenge's Attempts
	// and the person's consecutive failure count grow by one, as if the
	// code were wrong (Consume takes the failure back when it is right).
	// So no code is ever judged unless its failure is counted: a store that
	// cannot record it answers an error, for a right code as for a wrong one.
	// Nothing is recorded when the person is locked out (AttemptLocked),
	// there is no live challenge (AttemptNoChallenge: none, past its keep,
	// or its MaxAttempts used up) or it has expired (AttemptExpired). A
	// used-up challenge stays until replaced or gone, so that the right
	// code of its last attempt can still be consumed. The failure that brings the count to Lockout.After
	// locks the person out (see Lockout) and starts the count again.
	Attempt(ctx context.Context, req AttemptRequest) (AttemptResult, error)

	// Consume atomically takes the challenge with ChallengeID (only one of
	// any number of concurrent callers gets ConsumeOK), resets the failure
	// count and lifts any lock, finds or creates the user (created only when the challenge had
	// CreateUser; with the challenge's Metadata), marks the phone confirmed,
	// sets LastSignInAt, and creates the session with its first refresh
	// token.
	Consume(ctx context.Context, req ConsumeRequest) (ConsumeResult, error)

	// User returns the user of a key.
	User(ctx context.Context, user UserKey) (User, bool, error)

	// Session returns a session (including revoked and expired ones, so the
	// caller can tell them apart).
	Session(ctx context.Context, user UserKey, sessionID string) (Session, bool, error)

	// Rotate exchanges a refresh token (by hash) for a new one.
	//  - active token: it becomes used (at Now) and NewHash becomes active.
	//  - used token, Now - usedAt <= ReuseInterval: NewHash becomes active as a
	//    sibling (concurrent tabs), the result is RotateOK.
	//  - used token beyond the interval: the whole session is revoked and the
	//    result is RotateReused with the session ID.
	//  - unknown token, expired session, revoked session: RotateNotFound.
	Rotate(ctx context.Context, req RotateRequest) (RotateResult, error)

	// Revoke revokes sessions of one person and returns the IDs it revoked
	// (already revoked ones are not returned). Scope: RevokeOne revokes
	// sessionID; RevokeAll revokes every session; RevokeOthers every session
	// but sessionID. It also announces the revocations on the feed.
	Revoke(ctx context.Context, user UserKey, scope RevokeScope, sessionID string, now time.Time) ([]string, error)

	// Reannounce announces again every session of the person that was
	// revoked within AnnounceRetention before now and has not expired, and
	// returns their IDs (sorted). Announcements are idempotent: this
	// repairs a revocation whose own announcement was lost (a Revoke whose
	// reply never arrived).
	Reannounce(ctx context.Context, user UserKey, now time.Time) ([]string, error)

	// Announce publishes revoked session IDs on the feed (Revoke does this
	// itself; Rotate's reuse revocation needs the caller to announce).
	// Announcements are kept for retain so that a subscriber that reconnects
	// can replay what it missed.
	Announce(ctx context.Context, sessionIDs []string, now time.Time) error

	// Subscribe feeds revocations to h until ctx is done. On every
	// (re)connection it first subscribes, then reports the store's epoch
	// (h.Epoch), then replays announcements since (now - retain), then
	// calls h.Healthy(true). When the connection is lost it calls
	// h.Healthy(false) before trying again. It returns when ctx is done.
	Subscribe(ctx context.Context, retain time.Duration, h FeedHandler)

	// SetOptOut records (out=true) or clears a STOP from the phone's owner.
	SetOptOut(ctx context.Context, user UserKey, out bool, now time.Time) error

	// FirstSeen returns true the first time key is seen within ttl (SET NX);
	// used to refuse replayed callback nonces.
	FirstSeen(ctx context.Context, key string, ttl time.Duration) (bool, error)

	// Forget drops key from FirstSeen's memory, so a callback whose
	// processing failed can be delivered again with the same nonce.
	Forget(ctx context.Context, key string) error

	// Claim stores value under key unless one is there already, and
	// returns what the key holds afterwards. Instances use it to check that
	// they share one server secret.
	Claim(ctx context.Context, key, value string) (string, error)

	// Access reads a session and its user in one round trip: what the gate
	// needs to decide again about a session whose user changed (or while
	// the feed is down). A missing record is reported as not found.
	Access(ctx context.Context, user UserKey, sessionID string) (s Session, sessionFound bool, u User, userFound bool, err error)

	// CreateUser creates a user (an administrator's invitation) unless the
	// person already has one; it returns the stored user and whether this
	// call created it. The user joins the index that ListUsers and
	// UserByID read.
	CreateUser(ctx context.Context, req CreateUserRequest) (User, bool, error)

	// UpdateUser changes the fields of an existing user that the request
	// sets (nil fields stay) and sets UpdatedAt. found=false when the
	// person has no user; nothing is created.
	UpdateUser(ctx context.Context, user UserKey, upd UserUpdate) (u User, found bool, err error)

	// DeleteUser erases the user and every record of the person except the
	// opt-out marker (and the send limits, which protect the phone's
	// owner): challenge, failures, cooldown, sessions, refresh tokens and
	// the index entry. It returns the erased user and the IDs of the
	// sessions that were still active at now (the caller announces them).
	DeleteUser(ctx context.Context, user UserKey, now time.Time) (u User, revoked []string, found bool, err error)

	// ListUsers returns the indexed users in a stable order (by ID),
	// skipping offset of them and returning at most limit, and the total.
	ListUsers(ctx context.Context, offset, limit int) ([]UserEntry, int, error)

	// UserByID finds a user by its ID through the index.
	UserByID(ctx context.Context, id string) (UserEntry, bool, error)

	// Sessions lists the person's sessions that are active at now, oldest
	// first.
	Sessions(ctx context.Context, user UserKey, now time.Time) ([]Session, error)

	// A phone change moves a user to the key of its new phone: the user
	// keeps its ID, and its sessions and refresh tokens follow it with
	// their state. The two keys are two people (two hash slots in a Redis
	// Cluster), so the move is a series of steps, each atomic on one key
	// and each safe to repeat; a move cut short halfway (an instance that
	// died, a store that stopped answering) is completed by the next
	// MoveUser, which the caller runs whenever Moved reports a move
	// Pending or a user is MovingFrom somewhere:
	//
	//  1. ClaimMove (new key): the change's challenge is taken, the new
	//     phone is reserved by a copy of the user marked MovingFrom.
	//  2. MoveUser, out (old key): the user, its sessions and refresh
	//     tokens leave the old key for a move record kept there, with a
	//     forward to the new key.
	//  3. MoveUser, in (new key): the records are brought in (only into a
	//     user still MovingFrom the old key: never twice), the mark goes.
	//  4. MoveUser, index and finish: the user index names the new key,
	//     the move record goes; the forward stays.
	//
	// Tokens issued before the move still name the old key (refresh tokens
	// carry it, access tokens the old phone): a lookup that finds nothing
	// under a key follows its forwards (Moved) to the new one.

	// ClaimMove takes the phone change challenge ChallengeID under User
	// (the new phone's key): it must be a change of Moving.ID from From
	// (Challenge.ChangeOf and ChangeFrom) and not expired; only one of any
	// number of concurrent callers gets MoveDone. Like Consume it
	// resets the person's failure count and lifts any lock. It then
	// creates the user under User as a copy of Moving with the new Phone,
	// ConfirmedAt and UpdatedAt = Now and MovingFrom = From, unless that
	// user (its ID) is there already: then only a MovingFrom it still has
	// (an earlier claim never completed) becomes From. A user of another
	// ID under User
	// takes the challenge too but answers MoveTaken and changes nothing
	// else.
	ClaimMove(ctx context.Context, req ClaimMoveRequest) (MoveStatus, error)

	// MoveUser moves user UserID from key From to key To (steps 2 to 4
	// above) and returns the user under To. It is idempotent: a move done
	// already answers MoveDone again. A Session (with RefreshHash) in the
	// request is created under To once the records are there, as Consume
	// would create it. When the user is no longer under From nor in a
	// move record there (deleted meanwhile), a user still MovingFrom From
	// under To is removed and the result is MoveGone.
	MoveUser(ctx context.Context, req MoveRequest) (MoveResult, error)

	// Moved lists the forwards left under a key by users that moved away
	// from it. A forward is kept until the last session that moved with
	// it has expired, and at least AnnounceRetention.
	Moved(ctx context.Context, user UserKey) ([]Forward, error)

	// Ping checks that the store answers.
	Ping(ctx context.Context) error

	// Close releases the store's resources.
	Close() error
}

// FeedHandler receives the revocation feed.
type FeedHandler interface {
	Revoked(sessionIDs []string)
	Healthy(ok bool)
	// Epoch reports when the store's data began (wall clock). A store
	// that loses its data (a Redis restarted without persistence, a
	// flush) begins a new epoch: what it held before, revocations and
	// their log included, may be gone, so everything learnt from it
	// before must be checked again.
	Epoch(began time.Time)
}

// Decision is the answer of a limit.
type Decision struct {
	Allowed    bool
	Remaining  int
	RetryAfter time.Duration // > 0 when refused: when the oldest event leaves the window
}

// Limit is N events per Window.
type Limit struct {
	N      int
	Window time.Duration
}

// Challenge is one pending code.
type Challenge struct {
	ID         string // random, unique per send
	CodeMAC    []byte // HMAC of phone and code under the server secret
	Phone      string // E.164
	Channel    string // "sms" or "whatsapp"
	CreateUser bool   // create the user on verify
	Metadata   []byte // JSON object for user_metadata on creation; may be nil
	Origin     string // the Origin of a user created on verify (OriginSignup or OriginList)

	// ChangeOf, for a phone change, is the ID of the user whose phone
	// becomes this one, and ChangeFrom the key of its records when the
	// code was sent; both are empty for a sign-in. A resend keeps them.
	ChangeOf   string
	ChangeFrom UserKey

	// HasUser is filled in by Store.Challenge, not stored: whether the
	// person had a user when the challenge was read. Passed back as
	// ConsumeRequest.NewUser, it lets a store prepare a creation in the
	// round trip of the Consume itself.
	HasUser   bool
	SentAt    time.Time //
	ExpiresAt time.Time //
	Attempts  int       // wrong codes so far
}

// SendRequest is the input of BeginSend.
type SendRequest struct {
	User        UserKey
	Now         time.Time
	Challenge   Challenge     // the new challenge (Attempts 0)
	Keep        time.Duration // how long the challenge record is kept (>= code TTL, so resend works a while after expiry)
	PhoneLimit  Limit
	Cooldown    time.Duration // 0 disables
	RequireUser bool          // the request did not ask to create a user
	Resend      bool
	// ListedOK: a user whose Origin is OriginList counts as existing for
	// RequireUser (its phone is still listed, or sign-up is open).
	ListedOK bool
	// Unlimited skips the cooldown and the per-phone limit, recording
	// neither: for test phones, which send nothing.
	Unlimited bool
}

// SendStatus is the outcome of BeginSend.
type SendStatus int

const (
	SendOK SendStatus = iota
	SendUnknownUser
	SendNoChallenge
	SendOptedOut
	SendCooldown
	SendPhoneLimited
	SendBanned // the user is banned: counted like an unknown user, no challenge stored
	SendLocked // the person is locked out after failed verifies: counted like an unknown user, no challenge stored
	SendTaken  // a phone change to a phone that has a user of another ID: counted like an unknown user, no challenge stored
)

func (s SendStatus) String() string {
	switch s {
	case SendOK:
		return "ok"
	case SendUnknownUser:
		return "unknown_user"
	case SendNoChallenge:
		return "no_challenge"
	case SendOptedOut:
		return "opted_out"
	case SendCooldown:
		return "cooldown"
	case SendPhoneLimited:
		return "phone_limited"
	case SendBanned:
		return "banned"
	case SendLocked:
		return "locked"
	case SendTaken:
		return "taken"
	}
	return "unknown"
}

// SendResult is the output of BeginSend.
type SendResult struct {
	Status     SendStatus
	RetryAfter time.Duration // for SendCooldown and SendPhoneLimited
	Challenge  Challenge     // the stored challenge (for Resend: with the kept fields)
}

// Lockout locks a person out of verifying (and out of sends, which are
// suppressed) after After consecutive failed verifies: the first lock
// lasts Base, each further one twice the one before, at most Max. The
// failure count is forgotten Memory after the last failure, and the
// number of locks so far Memory after the later of the last failure and
// the end of the last lock; a right code forgets both.
type Lockout struct {
	After  int
	Base   time.Duration
	Max    time.Duration
	Memory time.Duration
}

// AttemptRequest is the input of Attempt.
type AttemptRequest struct {
	User        UserKey
	Now         time.Time
	MaxAttempts int // comparisons per challenge
	Lockout     Lockout
}

// AttemptStatus is the outcome of Attempt.
type AttemptStatus int

const (
	AttemptOK          AttemptStatus = iota // recorded: compare the code with Challenge
	AttemptNoChallenge                      // nothing to compare with; nothing recorded
	AttemptExpired                          // the code has expired; nothing recorded
	AttemptLocked                           // the person is locked out; nothing recorded
)

func (s AttemptStatus) String() string {
	switch s {
	case AttemptOK:
		return "ok"
	case AttemptNoChallenge:
		return "no_challenge"
	case AttemptExpired:
		return "expired"
	case AttemptLocked:
		return "locked"
	}
	return "unknown"
}

// AttemptResult is the output of Attempt.
type AttemptResult struct {
	Status AttemptStatus
	// Challenge, for AttemptOK: Attempts counts this attempt, HasUser is
	// filled in.
	Challenge Challenge
	// Failures, for AttemptOK: consecutive failures counting this attempt
	// (Lockout.After when this attempt started a lock).
	Failures int
	// Locked: for AttemptLocked, how long the lock still lasts; for
	// AttemptOK, the lock this attempt started (0 for none), which a right
	// code's Consume lifts.
	Locked time.Duration
}

// ConsumeRequest is the input of Consume.
type ConsumeRequest struct {
	User        UserKey
	ChallengeID string
	Now         time.Time
	NewUserID   string  // used if the user is created
	Session     Session // with IP and UserAgent of the sign-in
	RefreshHash string  // hash of the first refresh token
	// NewUser is a hint: the challenge was read without a user (see
	// Challenge.HasUser), so this Consume probably creates one. It never
	// changes the result.
	NewUser bool
	// ListedOK: an existing user whose Origin is OriginList may sign in
	// (its phone is still listed, or sign-up is open); otherwise such a
	// user gets ConsumeNoUser.
	ListedOK bool
}

// ConsumeStatus is the outcome of Consume.
type ConsumeStatus int

const (
	ConsumeOK     ConsumeStatus = iota
	ConsumeGone                 // someone else took it, or it expired or changed
	ConsumeNoUser               // the challenge did not allow creating the user and there is none
	ConsumeBanned               // the user is banned at Now: the challenge is consumed, no session
)

// ConsumeResult is the output of Consume.
type ConsumeResult struct {
	Status  ConsumeStatus
	User    User
	Created bool
}

// User origins: how a user came to exist. A user whose origin is
// OriginList exists only because its phone is listed in the `users`
// option; under closed sign-up it stops being known when it is unlisted.
const (
	OriginSignup = "signup" // created by a sign-in that asked to create it
	OriginList   = "list"   // created by the first sign-in of a listed phone
	OriginAdmin  = "admin"  // created by an administrator
)

// User is a person who verified a phone, or whom an administrator invited.
type User struct {
	ID           string
	Phone        string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	ConfirmedAt  time.Time // zero until the phone was verified (admin invitations)
	LastSignInAt time.Time
	Metadata     []byte    // JSON object or nil
	Roles        []string  // granted by an administrator; sorted, no duplicates
	BannedUntil  time.Time // zero: not banned
	Origin       string    // OriginSignup, OriginList or OriginAdmin ("" for users older than origins: treated as signup)
	// MovingFrom is set while a phone change brings this user's records
	// from that key (ClaimMove until MoveUser): the caller completes the
	// move (MoveUser) before relying on the user.
	MovingFrom UserKey
}

// Banned reports whether the user is banned at now.
func (u User) Banned(now time.Time) bool { return now.Before(u.BannedUntil) }

// UserEntry is a user with the key of its records.
type UserEntry struct {
	Key  UserKey
	User User
}

// CreateUserRequest is the input of CreateUser.
type CreateUserRequest struct {
	User      UserKey
	ID        string
	Phone     string // E.164
	Now       time.Time
	Roles     []string
	Metadata  []byte // JSON object or nil
	Confirmed bool   // the phone counts as verified (ConfirmedAt = Now)
}

// UserUpdate is the input of UpdateUser; nil fields are left as they are.
type UserUpdate struct {
	Now         time.Time
	Roles       *[]string
	BannedUntil *time.Time // a zero time lifts a ban
	Metadata    *[]byte    // replaces user_metadata; empty: none
	Confirmed   bool       // set ConfirmedAt to Now if it is zero
}

// ClaimMoveRequest is the input of ClaimMove.
type ClaimMoveRequest struct {
	User        UserKey // the new phone's key
	ChallengeID string
	Now         time.Time
	From        UserKey // the key the user's records live under now
	Moving      User    // the user as read under From, with the new Phone
}

// MoveRequest is the input of MoveUser.
type MoveRequest struct {
	From   UserKey
	To     UserKey
	UserID string
	Now    time.Time
	// Session, when not nil, is started under To once the user's records
	// are there, with RefreshHash as its first refresh token (the
	// session of the verify that completes the change).
	Session     *Session
	RefreshHash string
}

// MoveStatus is the outcome of ClaimMove and MoveUser.
type MoveStatus int

const (
	MoveDone  MoveStatus = iota // ClaimMove: the challenge is taken and the phone reserved; MoveUser: the user is under To
	MoveGone                    // ClaimMove: no such change challenge (taken, replaced, expired); MoveUser: the user is gone
	MoveTaken                   // ClaimMove: another user has the new phone
)

func (s MoveStatus) String() string {
	switch s {
	case MoveDone:
		return "done"
	case MoveGone:
		return "gone"
	case MoveTaken:
		return "taken"
	}
	return "unknown"
}

// MoveResult is the output of MoveUser.
type MoveResult struct {
	Status MoveStatus
	User   User // for MoveDone
}

// Forward is what a user that moved away from a key left there.
type Forward struct {
	UserID string
	To     UserKey
	// Pending: the move's record is still kept here (the move did not
	// finish): MoveUser(From: here, To, UserID) completes it.
	Pending bool
}

// Check refuses a ClaimMoveRequest without what a move needs.
func (r ClaimMoveRequest) Check() error {
	switch {
	case r.User == "" || r.From == "":
		return invalid("empty user key")
	case r.User == r.From:
		return invalid("move to the same key")
	case r.Now.IsZero():
		return invalid("zero now")
	case r.ChallengeID == "":
		return invalid("empty challenge id")
	case r.Moving.ID == "" || r.Moving.Phone == "":
		return invalid("empty user id or phone")
	}
	return nil
}

// Check refuses a MoveRequest without what a move needs.
func (r MoveRequest) Check() error {
	switch {
	case r.From == "" || r.To == "":
		return invalid("empty user key")
	case r.From == r.To:
		return invalid("move to the same key")
	case r.UserID == "":
		return invalid("empty user id")
	case r.Now.IsZero():
		return invalid("zero now")
	case r.Session != nil && (r.Session.ID == "" || r.RefreshHash == "" || !r.Session.ExpiresAt.After(r.Now)):
		return invalid("move session without id, refresh hash or future expiry")
	}
	return nil
}

// Session is one sign-in.
type Session struct {
	ID          string
	User        UserKey
	UserID      string
	CreatedAt   time.Time
	ExpiresAt   time.Time // end of the refresh lifetime
	RevokedAt   time.Time // zero while active
	RefreshedAt time.Time // last refresh; zero before the first
	IP          string    // client IP of the sign-in
	UserAgent   string    // User-Agent of the sign-in (at most 512 bytes)
}

// Active reports whether the session may be used at now.
func (s Session) Active(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt)
}

// RotateRequest is the input of Rotate.
type RotateRequest struct {
	User          UserKey
	OldHash       string
	NewHash       string
	Now           time.Time
	ReuseInterval time.Duration
	// Inactivity, when > 0, ends a session whose last refresh (or its
	// sign-in, before any refresh) is more than Inactivity before Now: the
	// session is revoked and the result is RotateIdle.
	Inactivity time.Duration
}

// RotateStatus is the outcome of Rotate.
type RotateStatus int

const (
	RotateOK RotateStatus = iota
	RotateNotFound
	RotateReused
	RotateIdle // the session was unused for longer than Inactivity: revoked now
)

// RotateResult is the output of Rotate.
type RotateResult struct {
	Status  RotateStatus
	Session Session // for RotateOK, RotateReused and RotateIdle (RefreshedAt = Now for RotateOK)
	User    User    // for RotateOK
}

// RevokeScope selects the sessions Revoke acts on.
type RevokeScope int

const (
	RevokeOne RevokeScope = iota
	RevokeAll
	RevokeOthers
)

func (s RevokeScope) String() string {
	switch s {
	case RevokeOne:
		return "one"
	case RevokeAll:
		return "all"
	case RevokeOthers:
		return "others"
	}
	return "unknown"
}

func invalid(what string) error {
	return fmt.Errorf("%w: %s", ErrInvalid, what)
}

// NormRoles sorts and deduplicates roles. The Redis store keeps them as
// one comma-separated field, so both stores refuse an empty role or one
// with a comma.
func NormRoles(roles []string) ([]string, error) {
	for _, r := range roles {
		if r == "" || strings.Contains(r, ",") {
			return nil, fmt.Errorf("%w: role %q empty or with a comma", ErrInvalid, r)
		}
	}
	if len(roles) == 0 {
		return nil, nil
	}
	out := slices.Clone(roles)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// CheckUserID refuses a user ID the index could not tell from its key:
// an index member is "<id>:<user>".
func CheckUserID(id string) error {
	if strings.Contains(id, ":") {
		return fmt.Errorf("%w: user id with ':'", ErrInvalid)
	}
	return nil
}

// CheckLimit refuses a limit no store can keep.
func CheckLimit(window time.Duration) error {
	if window < time.Millisecond {
		return invalid("limit window under 1ms")
	}
	return nil
}

// Check refuses a SendRequest that would store unusable or immortal records.
func (r SendRequest) Check() error {
	switch {
	case r.User == "":
		return invalid("empty user key")
	case r.Now.IsZero():
		return invalid("zero now")
	case r.Challenge.ID == "":
		return invalid("empty challenge id")
	case r.Keep < time.Millisecond:
		return invalid("keep under 1ms")
	case r.Cooldown < 0:
		return invalid("negative cooldown")
	}
	return CheckLimit(r.PhoneLimit.Window)
}

// Check refuses an AttemptRequest that would keep a failure count or a
// lock forever, or never lock.
func (r AttemptRequest) Check() error {
	switch {
	case r.User == "":
		return invalid("empty user key")
	case r.Now.IsZero():
		return invalid("zero now")
	case r.MaxAttempts < 1:
		return invalid("max attempts under 1")
	case r.Lockout.After < 1:
		return invalid("lockout after under 1 failure")
	case r.Lockout.Base < time.Millisecond || r.Lockout.Max < r.Lockout.Base:
		return invalid("lockout base under 1ms or above max")
	case r.Lockout.Memory < time.Millisecond:
		return invalid("failure memory under 1ms")
	}
	return nil
}

// Check refuses a ConsumeRequest that would create an unusable session.
func (r ConsumeRequest) Check() error {
	switch {
	case r.User == "":
		return invalid("empty user key")
	case r.Now.IsZero():
		return invalid("zero now")
	case r.ChallengeID == "":
		return invalid("empty challenge id")
	case r.NewUserID == "":
		return invalid("empty new user id")
	case r.Session.ID == "":
		return invalid("empty session id")
	case r.RefreshHash == "":
		return invalid("empty refresh hash")
	case !r.Session.ExpiresAt.After(r.Now):
		return invalid("session expires before now")
	}
	return nil
}

// Check refuses a RotateRequest that could not be told apart from its own
// old token.
func (r RotateRequest) Check() error {
	switch {
	case r.User == "":
		return invalid("empty user key")
	case r.Now.IsZero():
		return invalid("zero now")
	case r.OldHash == "" || r.NewHash == "":
		return invalid("empty refresh hash")
	case r.OldHash == r.NewHash:
		return invalid("new refresh hash equals old")
	case r.ReuseInterval < 0:
		return invalid("negative reuse interval")
	case r.Inactivity < 0:
		return invalid("negative inactivity")
	}
	return nil
}

// Check refuses a CreateUserRequest without what every user has.
func (r CreateUserRequest) Check() error {
	switch {
	case r.User == "":
		return invalid("empty user key")
	case r.ID == "" || r.Phone == "":
		return invalid("empty user id or phone")
	case r.Now.IsZero():
		return invalid("zero now")
	}
	return nil
}

// Check refuses a UserUpdate without a time.
func (u UserUpdate) Check() error {
	if u.Now.IsZero() {
		return invalid("zero now")
	}
	return nil
}
