package gateway

import (
	"net/http"
	"strings"

	"github.com/otpgate/otpgate/module/sender"
)

// ServerSecret is the current server secret (Rekey may replace it at
// start), for senders that seal data into provider callbacks: Plivo's
// voice answer URL carries the code sealed with it.
func (g *Gateway) ServerSecret() []byte { return g.keys.Load().secret }

// withOrigin gives a send the public URL of this site's API, for provider
// callbacks (Plivo's voice answer URL), and the client's languages.
func (s *Site) withOrigin(r *http.Request) *http.Request {
	base := strings.TrimRight(s.G.cfg.PublicURL, "/")
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
