package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/session"
)

// gate decides one upstream request. The steady state costs no store
// round trip: a token verified once is cached until it expires, and
// revocations arrive through the feed. While the feed is down every
// session is checked in the store, and a store that does not answer
// refuses the request (fail closed).
func (g *Gateway) gate(w http.ResponseWriter, r *http.Request, s *Site) (*Identity, bool) {
	now := g.now()
	tok := bearerToken(r)
	if tok == "" {
		if c, err := r.Cookie(g.accessCookieName()); err == nil {
			tok = c.Value
		}
	}
	if tok != "" {
		claims, ok := g.cache.Get(tok, now)
		if !ok {
			c, err := g.cfg.Tokens.Verify(tok, now)
			switch {
			case err == nil:
				claims, ok = c, true
				g.cache.Put(tok, c)
			case errors.Is(err, session.ErrExpired):
				// fall through to the refresh cookie
			default:
				s.unauthorized(w, r, "invalid_token")
				return nil, false
			}
		}
		if ok {
			live, err := g.sessionLive(r.Context(), claims, now)
			if err != nil {
				g.failClosed(w, r, err)
				return nil, false
			}
			if !live {
				s.unauthorized(w, r, "revoked")
				return nil, false
			}
			g.cfg.Metrics.gateDecision("allowed")
			return identityOf(claims), true
		}
	}
	if rc, err := r.Cookie(g.refreshCookieName()); err == nil && rc.Value != "" {
		out, err := g.Refresh(r.Context(), rc.Value)
		if err == nil {
			// the token was signed here a moment ago: its claims are known
			// without verifying it again
			g.cache.Put(out.AccessToken, out.claims)
			g.setSessionCookies(w, out.AccessToken, out.RefreshToken)
			g.cfg.Metrics.gateDecision("refreshed")
			return identityOf(out.claims), true
		}
		if apierr.As(err).Code == apierr.StoreUnavailable {
			g.failClosed(w, r, err)
			return nil, false
		}
		g.clearSessionCookies(w)
		s.unauthorized(w, r, "refresh_failed")
		return nil, false
	}
	if tok != "" {
		s.unauthorized(w, r, "expired")
	} else {
		s.unauthorized(w, r, "no_token")
	}
	return nil, false
}

func (g *Gateway) sessionLive(ctx context.Context, c session.Claims, now time.Time) (bool, error) {
	if g.cache.Revoked(c.SessionID, now) {
		return false, nil
	}
	if g.feedOK.Load() {
		return true, nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	sess, ok, err := g.cfg.Store.Session(ctx, g.userKey(c.Phone), c.SessionID)
	if err != nil {
		return false, err
	}
	return ok && sess.Active(now), nil
}

func (g *Gateway) failClosed(w http.ResponseWriter, r *http.Request, err error) {
	g.cfg.Metrics.gateDecision("unavailable")
	g.log.Error("gate: session cannot be checked, refusing", zap.Error(err))
	e := apierr.Wrap(http.StatusServiceUnavailable, apierr.StoreUnavailable, "The service is temporarily unavailable. Try again in a moment.", err)
	e.RetryAfter = 5 * time.Second
	apierr.Write(w, r, e)
}

func identityOf(c session.Claims) *Identity {
	return &Identity{UserID: c.Subject, Phone: c.Phone, SessionID: c.SessionID}
}
