package gateway

import (
	"context"
	"net/http"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/session"
	"github.com/otpgate/otpgate/module/store"
)

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (g *Gateway) serveToken(w http.ResponseWriter, r *http.Request, clientIP string) error {
	if gt := r.URL.Query().Get("grant_type"); gt != "refresh_token" {
		return apierr.New(http.StatusBadRequest, apierr.ValidationFailed, `grant_type must be "refresh_token".`)
	}
	var req refreshRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	out, err := g.refresh(r.Context(), req.RefreshToken, actorOf(r, clientIP, "user"))
	if err != nil {
		return err
	}
	g.setSessionCookies(w, out.AccessToken, out.RefreshToken)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Refresh rotates a refresh token. A token reused after the grace
// interval revokes its whole session (it was likely stolen).
func (g *Gateway) Refresh(ctx context.Context, token string) (tokenResponse, error) {
	return g.refresh(ctx, token, Actor{Kind: "user"})
}

func (g *Gateway) refresh(ctx context.Context, token string, actor Actor) (tokenResponse, error) {
	tokenKey, hash, ok := session.ParseRefreshToken(token)
	if !ok {
		return tokenResponse{}, errSession()
	}
	now := g.now()
	// The token names the key of its phone when it was issued: after a
	// phone change its session lives under the new phone's key (homes),
	// and the new token names that one.
	var (
		res  store.RotateResult
		next string
	)
	uk, _, err := g.homes(ctx, store.UserKey(tokenKey), "", func(k store.UserKey) (bool, error) {
		t, nextHash, err := session.NewRefreshToken(string(k))
		if err != nil {
			return false, apierr.Wrap(http.StatusInternalServerError, apierr.UnexpectedFailure, "Could not rotate the session.", err)
		}
		r, err := g.cfg.Store.Rotate(ctx, store.RotateRequest{
			User: k, OldHash: hash, NewHash: nextHash, Now: now, ReuseInterval: g.cfg.RefreshReuse,
			Inactivity: g.cfg.Inactivity,
		})
		if err != nil {
			// a reuse (or idle) revocation may have run with its reply
			// lost: the caller announces those, so have them announced again
			g.repairLater(k)
			return false, err
		}
		res, next = r, t
		return r.Status != store.RotateNotFound, nil
	})
	if err != nil {
		if e, ok := err.(*apierr.Error); ok {
			return tokenResponse{}, e
		}
		return tokenResponse{}, storeError(err)
	}
	switch res.Status {
	case store.RotateReused:
		g.cache.Revoke([]string{res.Session.ID}, now.Add(g.revocationRetain()))
		g.announce(ctx, []string{res.Session.ID}, now)
		g.cfg.Metrics.refusal(serverOf(ctx), apierr.RefreshTokenUsed)
		g.logFor(ctx).Warn("refresh token reused: session revoked", zap.String("session_id", res.Session.ID))
		g.auditEvent("refresh_token_reused", auditFields(actor, res.Session.UserID, res.Session.ID, "")...)
		return tokenResponse{}, apierr.New(http.StatusUnauthorized, apierr.RefreshTokenUsed, "Refresh token has already been used; the session was signed out.")
	case store.RotateIdle:
		g.cache.Revoke([]string{res.Session.ID}, now.Add(g.revocationRetain()))
		g.announce(ctx, []string{res.Session.ID}, now)
		g.auditEvent("session_idle_ended", auditFields(actor, res.Session.UserID, res.Session.ID, "")...)
		return tokenResponse{}, errSession()
	case store.RotateOK:
		res.User = g.settle(ctx, uk, res.User)
		roles, deny := g.admit(res.User, now)
		switch deny {
		case "":
			return g.issue(res.User, res.Session, next, now, roles)
		case denyBanned:
			g.endSessions(ctx, uk, []string{res.Session.ID}, now)
			return tokenResponse{}, apierr.New(http.StatusForbidden, apierr.UserBanned, "User is banned.")
		default:
			g.endSessions(ctx, uk, []string{res.Session.ID}, now)
			return tokenResponse{}, errSession()
		}
	}
	// A ban ends every session, so a banned user's refresh finds none;
	// the holder of an authentic refresh token learns why.
	if u, ok, err := g.cfg.Store.User(ctx, uk); err == nil && ok && u.Banned(now) {
		return tokenResponse{}, apierr.New(http.StatusForbidden, apierr.UserBanned, "User is banned.")
	}
	return tokenResponse{}, errSession()
}

func errSession() *apierr.Error {
	return apierr.New(http.StatusUnauthorized, apierr.SessionNotFound, "Session not found or expired. Sign in again.")
}
