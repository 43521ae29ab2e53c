package gateway

import (
	"context"
	"net/http"

	"go.uber.org/zap"
)

// scope is what a site adds to an auth request's context, so that the
// lines and metrics the request causes deeper in the gateway say where it
// came from: the site handler's logger with the request's host, and the
// server's name for the metrics' server label.
type scope struct {
	log    *zap.Logger
	server string
}

type scopeKey struct{}

// withScope is r carrying this site's scope. Only auth requests get one:
// the gate's steady state must not allocate for it.
func (s *Site) withScope(r *http.Request) *http.Request {
	sc := &scope{log: s.logger(r), server: s.server(r)}
	return r.WithContext(context.WithValue(r.Context(), scopeKey{}, sc))
}

// logger is the site's logger (the gateway's when it has none) with the
// request's host.
func (s *Site) logger(r *http.Request) *zap.Logger {
	l := s.Logger
	if l == nil {
		l = s.G.log
	}
	return l.With(zap.String("host", r.Host))
}

// server is the name of the server this site's requests arrive on; a
// handler belongs to one server, so it is looked up once.
func (s *Site) server(r *http.Request) string {
	if p := s.serverName.Load(); p != nil {
		return *p
	}
	name := ""
	if s.Server != nil {
		name = s.Server(r)
	}
	s.serverName.Store(&name)
	return name
}

// logFor is the logger for lines about the request of ctx.
func (g *Gateway) logFor(ctx context.Context) *zap.Logger {
	if sc, ok := ctx.Value(scopeKey{}).(*scope); ok {
		return sc.log
	}
	return g.log
}

// serverOf is the server label for metrics about the request of ctx.
func serverOf(ctx context.Context) string {
	if sc, ok := ctx.Value(scopeKey{}).(*scope); ok {
		return sc.server
	}
	return ""
}
