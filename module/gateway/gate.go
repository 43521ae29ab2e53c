package gateway

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/session"
)

// gate decides one upstream request. The steady state costs no store
// round trip: a token verified once is cached until it expires, and
// revocations and changes of a user's access arrive through the feed.
// A token that may predate such a change, and every token while the feed
// is down, is checked in the store again; a store that does not answer
// refuses the request (fail closed).
//
// A refusal is written here, unless the site leaves it to the server's
// error routes (Site.Restyle): then nothing is written and refusal is the
// error to hand them.
func (g *Gateway) gate(w http.ResponseWriter, r *http.Request, s *Site, clientIP string) (id *Identity, ok bool, refusal error) {
	now := g.now()
	tok, fromCookie := g.requestToken(r)
	if tok != "" {
		claims, ok := g.cache.Get(tok, now)
		if !ok {
			c, err := g.tokens().Verify(tok, now)
			switch {
			case err == nil:
				claims, ok = c, true
				g.cache.Put(tok, c)
			case errors.Is(err, session.ErrExpired):
				// fall through to the refresh cookie
			default:
				return nil, false, s.unauthorized(w, r, "invalid_token")
			}
		}
		if ok {
			if g.cache.Revoked(claims.SessionID, now) {
				return nil, false, s.unauthorized(w, r, denyRevoked)
			}
			if !g.feedOK.Load() || g.changes.stale(claims) {
				fresh, deny, err := g.recheck(r.Context(), claims, now)
				if err != nil {
					g.failClosed(w, r, s, err)
					return nil, false, nil
				}
				if deny != "" {
					if fromCookie {
						g.clearSessionCookies(w)
					}
					return nil, false, s.unauthorized(w, r, deny)
				}
				g.cache.Put(tok, fresh)
				if fromCookie && (!slices.Equal(fresh.Roles, claims.Roles) || fresh.Phone != claims.Phone) {
					// the browser's next requests carry the new roles (or
					// phone) without a refresh: re-sign the access token alone
					g.reissueAccessCookie(w, fresh, now)
				}
				claims = fresh
			}
			return g.pass(w, r, s, claims)
		}
	}
	if rc, err := r.Cookie(g.refreshCookieName()); err == nil && rc.Value != "" {
		out, err := g.refresh(r.Context(), rc.Value, actorOf(r, clientIP, "user"))
		if err == nil {
			// the token was signed here a moment ago: its claims are known
			// without verifying it again
			g.cache.Put(out.AccessToken, out.claims)
			g.setSessionCookies(w, out.AccessToken, out.RefreshToken)
			g.cfg.Metrics.gateDecision(s.server(r), "refreshed")
			return g.pass(w, r, s, out.claims)
		}
		if apierr.As(err).Code == apierr.StoreUnavailable {
			g.failClosed(w, r, s, err)
			return nil, false, nil
		}
		g.clearSessionCookies(w)
		return nil, false, s.unauthorized(w, r, "refresh_failed")
	}
	if tok != "" {
		return nil, false, s.unauthorized(w, r, "expired")
	}
	return nil, false, s.unauthorized(w, r, "no_token")
}

// pass lets a verified session through if the site admits its roles.
func (g *Gateway) pass(w http.ResponseWriter, r *http.Request, s *Site, c session.Claims) (*Identity, bool, error) {
	if !s.admits(c.Roles) {
		return nil, false, s.forbidden(w, r, c)
	}
	g.cfg.Metrics.gateDecision(s.server(r), "allowed")
	return identityOf(c), true, nil
}

// reissueAccessCookie signs a new access token for a session the gate has
// just confirmed in the store, with the same expiry, so that changed roles
// reach the browser's cookie without rotating its refresh token.
func (g *Gateway) reissueAccessCookie(w http.ResponseWriter, c session.Claims, now time.Time) {
	c.IssuedAt = now
	c.CheckedAt = time.Time{}
	if !c.ExpiresAt.After(now) {
		return
	}
	tok, err := g.tokens().Sign(c)
	if err != nil {
		g.log.Warn("re-signing an access token with new roles", zap.Error(err))
		return
	}
	c.CheckedAt = now
	g.cache.Put(tok, c)
	http.SetCookie(w, g.cookie(g.accessCookieName(), tok, int(g.cfg.RefreshTTL/time.Second)))
}

func (g *Gateway) failClosed(w http.ResponseWriter, r *http.Request, s *Site, err error) {
	g.cfg.Metrics.gateDecision(s.server(r), "unavailable")
	s.logger(r).Error("gate: session cannot be checked, refusing", zap.Error(err))
	e := apierr.Wrap(http.StatusServiceUnavailable, apierr.StoreUnavailable, "The service is temporarily unavailable. Try again in a moment.", err)
	e.RetryAfter = 5 * time.Second
	apierr.Write(w, r, e)
}

func identityOf(c session.Claims) *Identity {
	return &Identity{UserID: c.Subject, Phone: c.Phone, SessionID: c.SessionID, Roles: c.Roles, RolesList: strings.Join(c.Roles, ",")}
}
