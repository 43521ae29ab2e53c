package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

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

// requestToken is the request's access token: the bearer token, else the
// access cookie.
func (g *Gateway) requestToken(r *http.Request) (tok string, fromCookie bool) {
	if tok = bearerToken(r); tok != "" {
		return tok, false
	}
	if c, err := r.Cookie(g.accessCookieName()); err == nil && c.Value != "" {
		return c.Value, true
	}
	return "", false
}

func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func (g *Gateway) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=600")
	_, _ = w.Write(g.tokens().JWKS())
}

func (g *Gateway) serveHealth(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := g.cfg.Store.Ping(ctx); err != nil {
		return storeError(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "revocation_feed": g.feedOK.Load()})
	return nil
}

// Cookie names: the __Host- prefix pins a cookie to this host, path / and
// Secure, so a sibling subdomain cannot plant or read it.
func (g *Gateway) accessCookieName() string {
	if g.cfg.CookieDomain != "" {
		return "otpgate-access"
	}
	return "__Host-otpgate-access"
}

func (g *Gateway) refreshCookieName() string {
	if g.cfg.CookieDomain != "" {
		return "otpgate-refresh"
	}
	return "__Host-otpgate-refresh"
}

func (g *Gateway) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		Domain:   g.cfg.CookieDomain,
		MaxAge:   maxAge,
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// setSessionCookies: both cookies live as long as the refresh token so the
// gate can refresh an expired access token in place.
func (g *Gateway) setSessionCookies(w http.ResponseWriter, access, refresh string) {
	age := int(g.cfg.RefreshTTL / time.Second)
	http.SetCookie(w, g.cookie(g.accessCookieName(), access, age))
	http.SetCookie(w, g.cookie(g.refreshCookieName(), refresh, age))
}

func (g *Gateway) clearSessionCookies(w http.ResponseWriter) {
	http.SetCookie(w, g.cookie(g.accessCookieName(), "", -1))
	http.SetCookie(w, g.cookie(g.refreshCookieName(), "", -1))
}
