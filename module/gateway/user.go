package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/session"
	"github.com/otpgate/otpgate/module/store"
)

// PUT /user (auth-js updateUser) and phone changes.
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

// updateUserRequest is the body of PUT /user. auth-js sends its whole
// attributes object plus code_challenge and code_challenge_method; other
// clients send what they were given.
type updateUserRequest struct {
	Data     json.RawMessage `json:"data"`
	Phone    *string         `json:"phone"`
	Channel  string          `json:"channel"`
	Email    *string         `json:"email"`
	Password *string         `json:"password"`
}

// changeRequest marks a send as the code of a phone change.
type changeRequest struct {
	UserID string
	From   store.UserKey // where the user's records are now
}

// updateUserResponse is the user object, with GoTrue's fields of a phone
// change in progress.
type updateUserResponse struct {
	userJSON
	NewPhone          string     `json:"new_phone,omitempty"`
	PhoneChangeSentAt *time.Time `json:"phone_change_sent_at,omitempty"`
}

func (g *Gateway) serveUpdateUser(w http.ResponseWriter, r *http.Request, clientIP string) error {
	claims, uk, err := g.authenticate(r)
	if err != nil {
		return err
	}
	var req updateUserRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	out, err := g.updateUser(r.Context(), claims, uk, req, clientIP, actorOf(r, clientIP, "user"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (g *Gateway) updateUser(ctx context.Context, claims session.Claims, uk store.UserKey, req updateUserRequest, clientIP string, actor Actor) (updateUserResponse, error) {
	if (req.Email != nil && *req.Email != "") || (req.Password != nil && *req.Password != "") {
		return updateUserResponse{}, apierr.New(http.StatusBadRequest, apierr.ValidationFailed,
			"Only phone and data can be changed: this server signs in with phone codes, without email or password.")
	}
	var patch []byte
	if len(req.Data) > 0 && string(req.Data) != "null" {
		var obj map[string]json.RawMessage
		if json.Unmarshal(req.Data, &obj) != nil || obj == nil {
			return updateUserResponse{}, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "data must be a JSON object.")
		}
		patch = req.Data
	}
	var newPhone string
	if req.Phone != nil && strings.TrimSpace(*req.Phone) != "" {
		num, err := parsePhone(*req.Phone)
		if err != nil {
			return updateUserResponse{}, phoneError(err)
		}
		if err := g.cfg.Policy.Allow(num); err != nil {
			return updateUserResponse{}, phoneError(err)
		}
		newPhone = num.E164
	}
	switch req.Channel {
	case "", "sms", "whatsapp", "voice":
	default:
		return updateUserResponse{}, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, `channel must be "sms", "whatsapp" or "voice".`)
	}

	u, ok, err := g.cfg.Store.User(ctx, uk)
	if err != nil {
		return updateUserResponse{}, storeError(err)
	}
	if !ok || u.ID != claims.Subject {
		return updateUserResponse{}, errUserNotFound()
	}
	u = g.settle(ctx, uk, u)
	now := g.now()
	if newPhone == u.Phone {
		newPhone = "" // no change
	}
	if newPhone != "" && u.Origin == store.OriginList && !g.cfg.OpenSignup {
		// A user that exists because its phone is listed would lose its
		// access by moving to an unlisted one. It is refused whatever the
		// new phone, so that the answer tells nobody which phones are
		// listed.
		return updateUserResponse{}, apierr.New(http.StatusForbidden, apierr.PhoneNotAllowed,
			"This account's access comes from its phone being listed; an administrator must change it.")
	}
	if patch != nil {
		merged, err := mergeMetadata(u.Metadata, patch)
		if err != nil {
			return updateUserResponse{}, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "data must be a JSON object.")
		}
		if len(merged) > maxMetadata {
			return updateUserResponse{}, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "user_metadata must be at most 4 KiB in all.")
		}
		upd, found, err := g.cfg.Store.UpdateUser(ctx, uk, store.UserUpdate{Now: now, Metadata: &merged})
		if err != nil {
			return updateUserResponse{}, storeError(err)
		}
		if !found {
			return updateUserResponse{}, errUserNotFound()
		}
		u = upd
		g.auditEvent("user_updated", append(auditFields(actor, u.ID, claims.SessionID, u.Phone), zap.String("changed", "user_metadata"))...)
	}
	out := updateUserResponse{userJSON: g.userJSON(u)}
	if newPhone == "" {
		return out, nil
	}
	if _, err := g.Send(ctx, sendRequest{Phone: newPhone, Channel: req.Channel, change: &changeRequest{UserID: u.ID, From: uk}}, clientIP, false); err != nil {
		return updateUserResponse{}, err
	}
	sent := now.UTC()
	out.NewPhone = apiPhone(newPhone)
	out.PhoneChangeSentAt = &sent
	return out, nil
}

// verifyChange completes a phone change whose code (challenge c, under the
// new phone's key uk) was right: the user moves to uk, and a new session
// starts there.
func (g *Gateway) verifyChange(ctx context.Context, c store.Challenge, uk store.UserKey, clientIP string, actor Actor, now time.Time) (tokenResponse, error) {
	num, err := parsePhone(c.Phone)
	if err != nil {
		return tokenResponse{}, errOTP()
	}
	old, ok, err := g.cfg.Store.User(ctx, c.ChangeFrom)
	if err != nil {
		return tokenResponse{}, storeError(err)
	}
	if !ok || old.ID != c.ChangeOf {
		// deleted, or moved elsewhere since the code was sent
		g.refuseOTP(ctx, num, clientIP, "change_user_gone")
		return tokenResponse{}, errOTP()
	}
	moving := old
	moving.Phone = num.E164
	moving.MovingFrom = ""
	if _, deny := g.admit(moving, now); deny != "" {
		g.refuseOTP(ctx, num, clientIP, deny)
		return tokenResponse{}, errOTP()
	}
	st, err := g.cfg.Store.ClaimMove(ctx, store.ClaimMoveRequest{User: uk, ChallengeID: c.ID, Now: now, From: c.ChangeFrom, Moving: moving})
	if err != nil {
		return tokenResponse{}, storeError(err)
	}
	switch st {
	case store.MoveDone:
	case store.MoveTaken:
		g.refuseOTP(ctx, num, clientIP, "phone_taken")
		return tokenResponse{}, apierr.New(http.StatusUnprocessableEntity, apierr.PhoneExists, "This phone number is already in use by another account.")
	default:
		g.refuseOTP(ctx, num, clientIP, "consumed_elsewhere")
		return tokenResponse{}, errOTP()
	}
	sess, refresh, refreshHash, err := g.newSession(uk, now, actor)
	if err != nil {
		return tokenResponse{}, err
	}
	sess.UserID = old.ID
	res, err := g.cfg.Store.MoveUser(ctx, store.MoveRequest{From: c.ChangeFrom, To: uk, UserID: old.ID, Now: now, Session: &sess, RefreshHash: refreshHash})
	if err != nil {
		// the move may be halfway: the next lookup of its forward, or the
		// next look at the user under the new key, completes it
		return tokenResponse{}, storeError(err)
	}
	if res.Status != store.MoveDone {
		g.refuseOTP(ctx, num, clientIP, "change_user_gone")
		return tokenResponse{}, errOTP()
	}
	// Every instance checks this user's tokens in the store again: what
	// the users list gives depends on the phone.
	g.announceUserChange(ctx, res.User.ID, now)
	roles, deny := g.admit(res.User, now)
	if deny != "" {
		g.endSessions(ctx, uk, []string{sess.ID}, now)
		g.refuseOTP(ctx, num, clientIP, deny)
		return tokenResponse{}, errOTP()
	}
	out, err := g.issue(res.User, sess, refresh, now, roles)
	if err != nil {
		return tokenResponse{}, err
	}
	g.cfg.Metrics.verify(serverOf(ctx), "ok")
	g.logVerify(ctx, num, clientIP, "ok", zap.Bool("phone_changed", true))
	oldMasked := ""
	if n, err := parsePhone(old.Phone); err == nil {
		oldMasked = n.Masked()
	}
	g.auditEvent("phone_changed", append(auditFields(actor, res.User.ID, sess.ID, num.E164), zap.String("old_phone", oldMasked))...)
	return out, nil
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
