package gateway

import (
	"net/http"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/loginpage"
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
	// Callbacks are the routes under APIPrefix that a sender serves for
	// its provider (Plivo's delivery reports, inbound messages and voice
	// answer URL: "/plivo/status" …), POST only. They report to the
	// gateway through its exported methods (callbacks.go).
	Callbacks map[string]http.Handler

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
	id, ok, refusal := s.gate(w, r, clientIP)
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
	case "/health":
		err = s.G.serveHealth(w, r)
	default:
		if h, ok := s.Callbacks[route]; ok {
			if r.Method != http.MethodPost {
				err = methodNotAllowed(w, http.MethodPost)
				break
			}
			h.ServeHTTP(w, r)
			break
		}
		if len(s.Callbacks) == 0 && strings.HasPrefix(route, "/plivo/") {
			err = apierr.New(http.StatusNotFound, apierr.NotFound, "Plivo callbacks are not enabled (sms plivo is not configured).")
			break
		}
		if rest, ok := strings.CutPrefix(route, "/admin/"); ok {
			err = s.G.serveSupabaseAdmin(w, r, "/"+rest, clientIP)
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
