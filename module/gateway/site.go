package gateway

import (
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync/atomic"

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
	// CORSOrigins are the origins (as NormalizeOrigin returns them) whose
	// pages may call the auth API with credentials.
	CORSOrigins []string

	// Logger is the site handler's logger (nil: the gateway's); lines
	// about a request carry its host.
	Logger *zap.Logger
	// Server names the server a request came to, for the metrics' server
	// label (nil: "").
	Server func(*http.Request) string
	// Restyle, when set, reports whether the server has its own answer
	// for a gate refusal with this status (Caddy's handle_errors). Handle
	// then returns the refusal instead of writing it.
	Restyle func(r *http.Request, status int) bool

	serverName atomic.Pointer[string]
	// insecureWarned: the plain-HTTP warning was logged (insecure.go).
	insecureWarned atomic.Bool
}

// Identity is who the gate let through.
type Identity struct {
	UserID    string
	Phone     string
	SessionID string
	Roles     []string
	// RolesList is Roles comma-separated, as X-Auth-Roles and the
	// {http.auth.user.roles} placeholder carry them (joined once).
	RolesList string
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
// A gate refusal that Restyle leaves to the server is returned as refusal
// (an *apierr.Error, with done), nothing written but its headers.
func (s *Site) Handle(w http.ResponseWriter, r *http.Request, clientIP string) (id *Identity, done bool, refusal error) {
	stripIdentityHeaders(r.Header)
	p := r.URL.Path
	if p == s.LoginPath {
		s.serveLogin(w, r)
		return nil, true, nil
	}
	if p == s.APIPrefix || strings.HasPrefix(p, s.APIPrefix+"/") {
		if s.serveCORS(w, r) {
			return nil, true, nil
		}
		s.serveAPI(w, r, strings.TrimPrefix(p, s.APIPrefix), clientIP)
		return nil, true, nil
	}
	if !s.Gate || s.isPublic(r) {
		stripSessionCookies(r.Header)
		return nil, false, nil
	}
	id, ok, refusal := s.G.gate(w, r, s, clientIP)
	if !ok {
		return nil, true, refusal
	}
	stripSessionCookies(r.Header)
	r.Header.Set(HeaderUserID, id.UserID)
	r.Header.Set(HeaderPhone, id.Phone)
	r.Header.Set(HeaderSessionID, id.SessionID)
	r.Header.Set(HeaderRoles, id.RolesList)
	return id, false, nil
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
func (s *Site) forbidden(w http.ResponseWriter, r *http.Request, c session.Claims) error {
	s.G.cfg.Metrics.gateDecision(s.server(r), "denied_no_access")
	e := apierr.New(http.StatusForbidden, apierr.NoAccess, "Your account does not have access to this site.")
	if s.Restyle != nil && s.Restyle(r, e.Status) {
		w.Header().Set("x-sb-error-code", e.Code)
		return e
	}
	masked := ""
	if num, err := phone.Parse(c.Phone); err == nil {
		masked = num.Masked()
	}
	if isBrowserNavigation(r) && s.Page != nil {
		s.Page.RenderNoAccess(w, r, masked, loginpage.SafeReturnTo(r.URL.RequestURI()))
		return nil
	}
	apierr.Write(w, r, e)
	return nil
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

// isPublic reports whether r may pass without a session. It never holds
// for a path that a server behind the gate may read differently from Go
// (see ambiguousPath): such paths are gated like any other.
func (s *Site) isPublic(r *http.Request) bool {
	if len(s.Public) == 0 || ambiguousPath(r.URL) {
		return false
	}
	clean := path.Clean(r.URL.Path)
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

// ambiguousPath reports whether a path could name another resource to the
// server behind the gate than it does to Go: `;` path parameters (Tomcat
// and Jetty read /assets/..;/admin as /admin), backslashes (IIS reads them
// as slashes), dot-segments (browsers never send them; an upstream that
// does not resolve them routes /admin/../assets/x under /admin), encoded
// slashes and dots (decoded, or not, after routing), a percent sign after
// decoding (decoded twice by some), and control characters.
func ambiguousPath(u *url.URL) bool {
	p := u.Path
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == ';', c == '\\', c == '%', c < 0x20, c == 0x7f:
			return true
		case c == '.' && (i == 0 || p[i-1] == '/'):
			// a "." or ".." segment
			end := strings.IndexByte(p[i:], '/')
			if end < 0 {
				end = len(p) - i
			}
			if seg := p[i : i+end]; seg == "." || seg == ".." {
				return true
			}
		}
	}
	raw := u.RawPath
	for i := 0; i+2 < len(raw); i++ {
		if raw[i] == '%' && raw[i+1] == '2' && (raw[i+2]|0x20 == 'f' || raw[i+2]|0x20 == 'e') {
			return true // %2F, %2E
		}
	}
	return false
}

func (s *Site) serveLogin(w http.ResponseWriter, r *http.Request) {
	if s.Page == nil {
		apierr.Write(w, r, apierr.New(http.StatusNotFound, apierr.NotFound, "No login page is configured."))
		return
	}
	s.warnIfInsecure(r)
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

// unauthorized answers a request without a usable session: browser
// navigations go to the login page, everything else gets 401 (written
// here, or returned for the server's error routes: see Site.Restyle).
func (s *Site) unauthorized(w http.ResponseWriter, r *http.Request, reason string) error {
	s.G.cfg.Metrics.gateDecision(s.server(r), "denied_"+reason)
	if isBrowserNavigation(r) {
		s.loginRedirect(w, r)
		return nil
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="otpgate"`)
	e := apierr.New(http.StatusUnauthorized, apierr.NoAuthorization, "Sign in to continue.")
	if s.Restyle != nil && s.Restyle(r, e.Status) {
		w.Header().Set("x-sb-error-code", e.Code)
		return e
	}
	apierr.Write(w, r, e)
	return nil
}

func (s *Site) serveAPI(w http.ResponseWriter, r *http.Request, route, clientIP string) {
	r = s.withScope(r)
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
			err = s.G.serveSend(w, s.withOrigin(r), clientIP, false)
		case "/resend":
			err = s.G.serveSend(w, s.withOrigin(r), clientIP, true)
		case "/verify":
			err = s.G.serveVerify(w, r, clientIP)
		case "/token":
			err = s.G.serveToken(w, r, clientIP)
		case "/logout":
			err = s.G.serveLogout(w, r, clientIP)
		}
	case "/user":
		switch r.Method {
		case http.MethodGet:
			err = s.G.serveUser(w, r)
		case http.MethodPut:
			if err = s.checkSameSite(r); err != nil {
				break
			}
			err = s.G.serveUpdateUser(w, s.withOrigin(r), clientIP)
		default:
			err = methodNotAllowed(w, "GET, PUT")
		}
	case "/.well-known/jwks.json":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			err = methodNotAllowed(w, http.MethodGet)
			break
		}
		s.G.serveJWKS(w, r)
	case "/plivo/status", "/plivo/inbound", "/plivo/voice":
		cb := s.G.cfg.PlivoCallback
		if cb == nil {
			err = apierr.New(http.StatusNotFound, apierr.NotFound, "Plivo callbacks are not enabled (sms plivo is not configured).")
			break
		}
		if r.Method != http.MethodPost {
			err = methodNotAllowed(w, http.MethodPost)
			break
		}
		switch route {
		case "/plivo/status":
			cb.ServeStatus(w, r)
		case "/plivo/voice":
			cb.ServeVoice(w, r)
		default:
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
			s.G.logFor(r.Context()).Error("auth route failed", zap.String("route", route), zap.String("error_code", e.Code), zap.Error(e.Err))
		}
		apierr.Write(w, r, e)
	}
}

func methodNotAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	return apierr.New(http.StatusMethodNotAllowed, apierr.MethodNotAllowed, "Use "+allow+" for this route.")
}

// checkSameSite refuses state-changing requests a browser sent on behalf
// of another site (login CSRF, SMS pumping from foreign pages), except
// from the site's cors_origins. Clients that are not browsers send neither
// header and pass.
func (s *Site) checkSameSite(r *http.Request) error {
	if s.corsOrigin(r) != "" {
		return nil
	}
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
