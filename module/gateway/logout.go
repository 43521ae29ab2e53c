package gateway

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/store"
)

func (g *Gateway) serveLogout(w http.ResponseWriter, r *http.Request, clientIP string) error {
	scope := store.RevokeOne
	switch r.URL.Query().Get("scope") {
	case "", "local":
	case "global":
		scope = store.RevokeAll
	case "others":
		scope = store.RevokeOthers
	default:
		return apierr.New(http.StatusBadRequest, apierr.ValidationFailed, `scope must be "local", "global" or "others".`)
	}
	// An expired access token still names its session (its signature is
	// checked): signing out after an idle hour must end the session, not
	// leave a refresh cookie that signs the person back in.
	claims, uk, err := g.authenticateAllowExpired(r)
	if err != nil {
		g.clearSessionCookies(w)
		if errors.Is(err, errRevoked) && g.firstReannounce(claims.SessionID, g.now()) {
			// the retry of a logout whose reply was lost finds its session
			// revoked, maybe never announced: announce the person's
			// revocations again (idempotent) before answering
			g.reannounce(r.Context(), uk, g.now())
		}
		return err
	}
	now := g.now()
	ids, err := g.cfg.Store.Revoke(r.Context(), uk, scope, claims.SessionID, now)
	// Revoked ids with an error mean the revocation is stored but its
	// announcement failed: refuse the sessions here at once, announce
	// again, and answer as done (instances whose feed is down check the
	// store, which already says revoked).
	g.cache.Revoke(ids, now.Add(g.revocationRetain()))
	if err != nil {
		if len(ids) == 0 {
			// The revoke may have run with its reply lost: whatever it
			// revoked must not stay unannounced. The retry loop announces
			// the person's revocations once the store answers.
			g.repairLater(uk)
			return storeError(err)
		}
		g.announce(r.Context(), ids, now)
	}
	if scope != store.RevokeOthers {
		g.clearSessionCookies(w)
	}
	g.logFor(r.Context()).Info("logout", zap.String("scope", r.URL.Query().Get("scope")), zap.Int("sessions", len(ids)))
	g.auditEvent("sign_out", append(auditFields(actorOf(r, clientIP, "user"), claims.Subject, claims.SessionID, claims.Phone),
		zap.String("scope", scope.String()), zap.Strings("revoked_sessions", ids))...)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
