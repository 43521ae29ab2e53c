package gateway

import (
	"net/http"
	"net/url"
	"path"
	"strings"
)

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
