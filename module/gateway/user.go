package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/session"
	"github.com/otpgate/otpgate/module/store"
)

// GET and PUT /user: auth-js getUser and updateUser. A phone change
// (PUT with a phone) is phonechange.go.

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

func (g *Gateway) serveUser(w http.ResponseWriter, r *http.Request) error {
	claims, uk, err := g.authenticate(r)
	if errors.Is(err, errRevoked) {
		g.revokedSeen(uk, claims.SessionID, g.now())
	}
	if err != nil {
		return err
	}
	u, ok, err := g.cfg.Store.User(r.Context(), uk)
	if err != nil {
		return storeError(err)
	}
	if !ok || u.ID != claims.Subject {
		return apierr.New(http.StatusNotFound, "user_not_found", "User not found.")
	}
	writeJSON(w, http.StatusOK, g.userJSON(g.settle(r.Context(), uk, u)))
	return nil
}
