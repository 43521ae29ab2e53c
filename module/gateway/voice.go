package gateway

import (
	"net/http"
	"strings"

	"github.com/otpgate/otpgate/module/sender"
)

// withOrigin gives a send the public URL of this site's API, for provider
// callbacks (Plivo's voice answer URL), and the client's languages.
func (s *Site) withOrigin(r *http.Request) *http.Request {
	base := strings.TrimRight(s.G.publicURL(), "/")
	if base == "" {
		// like Plivo's signature check: X-Forwarded-* is not trusted;
		// public_url says where a proxy in front is reached
		base = "http://" + r.Host
		if r.TLS != nil {
			base = "https://" + r.Host
		}
	}
	return r.WithContext(sender.WithOrigin(r.Context(), sender.Origin{
		APIURL:         base + s.APIPrefix,
		AcceptLanguage: r.Header.Get("Accept-Language"),
	}))
}

// publicURL is where the outside world reaches this server, when a proxy
// in front changes the scheme or host ("": the request's own).
func (g *Gateway) publicURL() string { return g.cfg.PublicURL }
