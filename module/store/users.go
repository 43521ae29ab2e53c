package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Users keeps the users and the index that administrators read.
type Users interface {
	// User returns the user of a key.
	User(ctx context.Context, user UserKey) (User, bool, error)

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

// Check refuses a CreateUserRequest without what every user has.
func (r CreateUserRequest) Check() error {
	if err := CheckUserKey(r.User); err != nil {
		return err
	}
	if err := CheckUserID(r.ID); err != nil {
		return err
	}
	switch {
	case r.ID == "" || r.Phone == "":
		return invalid("empty user id or phone")
	case r.Now.IsZero():
		return invalid("zero now")
	}
	return nil
}

// UserUpdate is the input of UpdateUser; nil fields are left as they are.
type UserUpdate struct {
	Now         time.Time
	Roles       *[]string
	BannedUntil *time.Time // a zero time lifts a ban
	Metadata    *[]byte    // replaces user_metadata; empty: none
	Confirmed   bool       // set ConfirmedAt to Now if it is zero
}

// Check refuses a UserUpdate without a time.
func (u UserUpdate) Check() error {
	if u.Now.IsZero() {
		return invalid("zero now")
	}
	return nil
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

// CheckUserKey refuses a user key the Redis store cannot use: it is the
// hash tag of the person's keys there ({<key>}), so it must not be empty
// nor hold a brace. Both stores refuse the same keys.
func CheckUserKey(k UserKey) error {
	if k == "" || strings.ContainsAny(string(k), "{}") {
		return fmt.Errorf("%w: user key empty or with braces", ErrInvalid)
	}
	return nil
}

// CheckUserID refuses a user ID the index could not tell from its key:
// an index member is "<id>:<user>".
func CheckUserID(id string) error {
	if strings.Contains(id, ":") {
		return fmt.Errorf("%w: user id with ':'", ErrInvalid)
	}
	return nil
}
