package gateway

import (
	"net/http"
	"net/url"
	"path"
	"strings"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/loginpage"
	"github.com/otpgate/otpgate/module/phone"
	"github.com/otpgate/otpgate/module/session"
)

// Site is one site's view of the gateway: where its routes live and what
// it gates.
type Site struct {
	G         *Gateway
	APIPrefix string   // /auth/v1
	LoginPath string   // /auth/login
	Public    []string // exact paths, "prefix*" or "*suffix"
	Gate      bool
	Page      *loginpage.Page
	// Roles, when set, admits only sessions holding one of them; others
	// get 403 no_access.
	Roles []string
}

// Identity is who the gate let through.
type Identity struct {
	UserID    string
	Phone     string
	SessionID string
	Roles     []string
}

// Headers the gate owns: incoming copies are always removed.
const (
	HeaderUserID    = "X-Auth-User-Id"
	HeaderPhone     = "X-Auth-Phone"
	HeaderSessionID = "X-Auth-Session-Id"
	HeaderRoles     = "X-Auth-Roles"
)

// Handle serves r. When it answers the request itself it returns done. When
// the request may go on to the upstream it returns the identity (nil for
// public paths and a disabled gate) with the identity headers already set.
func (s *Site) Handle(w http.ResponseWriter, r *http.Request, clientIP string) (id *Identity, done bool) {
	stripIdentityHeaders(r.Header)
	p := r.URL.Path
	if p == s.LoginPath {
		s.serveLogin(w, r)
		return nil, true
	}
	if p == s.APIPrefix || strings.HasPrefix(p, s.APIPrefix+"/") {
		s.serveAPI(w, r, strings.TrimPrefix(p, s.APIPrefix), clientIP)
		return nil, true
	}
	if !s.Gate || s.isPublic(p) {
		stripSessionCookies(r.Header)
		return nil, false
	}
	id, ok := s.G.gate(w, r, s, clientIP)
	if !ok {
		return nil, true
	}
	stripSessionCookies(r.Header)
	r.Header.Set(HeaderUserID, id.UserID)
	r.Header.Set(HeaderPhone, id.Phone)
	r.Header.Set(HeaderSessionID, id.SessionID)
	r.Header.Set(HeaderRoles, strings.Join(id.Roles, ","))
	return id, false
}

// admits reports whether a session with roles may use this site.
func (s *Site) admits(roles []string) bool {
	if len(s.Roles) == 0 {
		return true
	}
	for _, want := range s.Roles {
		for _, have := range roles {
			if have == want {
				return true
			}
		}
	}
	return false
}

// forbidden answers a signed-in user whose roles this site does not admit:
// 403 no_access, or for a browser navigation a page that names the
// (masked) phone and offers to sign in with another number.
func (s *Site) forbidden(w http.ResponseWriter, r *http.Request, c session.Claims) {
	s.G.cfg.Metrics.gateDecision("denied_no_access")
	masked := ""
	if num, err := phone.Parse(c.Phone); err == nil {
		masked = num.Masked()
	}
	if isBrowserNavigation(r) && s.Page != nil {
		s.Page.RenderNoAccess(w, r, masked, loginpage.SafeReturnTo(r.URL.RequestURI()))
		return
	}
	apierr.Write(w, r, apierr.New(http.StatusForbidden, apierr.NoAccess, "Your account does not have access to this site."))
}

// stripIdentityHeaders removes every spelling of the owned headers: case
// is canonicalised by net/http, but X_Auth_User_Id survives that and some
// upstreams (CGI, PHP, WSGI) read it as the same variable. It runs on
// every request, so it compares in place instead of allocating.
func stripIdentityHeaders(h http.Header) {
	for name := range h {
		if isOwnedHeader(name) {
			delete(h, name)
		}
	}
}

var ownedHeaders = [...]string{"x-auth-user-id", "x-auth-phone", "x-auth-session-id", "x-auth-roles"}

func isOwnedHeader(name string) bool {
	if len(name) < len("x-auth-phone") || (name[0] != 'x' && name[0] != 'X') {
		return false
	}
	for _, owned := range ownedHeaders {
		if len(owned) != len(name) {
			continue
		}
		match := true
		for i := 0; i < len(name); i++ {
			c := name[i]
			if c == '_' {
				c = '-'
			} else if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != owned[i] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

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

func (s *Site) isPublic(p string) bool {
	clean := path.Clean(p)
	for _, pat := range s.Public {
		switch {
		case strings.HasSuffix(pat, "*"):
			// matched on the cleaned path: /assets/../admin is /admin
			if strings.HasPrefix(clean, strings.TrimSuffix(pat, "*")) {
				return true
			}
		case strings.HasPrefix(pat, "*"):
			if strings.HasSuffix(clean, strings.TrimPrefix(pat, "*")) {
				return true
			}
		default:
			if clean == pat || clean == strings.TrimSuffix(pat, "/") {
				return true
			}
		}
	}
	return false
}

func (s *Site) serveLogin(w http.ResponseWriter, r *http.Request) {
	if s.Page == nil {
		apierr.Write(w, r, apierr.New(http.StatusNotFound, apierr.NotFound, "No login page is configured."))
		return
	}
	s.Page.Render(w, r, loginpage.SafeReturnTo(r.URL.Query().Get("return_to")))
}

// loginRedirect sends a browser to the login page with a same-origin
// return_to.
func (s *Site) loginRedirect(w http.ResponseWriter, r *http.Request) {
	target := loginpage.SafeReturnTo(r.URL.RequestURI())
	u := s.LoginPath + "?return_to=" + url.QueryEscape(target)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusFound)
}

// isBrowserNavigation: a top-level page load that a person can be sent
// to the login page from. Scripts get a 401 they can act on instead.
func isBrowserNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.Header.Get("X-Requested-With") != "" {
		return false
	}
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" && m != "navigate" {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func (s *Site) unauthorized(w http.ResponseWriter, r *http.Request, reason string) {
	s.G.cfg.Metrics.gateDecision("denied_" + reason)
	if isBrowserNavigation(r) {
		s.loginRedirect(w, r)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="otpgate"`)
	apierr.Write(w, r, apierr.New(http.StatusUnauthorized, apierr.NoAuthorization, "Sign in to continue."))
}

func (s *Site) serveAPI(w http.ResponseWriter, r *http.Request, route, clientIP string) {
	var err error
	switch route {
	case "/otp", "/resend", "/verify", "/token", "/logout":
		if r.Method != http.MethodPost {
			err = methodNotAllowed(w, http.MethodPost)
			break
		}
		if err = s.checkSameSite(r); err != nil {
			break
		}
		switch route {
		case "/otp":
			err = s.G.serveSend(w, r, clientIP, false)
		case "/resend":
			err = s.G.serveSend(w, r, clientIP, true)
		case "/verify":
			err = s.G.serveVerify(w, r, clientIP)
		case "/token":
			err = s.G.serveToken(w, r, clientIP)
		case "/logout":
			err = s.G.serveLogout(w, r, clientIP)
		}
	case "/user":
		if r.Method != http.MethodGet {
			err = methodNotAllowed(w, http.MethodGet)
			break
		}
		err = s.G.serveUser(w, r)
	case "/.well-known/jwks.json":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			err = methodNotAllowed(w, http.MethodGet)
			break
		}
		s.G.serveJWKS(w, r)
	case "/plivo/status", "/plivo/inbound":
		cb := s.G.cfg.PlivoCallback
		if cb == nil {
			err = apierr.New(http.StatusNotFound, apierr.NotFound, "Plivo callbacks are not enabled (sms plivo is not configured).")
			break
		}
		if r.Method != http.MethodPost {
			err = methodNotAllowed(w, http.MethodPost)
			break
		}
		if route == "/plivo/status" {
			cb.ServeStatus(w, r)
		} else {
			cb.ServeInbound(w, r)
		}
	case "/health":
		err = s.G.serveHealth(w, r)
	default:
		if rest, ok := strings.CutPrefix(route, "/admin/"); ok {
			err = s.serveSupabaseAdmin(w, r, "/"+rest, clientIP)
			break
		}
		err = apierr.New(http.StatusNotFound, apierr.NotFound, "No such auth route.")
	}
	if err != nil {
		e := apierr.As(err)
		if e.Status >= 500 {
			s.G.log.Error("auth route failed", zap.String("route", route), zap.String("error_code", e.Code), zap.Error(e.Err))
		}
		apierr.Write(w, r, e)
	}
}

func methodNotAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	return apierr.New(http.StatusMethodNotAllowed, apierr.MethodNotAllowed, "Use "+allow+" for this route.")
}

// checkSameSite refuses state-changing requests a browser sent on behalf
// of another site (login CSRF, SMS pumping from foreign pages). Clients
// that are not browsers send neither header and pass.
func (s *Site) checkSameSite(r *http.Request) error {
	refuse := apierr.New(http.StatusForbidden, apierr.CrossSiteRequest, "Cross-site requests to the auth API are refused.")
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	case "same-site":
		if s.G.cfg.CookieDomain == "" {
			return refuse
		}
	default:
		return refuse
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return refuse
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	if d := s.G.cfg.CookieDomain; d != "" {
		host := strings.ToLower(u.Hostname())
		d = strings.ToLower(strings.TrimPrefix(d, "."))
		if host == d || strings.HasSuffix(host, "."+d) {
			return nil
		}
	}
	return refuse
}
