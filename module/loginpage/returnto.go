package loginpage

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// MaxReturnToLen caps the length of a return_to value.
const MaxReturnToLen = 2048

// SafeReturnTo returns raw when it is a same-origin absolute path (with an
// optional query and fragment), and "/" otherwise.
//
// Browsers and proxies disagree on what a URL means at the edges, so this
// accepts only the plain case: raw starts with one '/' (not "//" or "/\"),
// has no backslash, no control or invalid UTF-8 characters, no empty or dot
// path segment ("//", "/./", "/../") that a normaliser downstream could turn
// into "//host", and the same holds once more after one round of
// percent-decoding, so "/%2F%2Fevil.com" and "/%5Cevil.com" are refused.
func SafeReturnTo(raw string) string {
	if len(raw) == 0 || len(raw) > MaxReturnToLen || !plainPath(raw) {
		return "/"
	}
	decoded, err := url.PathUnescape(raw)
	if err != nil || !plainPath(decoded) {
		return "/"
	}
	return raw
}

// plainPath reports whether s is an absolute path with none of the forms
// that SafeReturnTo refuses.
func plainPath(s string) bool {
	if len(s) == 0 || s[0] != '/' {
		return false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, '\\') {
		return false
	}
	for _, r := range s {
		// C0 controls (tab and newlines are stripped by URL parsers, so
		// "/\t/evil" would become "//evil"), DEL and C1 controls.
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return false
		}
	}
	path := s
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	for seg := range strings.SplitSeq(path[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return !strings.Contains(path, "//")
}
