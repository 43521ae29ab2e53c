package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/otpgate/otpgate/module/apierr"
)

// CORS for single-page apps on other origins (the handler's cors_origins):
// a listed origin may call the auth API with credentials, its preflight is
// answered, and the cross-site check admits it. Every other origin gets no
// CORS headers (the browser keeps the answer from the page) and its
// state-changing requests stay refused.

const (
	corsMethods = "GET, HEAD, POST, PUT, OPTIONS"
	// what Supabase clients send: auth-js, supabase-flutter, supabase-swift
	corsHeaders = "authorization, apikey, content-type, x-client-info, x-supabase-api-version"
	// what a page may read of an answer: the error code, when to retry, the
	// error format's version
	corsExpose = "x-sb-error-code, retry-after, x-supabase-api-version"
	corsMaxAge = "600"
)

// NormalizeOrigin checks a cors_origins entry and returns it as browsers
// send it in the Origin header: scheme://host[:port], lower case, with no
// default port, path, query or wildcard.
func NormalizeOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%q is not an origin such as https://app.example.com (%s)", s, why)
	}
	switch {
	case err != nil:
		return bad("unparsable")
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("scheme must be http or https")
	case u.Host == "" || u.Opaque != "":
		return bad("no host")
	case u.User != nil:
		return bad("no user info allowed")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(s, "?") || strings.HasSuffix(s, "#"):
		return bad("no path, query or fragment allowed")
	case strings.Contains(u.Host, "*"):
		return bad("no wildcards: list each origin")
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return u.Scheme + "://" + host, nil
}

// corsOrigin is the request's Origin when it is one of the site's
// cors_origins, else "".
func (s *Site) corsOrigin(r *http.Request) string {
	if len(s.CORSOrigins) == 0 {
		return ""
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	o, err := NormalizeOrigin(origin)
	if err != nil {
		return ""
	}
	for _, allowed := range s.CORSOrigins {
		if o == allowed {
			return origin
		}
	}
	return ""
}

// serveCORS adds the CORS headers to an auth API answer for a listed
// origin, and answers its preflight (done). Answers vary by Origin
// whenever the site has cors_origins.
func (s *Site) serveCORS(w http.ResponseWriter, r *http.Request) (done bool) {
	if len(s.CORSOrigins) == 0 {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := s.corsOrigin(r)
	if origin == "" {
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		h.Set("Access-Control-Allow-Methods", corsMethods)
		h.Set("Access-Control-Allow-Headers", corsHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	h.Set("Access-Control-Expose-Headers", corsExpose)
	return false
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
		if s.G.CookieDomain() == "" {
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
	if d := s.G.CookieDomain(); d != "" {
		host := strings.ToLower(u.Hostname())
		d = strings.ToLower(strings.TrimPrefix(d, "."))
		if host == d || strings.HasSuffix(host, "."+d) {
			return nil
		}
	}
	return refuse
}
