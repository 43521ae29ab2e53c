package store

import (
	"context"
	"time"
)

// Challenges keeps the codes sent to people and everything that guards
// them: the per-phone limit, cooldowns, opt-outs, counted attempts and
// lockouts. A consumed code signs its person in.
type Challenges interface {
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

	// SetOptOut records (out=true) or clears a STOP from the phone's owner.
	SetOptOut(ctx context.Context, user UserKey, out bool, now time.Time) error
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

// Check refuses a SendRequest that would store unusable or immortal records.
func (r SendRequest) Check() error {
	if err := CheckUserKey(r.User); err != nil {
		return err
	}
	switch {
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

// Check refuses an AttemptRequest that would keep a failure count or a
// lock forever, or never lock.
func (r AttemptRequest) Check() error {
	if err := CheckUserKey(r.User); err != nil {
		return err
	}
	switch {
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

// Check refuses a ConsumeRequest that would create an unusable session.
func (r ConsumeRequest) Check() error {
	if err := CheckUserKey(r.User); err != nil {
		return err
	}
	if err := CheckUserID(r.NewUserID); err != nil {
		return err
	}
	switch {
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
