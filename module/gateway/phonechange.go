package gateway

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/phone"
	"github.com/otpgate/otpgate/module/store"
)

// Phone changes.
//
// A person's records live under the key of their phone (userKey), so a
// phone change moves the user, its sessions and refresh tokens to the new
// phone's key (store.ClaimMove, store.MoveUser), keeping the user ID and
// every session ID. Tokens issued before the move still point at the old
// key (refresh tokens carry it, access tokens the old phone): a lookup that
// finds nothing there follows the forward the move left behind (homes).
// Sessions therefore continue; their next refresh signs the new phone.

// maxMoveHops bounds how many forwards a lookup follows (a phone changed
// back and forth within a session's life).
const maxMoveHops = 4

// changeRequest marks a send as the code of a phone change.
type changeRequest struct {
	UserID string
	From   store.UserKey // where the user's records are now
}

// verifyChange completes a phone change whose code (challenge c, under the
// new phone's key uk) was right: the user moves to uk, and a new session
// starts there.
func (g *Gateway) verifyChange(ctx context.Context, c store.Challenge, uk store.UserKey, actor Actor, now time.Time) verifyResult {
	num, err := parsePhone(c.Phone)
	if err != nil {
		return otpRefused(phone.Number{}, "change_bad_phone")
	}
	old, ok, err := g.cfg.Store.User(ctx, c.ChangeFrom)
	if err != nil {
		return verifyRefused(num, storeError(err))
	}
	if !ok || old.ID != c.ChangeOf {
		// deleted, or moved elsewhere since the code was sent
		return otpRefused(num, "change_user_gone")
	}
	moving := old
	moving.Phone = num.E164
	moving.MovingFrom = ""
	if _, deny := g.admit(moving, now); deny != "" {
		return otpRefused(num, deny)
	}
	st, err := g.cfg.Store.ClaimMove(ctx, store.ClaimMoveRequest{User: uk, ChallengeID: c.ID, Now: now, From: c.ChangeFrom, Moving: moving})
	if err != nil {
		return verifyRefused(num, storeError(err))
	}
	switch st {
	case store.MoveDone:
	case store.MoveTaken:
		res := verifyRefused(num, apierr.New(http.StatusUnprocessableEntity, apierr.PhoneExists, "This phone number is already in use by another account."))
		res.outcome = "phone_taken"
		return res
	default:
		return otpRefused(num, "consumed_elsewhere")
	}
	sess, refresh, refreshHash, err := g.newSession(uk, now, actor)
	if err != nil {
		return verifyRefused(num, err)
	}
	sess.UserID = old.ID
	res, err := g.cfg.Store.MoveUser(ctx, store.MoveRequest{From: c.ChangeFrom, To: uk, UserID: old.ID, Now: now, Session: &sess, RefreshHash: refreshHash})
	if err != nil {
		// the move may be halfway: the next lookup of its forward, or the
		// next look at the user under the new key, completes it
		return verifyRefused(num, storeError(err))
	}
	if res.Status != store.MoveDone {
		return otpRefused(num, "change_user_gone")
	}
	// Every instance checks this user's tokens in the store again: what
	// the users list gives depends on the phone.
	g.announceUserChange(ctx, res.User.ID, now)
	roles, deny := g.admit(res.User, now)
	if deny != "" {
		g.endSessions(ctx, uk, []string{sess.ID}, now)
		return otpRefused(num, deny)
	}
	out, err := g.issue(res.User, sess, refresh, now, roles)
	if err != nil {
		return verifyRefused(num, err)
	}
	oldMasked := ""
	if n, err := parsePhone(old.Phone); err == nil {
		oldMasked = n.Masked()
	}
	g.auditEvent("phone_changed", append(auditFields(actor, res.User.ID, sess.ID, num.E164), zap.String("old_phone", oldMasked))...)
	return verifyResult{num: num, out: out, outcome: "ok", fields: []zap.Field{zap.Bool("phone_changed", true)}}
}

// settle completes the phone change that is bringing u's records to uk,
// if any (a move cut short), and returns the user as it is then. When the
// move cannot be completed now, u (a full copy of the user) stands in.
func (g *Gateway) settle(ctx context.Context, uk store.UserKey, u store.User) store.User {
	if u.MovingFrom == "" {
		return u
	}
	res, err := g.cfg.Store.MoveUser(context.WithoutCancel(ctx), store.MoveRequest{From: u.MovingFrom, To: uk, UserID: u.ID, Now: g.now()})
	if err != nil {
		g.log.Warn("completing a phone change", zap.Error(err))
		return u
	}
	if res.Status == store.MoveDone {
		g.announceUserChange(ctx, u.ID, g.now())
		return res.User
	}
	return u
}

// homes yields uk and then the keys the records of userID (of any user,
// for "") moved to from it, for lookups by a token issued before a phone
// change: find is called on each until it reports found. Moves cut short
// are completed on the way.
func (g *Gateway) homes(ctx context.Context, uk store.UserKey, userID string, find func(store.UserKey) (bool, error)) (store.UserKey, bool, error) {
	seen := map[store.UserKey]bool{}
	queue := []store.UserKey{uk}
	for hops := 0; len(queue) > 0 && hops <= maxMoveHops; hops++ {
		k := queue[0]
		queue = queue[1:]
		if seen[k] {
			continue
		}
		seen[k] = true
		found, err := find(k)
		if err != nil || found {
			return k, found, err
		}
		fw, err := g.cfg.Store.Moved(ctx, k)
		if err != nil {
			return k, false, err
		}
		for _, f := range fw {
			if userID != "" && f.UserID != userID {
				continue
			}
			if f.Pending {
				if _, err := g.cfg.Store.MoveUser(context.WithoutCancel(ctx), store.MoveRequest{From: k, To: f.To, UserID: f.UserID, Now: g.now()}); err != nil {
					return k, false, err
				}
				g.announceUserChange(ctx, f.UserID, g.now())
			}
			queue = append(queue, f.To)
		}
	}
	return uk, false, nil
}
