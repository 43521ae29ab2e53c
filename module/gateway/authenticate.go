package gateway

import (
	"errors"
	"net/http"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/session"
	"github.com/otpgate/otpgate/module/store"
)

// authenticate checks the request's access token and that its session is
// live in the store (API routes can afford the round trip; the gate uses
// the feed instead). It returns the key the session lives under: its
// phone's, or the one its user moved to since the token was signed.
func (g *Gateway) authenticate(r *http.Request) (session.Claims, store.UserKey, error) {
	return g.authenticateToken(r, false)
}

// authenticateAllowExpired is authenticate for logout: an authentic token
// past its exp still identifies the session to end.
func (g *Gateway) authenticateAllowExpired(r *http.Request) (session.Claims, store.UserKey, error) {
	return g.authenticateToken(r, true)
}

func (g *Gateway) authenticateToken(r *http.Request, allowExpired bool) (session.Claims, store.UserKey, error) {
	tok, _ := g.requestToken(r)
	if tok == "" {
		return session.Claims{}, "", apierr.New(http.StatusUnauthorized, apierr.NoAuthorization, "This endpoint requires a bearer token.")
	}
	now := g.now()
	claims, err := g.tokens().Verify(tok, now)
	if err != nil && !(allowExpired && errors.Is(err, session.ErrExpired) && claims.SessionID != "") {
		return session.Claims{}, "", apierr.Wrap(http.StatusUnauthorized, apierr.BadJWT, "Invalid or expired access token.", err)
	}
	var s store.Session
	uk, ok, err := g.homes(r.Context(), g.userKey(claims.Phone), claims.Subject, func(k store.UserKey) (bool, error) {
		var found bool
		var err error
		s, found, err = g.cfg.Store.Session(r.Context(), k, claims.SessionID)
		return found, err
	})
	if err != nil {
		return session.Claims{}, "", storeError(err)
	}
	if !ok || !s.Active(now) {
		if ok && !s.RevokedAt.IsZero() {
			// the answer is the same; the caller may announce it again
			return claims, uk, apierr.Wrap(http.StatusUnauthorized, apierr.SessionNotFound, errSession().Msg, errRevoked)
		}
		return session.Claims{}, "", errSession()
	}
	return claims, uk, nil
}

// errRevoked marks a session found revoked in the store (the claims are
// returned with it): its announcement may have been lost.
var errRevoked = errors.New("session revoked")
