package store

import (
	"context"
	"time"
	"unicode/utf8"
)

// Sessions keeps sign-ins and their refresh tokens.
type Sessions interface {
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

	// Sessions lists the person's sessions that are active at now, oldest
	// first.
	Sessions(ctx context.Context, user UserKey, now time.Time) ([]Session, error)

	// Access reads a session and its user in one round trip: what the gate
	// needs to decide again about a session whose user changed (or while
	// the feed is down). A missing record is reported as not found.
	Access(ctx context.Context, user UserKey, sessionID string) (s Session, sessionFound bool, u User, userFound bool, err error)
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

// Check refuses a RotateRequest that could not be told apart from its own
// old token.
func (r RotateRequest) Check() error {
	if err := CheckUserKey(r.User); err != nil {
		return err
	}
	switch {
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

// MaxUserAgent is the longest User-Agent a session keeps.
const MaxUserAgent = 512

// ClipUserAgent cuts a session's User-Agent to MaxUserAgent bytes without
// splitting a UTF-8 sequence.
func ClipUserAgent(ua string) string {
	n := MaxUserAgent
	if len(ua) <= n {
		return ua
	}
	for n > 0 && !utf8.RuneStart(ua[n]) {
		n--
	}
	return ua[:n]
}
