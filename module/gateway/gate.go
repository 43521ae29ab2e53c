package gateway

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/session"
)

// verdict is what the gate decided about an upstream request.
type verdict uint8

const (
	allow       verdict = iota // the session passes to the upstream
	deny                       // no usable session: sign in first
	forbid                     // a session whose roles the site does not admit
	unavailable                // the session cannot be checked: refuse (fail closed)
)

// decision is the gate's answer to one request: the verdict, what it
// rests on, and the session cookies to set or clear on whatever answer is
// given. Site.render turns it into the response, the metric and the log
// line.
type decision struct {
	verdict   verdict
	reason    string    // deny: why (no_token, expired, invalid_token, revoked, …)
	id        *Identity // allow, forbid: whose session it is
	err       error     // unavailable: why the store could not say
	refreshed bool      // the session's access token was refreshed in place
	cookies   []*http.Cookie
}

// metric is the decision's gate_decisions_total label.
func (d decision) metric() string {
	switch d.verdict {
	case allow:
		return "allowed"
	case forbid:
		return "denied_no_access"
	case unavailable:
		return "unavailable"
	}
	return "denied_" + d.reason
}

// decide judges one upstream request for a site that admits roles (any
// session when empty). The steady state costs no store round trip: a
// token verified once is cached until it expires, and revocations and
// changes of a user's access arrive through the feed. A token that may
// predate such a change, and every token while the feed is down, is
// checked in the store again; a store that does not answer refuses the
// request (fail closed).
func (g *Gateway) decide(r *http.Request, clientIP string, roles []string) decision {
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
				return decision{verdict: deny, reason: "invalid_token"}
			}
		}
		if ok {
			if g.cache.Revoked(claims.SessionID, now) {
				return decision{verdict: deny, reason: denyRevoked}
			}
			var cookies []*http.Cookie
			if !g.feedOK.Load() || g.changes.stale(claims) {
				fresh, why, err := g.recheck(r.Context(), claims, now)
				if err != nil {
					return decision{verdict: unavailable, err: err}
				}
				if why != "" {
					d := decision{verdict: deny, reason: why}
					if fromCookie {
						d.cookies = g.clearedSessionCookies()
					}
					return d
				}
				g.cache.Put(tok, fresh)
				if fromCookie && (!slices.Equal(fresh.Roles, claims.Roles) || fresh.Phone != claims.Phone) {
					// the browser's next requests carry the new roles (or
					// phone) without a refresh: re-sign the access token alone
					if c := g.reissuedAccessCookie(fresh, now); c != nil {
						cookies = []*http.Cookie{c}
					}
				}
				claims = fresh
			}
			d := admitted(&claims, roles)
			d.cookies = cookies
			return d
		}
	}
	if rc, err := r.Cookie(g.refreshCookieName()); err == nil && rc.Value != "" {
		out, err := g.refresh(r.Context(), rc.Value, actorOf(r, clientIP, "user"))
		if err != nil {
			if isUnavailable(err) {
				return decision{verdict: unavailable, err: err}
			}
			return decision{verdict: deny, reason: "refresh_failed", cookies: g.clearedSessionCookies()}
		}
		// the token was signed here a moment ago: its claims are known
		// without verifying it again
		g.cache.Put(out.AccessToken, out.claims)
		d := admitted(&out.claims, roles)
		d.refreshed = true
		d.cookies = g.sessionCookies(out.AccessToken, out.RefreshToken)
		return d
	}
	if tok != "" {
		return decision{verdict: deny, reason: "expired"}
	}
	return decision{verdict: deny, reason: "no_token"}
}

// admitted lets a verified session through if it holds one of roles (or
// roles is empty).
func admitted(c *session.Claims, roles []string) decision {
	if len(roles) == 0 {
		return decision{verdict: allow, id: identityOf(c)}
	}
	for _, want := range roles {
		if slices.Contains(c.Roles, want) {
			return decision{verdict: allow, id: identityOf(c)}
		}
	}
	return decision{verdict: forbid, id: identityOf(c)}
}

// reissuedAccessCookie signs a new access token for a session the gate
// has just confirmed in the store, with the same expiry, so that changed
// roles reach the browser's cookie without rotating its refresh token.
// It is nil when the token cannot be signed (the old cookie stays; the
// store is asked again next time).
func (g *Gateway) reissuedAccessCookie(c session.Claims, now time.Time) *http.Cookie {
	c.IssuedAt = now
	c.CheckedAt = time.Time{}
	if !c.ExpiresAt.After(now) {
		return nil
	}
	tok, err := g.tokens().Sign(c)
	if err != nil {
		g.log.Warn("re-signing an access token with new roles", zap.Error(err))
		return nil
	}
	c.CheckedAt = now
	g.cache.Put(tok, c)
	return g.cookie(g.accessCookieName(), tok, int(g.cfg.RefreshTTL/time.Second))
}

func identityOf(c *session.Claims) *Identity {
	return &Identity{UserID: c.Subject, Phone: c.Phone, SessionID: c.SessionID, Roles: c.Roles, RolesList: strings.Join(c.Roles, ",")}
}
