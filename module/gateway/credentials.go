package gateway

import (
	"net/http"
	"strings"
	"time"
)

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

// sessionCookies are the cookies of a session: both live as long as the
// refresh token so the gate can refresh an expired access token in place.
func (g *Gateway) sessionCookies(access, refresh string) []*http.Cookie {
	age := int(g.cfg.RefreshTTL / time.Second)
	return []*http.Cookie{g.cookie(g.accessCookieName(), access, age), g.cookie(g.refreshCookieName(), refresh, age)}
}

// clearedSessionCookies remove the session's cookies from the browser.
func (g *Gateway) clearedSessionCookies() []*http.Cookie {
	return []*http.Cookie{g.cookie(g.accessCookieName(), "", -1), g.cookie(g.refreshCookieName(), "", -1)}
}

func (g *Gateway) setSessionCookies(w http.ResponseWriter, access, refresh string) {
	for _, c := range g.sessionCookies(access, refresh) {
		http.SetCookie(w, c)
	}
}

func (g *Gateway) clearSessionCookies(w http.ResponseWriter) {
	for _, c := range g.clearedSessionCookies() {
		http.SetCookie(w, c)
	}
}

// CookieDomain is the domain the session cookies are shared with ("":
// this host only).
func (g *Gateway) CookieDomain() string { return g.cfg.CookieDomain }

// stripSessionCookies keeps the session cookies away from the upstream:
// apps behind the gate get the identity headers, never the tokens (a
// logged or leaked refresh token would be a stolen session).
func stripSessionCookies(h http.Header) {
	values := h["Cookie"]
	dirty := false
	for _, v := range values {
		if strings.Contains(v, "otpgate-") {
			dirty = true
			break
		}
	}
	if !dirty {
		return
	}
	var kept []string
	for _, v := range values {
		for _, part := range strings.Split(v, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			switch name {
			case "__Host-otpgate-access", "__Host-otpgate-refresh", "otpgate-access", "otpgate-refresh":
				continue
			}
			if p := strings.TrimSpace(part); p != "" {
				kept = append(kept, p)
			}
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = []string{strings.Join(kept, "; ")}
}
