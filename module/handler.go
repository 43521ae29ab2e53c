package otpgate

import (
	"cmp"
	"fmt"
	"net"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/gateway"
	"github.com/otpgate/otpgate/module/loginpage"
	"github.com/otpgate/otpgate/module/sender"
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
	repl := caddy.NewReplacer()
	opts := loginpage.Options{
		AppName:        cmp.Or(h.AppName, app.settings.AppName),
		AccentColor:    h.AccentColor,
		APIPrefix:      h.APIPrefix,
		LoginPath:      h.LoginPath,
		TemplateFile:   repl.ReplaceKnown(h.LoginTemplate, ""),
		CodeLength:     app.settings.CodeLength,
		Countries:      app.settings.Policy.Countries,
		DefaultCountry: h.DefaultCountry,
		Language:       h.Language,
		Channels:       pageChannels(app.snd),
	}
	if err := opts.Validate(); err != nil {
		return configError(err)
	}
	page, err := loginpage.New(opts)
	if err != nil {
		return fmt.Errorf("otpgate: %w", err)
	}
	var origins []string
	for _, o := range h.CORSOrigins {
		n, err := gateway.NormalizeOrigin(o)
		if err != nil {
			return fmt.Errorf("otpgate: cors_origins: %w", err)
		}
		origins = append(origins, n)
	}
	h.site = &gateway.Site{
		G:           app.Gateway(),
		APIPrefix:   h.APIPrefix,
		LoginPath:   h.LoginPath,
		Public:      h.Public,
		Gate:        h.Gate == nil || *h.Gate,
		Page:        page,
		Roles:       h.Roles,
		CORSOrigins: origins,
		Callbacks:   app.callbacks,
		Logger:      ctx.Logger(),
		Server:      serverName,
		Restyle:     errorRoutesAnswer,
	}
	return nil
}

// ServeHTTP serves the auth routes and the login page, and gates every
// other request: only a verified session (holding one of the site's
// roles, when it has some) reaches next, carrying the identity headers
// and the {http.auth.user.*} placeholders (id, phone, session_id and
// roles, comma-separated as in X-Auth-Roles).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	id, done, refusal := h.site.Handle(w, r, clientIP(r))
	if refusal != nil {
		// as basic_auth does: the server's error routes (handle_errors)
		// answer, with {http.error.status_code} and the refusal's message
		return caddyhttp.Error(apierr.As(refusal).Status, refusal)
	}
	if done {
		return nil
	}
	if id != nil {
		repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		repl.Set("http.auth.user.id", id.UserID)
		repl.Set("http.auth.user.phone", id.Phone)
		repl.Set("http.auth.user.session_id", id.SessionID)
		repl.Set("http.auth.user.roles", id.RolesList)
	}
	return next.ServeHTTP(w, r)
}

// pageChannels are the channels the login page offers: SMS, and WhatsApp
// and calls when the sender is configured for them. The console sender
// (development) takes every channel but has none configured.
func pageChannels(snd sender.Sender) []string {
	if t, ok := snd.(sender.Templated); ok {
		snd = t.Sender
	}
	out := []string{sender.SMS}
	if _, dev := snd.(*ConsoleSender); dev || snd == nil {
		return out
	}
	for _, ch := range []string{sender.WhatsApp, sender.Voice} {
		if snd.Supports(ch) {
			out = append(out, ch)
		}
	}
	return out
}

// serverName is the name of the Caddy server r came to, the `server`
// label of Caddy's own HTTP metrics.
func serverName(r *http.Request) string {
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv != nil {
		return srv.Name()
	}
	return ""
}

// errorRoutesAnswer reports whether the server's error routes
// (handle_errors) have an answer of their own for a gate refusal with
// this status on r. The gate then returns the refusal as an error, as
// basic_auth does, so they can restyle it; otherwise it writes its own
// answer (JSON, or the login redirect), because the server would answer
// an unhandled error with an empty body, which API clients cannot read.
//
// The routes are tried as the server would run them, without running
// their handlers: a route whose matchers match and that has a handler
// other than a subroute answers; a subroute is looked into.
func errorRoutesAnswer(r *http.Request, status int) bool {
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if !ok || srv == nil || srv.Errors == nil || len(srv.Errors.Routes) == 0 {
		return false
	}
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return false
	}
	// the placeholders the server sets before running its error routes,
	// which their matchers read ({http.error.status_code} for
	// `handle_errors 401`); removed again, since the routes may not run
	probe := caddyhttp.Error(status, nil)
	r = srv.Errors.WithError(r, probe)
	defer func() {
		for _, p := range []string{"http.error", "http.error.status_code", "http.error.status_text", "http.error.id", "http.error.trace", "http.error.message"} {
			repl.Delete(p)
		}
	}()
	return routesAnswer(srv.Errors.Routes, r)
}

func routesAnswer(routes caddyhttp.RouteList, r *http.Request) bool {
	for _, route := range routes {
		if match, err := route.MatcherSets.AnyMatchWithError(r); err != nil || !match {
			continue
		}
		for _, h := range route.Handlers {
			if sub, ok := h.(*caddyhttp.Subroute); ok {
				if routesAnswer(sub.Routes, r) {
					return true
				}
				continue
			}
			return true
		}
		if route.Terminal {
			return false
		}
	}
	return false
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
