package otpgate

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/otpgate/otpgate/module/gateway"
	"github.com/otpgate/otpgate/module/loginpage"
)

// CaddyModule returns the Caddy module information.
func (*Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.otpgate",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision attaches this site to the otpgate app (loaded with defaults
// when the global block is absent) and prepares the login page.
func (h *Handler) Provision(ctx caddy.Context) error {
	if h.APIPrefix == "" {
		h.APIPrefix = "/auth/v1"
	}
	if h.LoginPath == "" {
		h.LoginPath = "/auth/login"
	}
	appIface, err := ctx.App("otpgate")
	if err != nil {
		return fmt.Errorf("otpgate: loading app: %w", err)
	}
	app := appIface.(*App)
	name := h.AppName
	if name == "" {
		name = app.AppName
	}
	if name == "" {
		name = "otpgate"
	}
	codeLen := 6
	if app.OTP != nil && app.OTP.Length != 0 {
		codeLen = app.OTP.Length
	}
	page, err := loginpage.New(loginpage.Options{
		AppName:      name,
		AccentColor:  h.AccentColor,
		APIPrefix:    h.APIPrefix,
		LoginPath:    h.LoginPath,
		TemplateFile: caddy.NewReplacer().ReplaceKnown(h.LoginTemplate, ""),
		CodeLength:   codeLen,
	})
	if err != nil {
		return fmt.Errorf("otpgate: login page: %w", err)
	}
	h.site = &gateway.Site{
		G:         app.Gateway(),
		APIPrefix: h.APIPrefix,
		LoginPath: h.LoginPath,
		Public:    h.Public,
		Gate:      h.Gate == nil || *h.Gate,
		Page:      page,
		Roles:     h.Roles,
	}
	return nil
}

// ServeHTTP serves the auth routes and the login page, and gates every
// other request: only a verified session (holding one of the site's
// roles, when it has some) reaches next, carrying the identity headers
// and the {http.auth.user.*} placeholders (id, phone, session_id and
// roles, comma-separated as in X-Auth-Roles).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	id, done := h.site.Handle(w, r, clientIP(r))
	if done {
		return nil
	}
	if id != nil {
		repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		repl.Set("http.auth.user.id", id.UserID)
		repl.Set("http.auth.user.phone", id.Phone)
		repl.Set("http.auth.user.session_id", id.SessionID)
		repl.Set("http.auth.user.roles", strings.Join(id.Roles, ","))
	}
	return next.ServeHTTP(w, r)
}

// clientIP is Caddy's {client_ip}: the remote address, or the forwarded
// one only when the peer is a trusted proxy.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

var (
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddy.Provisioner           = (*Handler)(nil)
)
