package gateway

import (
	"net"
	"net/http"
	"strings"
)

// warnIfInsecure logs once per site that its login page was served over
// plain HTTP to a host that is not localhost: browsers drop the Secure
// session cookies there, so nobody can stay signed in (the page tells the
// visitor too). A proxy in front that terminates TLS says so with
// X-Forwarded-Proto or Forwarded, and then nothing is logged.
func (s *Site) warnIfInsecure(r *http.Request) {
	if !plainHTTPElsewhere(r) || s.insecureWarned.Swap(true) {
		return
	}
	s.logger(r).Warn("login page served over plain HTTP to a host other than localhost: " +
		"browsers drop the Secure session cookies, so sign-in cannot work; serve this site over HTTPS")
}

// plainHTTPElsewhere reports whether r reached the site over plain HTTP,
// as far as the browser is concerned, at a host a browser does not treat
// as a secure context (localhost and loopback addresses it does).
func plainHTTPElsewhere(r *http.Request) bool {
	if r.TLS != nil {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(strings.Split(r.Header.Get("X-Forwarded-Proto"), ",")[0]), "https") ||
		strings.Contains(strings.ToLower(r.Header.Get("Forwarded")), "proto=https") {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return false
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return false
	}
	return true
}
