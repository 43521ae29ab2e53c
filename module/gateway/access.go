package gateway

import (
	"context"
	"slices"
	"time"

	"github.com/otpgate/otpgate/module/session"
	"github.com/otpgate/otpgate/module/store"
)

// Reasons a known session is no longer let in. They name the outcome in
// metrics and logs.
const (
	denyRevoked   = "revoked"
	denyDeleted   = "user_deleted"
	denyBanned    = "banned"
	denyUnlisted  = "not_listed"
	denyNoSession = "session_not_found"
)

// listed reports whether a phone is on the users list (test phones are
// listed users) and the roles the list gives it.
func (g *Gateway) listed(e164 string) ([]string, bool) {
	roles, ok := g.cfg.Roster.Lookup(e164)
	if ok {
		return roles, true
	}
	_, test := g.cfg.TestPhones[e164]
	return nil, test
}

// listedOK: whether a user that exists only because of the list still
// counts as known.
func (g *Gateway) listedOK(e164 string) bool {
	if g.cfg.OpenSignup {
		return true
	}
	_, ok := g.listed(e164)
	return ok
}

// signupPolicy decides what a send may do for a phone: create the user on
// verify (and with which origin), or only sign in a known one. The client's
// create_user can narrow the server's policy, never widen it: under closed
// sign-up only listed phones may become users.
func (g *Gateway) signupPolicy(e164 string, clientCreate *bool) (create bool, origin string) {
	if _, ok := g.listed(e164); ok {
		return true, store.OriginList
	}
	if !g.cfg.OpenSignup {
		return false, ""
	}
	create = g.cfg.CreateUser
	if clientCreate != nil {
		create = *clientCreate
	}
	return create, store.OriginSignup
}

// admit decides whether a stored user may hold a session now, and with
// which roles: those of its users line plus those an administrator gave it.
// deny is empty when it may.
func (g *Gateway) admit(u store.User, now time.Time) (roles []string, deny string) {
	if u.Banned(now) {
		return nil, denyBanned
	}
	listRoles, listed := g.listed(u.Phone)
	if u.Origin == store.OriginList && !listed && !g.cfg.OpenSignup {
		return nil, denyUnlisted
	}
	return unionRoles(listRoles, u.Roles), ""
}

func unionRoles(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// recheck confirms a session and its user in the store: for tokens that may
// predate a change of their user's access, and for every request while the
// feed is down. It returns the claims with the user's current roles.
func (g *Gateway) recheck(ctx context.Context, c session.Claims, now time.Time) (session.Claims, string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var (
		sess     store.Session
		u        store.User
		sok, uok bool
	)
	// the session lives under its phone's key, or where its user moved
	uk, _, err := g.homes(ctx, g.userKey(c.Phone), c.Subject, func(k store.UserKey) (bool, error) {
		var err error
		sess, sok, u, uok, err = g.cfg.Store.Access(ctx, k, c.SessionID)
		return sok, err
	})
	if err != nil {
		return c, "", err
	}
	if uok {
		u = g.settle(ctx, uk, u)
	}
	if !sok || !sess.Active(now) {
		if sok && !sess.RevokedAt.IsZero() {
			g.revokedSeen(uk, c.SessionID, now)
		}
		return c, denyRevoked, nil
	}
	if !uok || u.ID != c.Subject {
		return c, denyDeleted, nil
	}
	roles, deny := g.admit(u, now)
	if deny != "" {
		return c, deny, nil
	}
	c.Roles = roles
	// after a phone change the old number may soon belong to someone
	// else: the upstream must see the user's phone as the store has it
	c.Phone = u.Phone
	c.CheckedAt = now
	return c, "", nil
}

// accessTTL is the lifetime of access tokens: access_ttl, but with an
// inactivity timeout at most a tenth of it, so that a session in use is
// refreshed (which records its activity) often enough, and an unused one
// has no valid access token long after it ends.
func (g *Gateway) accessTTL() time.Duration {
	ttl := g.cfg.AccessTTL
	if t := g.cfg.Inactivity; t > 0 && t/10 < ttl {
		ttl = max(t/10, time.Second)
	}
	return ttl
}
