package otpgate

import (
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/gateway"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// adminBase is where otpgate's routes live on Caddy's admin endpoint.
const adminBase = "/otpgate"

// AdminAPI is the `admin.api.otpgate` module: user administration on
// Caddy's admin endpoint (and so for `caddy otpgate users`):
//
//	GET    /otpgate/users?phone=&page=&per_page=
//	POST   /otpgate/users
//	GET    /otpgate/users/{id}
//	PATCH  /otpgate/users/{id}
//	DELETE /otpgate/users/{id}
//	GET    /otpgate/users/{id}/sessions
//	DELETE /otpgate/users/{id}/sessions
//
// It serves the otpgate app of the running config; Caddy guards the
// endpoint itself (local address, Host and Origin checks, or remote admin
// with client certificates).
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.otpgate",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes implements caddy.AdminRouter.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: adminBase + "/",
		Handler: caddy.AdminHandlerFunc(serveAdminAPI),
	}}
}

// serveAdminAPI hands the request to the running gateway, which writes
// the answer itself (JSON bodies and status codes as they are: 201 for a
// creation, 204 for a deletion, otpgate's JSON errors), so it never returns
// an error for Caddy to rewrite.
func serveAdminAPI(w http.ResponseWriter, r *http.Request) error {
	app, missing := runningApp()
	if app == nil {
		apierr.Write(w, r, apierr.New(http.StatusNotFound, apierr.NotFound, missing))
		return nil
	}
	route := strings.TrimPrefix(r.URL.Path, adminBase)
	app.gw.ServeAdmin(w, r, route, gateway.DialectOtpgate, gateway.Actor{
		Kind:      "admin",
		IP:        remoteIP(r),
		UserAgent: r.UserAgent(),
		Host:      r.Host,
	})
	return nil
}

// runningApp is the otpgate app of the active config, or nil and why not.
// AppIfConfigured never provisions an app that the config does not have
// (a handler that uses otpgate without the global block has loaded it
// already).
func runningApp() (*App, string) {
	v, err := caddy.ActiveContext().AppIfConfigured("otpgate")
	if err != nil {
		if errors.Is(err, caddy.ErrNotConfigured) {
			return nil, "otpgate is not configured in the running config."
		}
		return nil, "otpgate is not running: " + err.Error()
	}
	app, ok := v.(*App)
	if !ok || app.gw == nil {
		return nil, "otpgate is not running."
	}
	return app, ""
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

var _ caddy.AdminRouter = AdminAPI{}
