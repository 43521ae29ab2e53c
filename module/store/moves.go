package store

import (
	"context"
	"time"
)

// Moves carries out phone changes. A phone change moves a user to the key
// of its new phone: the user keeps its ID, and its sessions and refresh
// tokens follow it with their state. The two keys are two people (two hash
// slots in a Redis Cluster), so the move is a series of steps, each atomic
// on one key and each safe to repeat; a move cut short halfway (an
// instance that died, a store that stopped answering) is completed by the
// next MoveUser, which the caller runs whenever Moved reports a move
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
type Moves interface {
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
}

// ClaimMoveRequest is the input of ClaimMove.
type ClaimMoveRequest struct {
	User        UserKey // the new phone's key
	ChallengeID string
	Now         time.Time
	From        UserKey // the key the user's records live under now
	Moving      User    // the user as read under From, with the new Phone
}

// Check refuses a ClaimMoveRequest without what a move needs.
func (r ClaimMoveRequest) Check() error {
	for _, k := range []UserKey{r.User, r.From} {
		if err := CheckUserKey(k); err != nil {
			return err
		}
	}
	if err := CheckUserID(r.Moving.ID); err != nil {
		return err
	}
	switch {
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

// Check refuses a MoveRequest without what a move needs.
func (r MoveRequest) Check() error {
	for _, k := range []UserKey{r.From, r.To} {
		if err := CheckUserKey(k); err != nil {
			return err
		}
	}
	if err := CheckUserID(r.UserID); err != nil {
		return err
	}
	switch {
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
