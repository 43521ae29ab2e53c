package loginpage

import (
	"net/url"
	"strings"
	"testing"
)

func TestSafeReturnTo(t *testing.T) {
	long := "/" + strings.Repeat("a", MaxReturnToLen-1)
	tests := []struct {
		in, want string
	}{
		// Accepted: same-origin absolute paths.
		{"/", "/"},
		{"/app", "/app"},
		{"/app/", "/app/"},
		{"/app/page?x=1&y=two#frag", "/app/page?x=1&y=two#frag"},
		{"/search?q=a%20b", "/search?q=a%20b"},
		{"/caf%C3%A9", "/caf%C3%A9"},
		{"/café", "/café"},
		{"/a:b", "/a:b"},
		{"/javascript:alert(1)", "/javascript:alert(1)"},
		{"/next?url=https://example.com", "/next?url=https://example.com"},
		{"/%252F%252Fevil.com", "/%252F%252Fevil.com"}, // decoded once: "/%2F%2Fevil.com", a plain path
		{"/a.b/..c/.d", "/a.b/..c/.d"},
		{long, long},

		// Empty and relative.
		{"", "/"},
		{"app", "/"},
		{"./app", "/"},
		{"../app", "/"},
		{"?x=1", "/"},
		{"#frag", "/"},
		{" /app", "/"},

		// Other origins.
		{"//evil.com", "/"},
		{"///evil.com", "/"},
		{"/\\evil.com", "/"},
		{"\\\\evil.com", "/"},
		{"\\/evil.com", "/"},
		{"/app\\..\\evil", "/"},
		{"https://evil.com", "/"},
		{"http://evil.com/app", "/"},
		{"javascript:alert(1)", "/"},
		{"data:text/html,hi", "/"},
		{"HTTPS://evil.com", "/"},
		{"mailto:x@evil.com", "/"},

		// Encoded tricks, refused after one round of decoding.
		{"/%2F%2Fevil.com", "/"},
		{"/%2fevil.com", "/"},
		{"/%5Cevil.com", "/"},
		{"/%5cevil.com", "/"},
		{"%2F%2Fevil.com", "/"},
		{"/%09/evil.com", "/"},
		{"/%0d%0aSet-Cookie:x", "/"},
		{"/%00", "/"},
		{"/%2e%2e/%2e%2e//evil.com", "/"},
		{"/%2e%2e", "/"},
		{"/%", "/"},
		{"/%zz", "/"},
		{"/%C3", "/"}, // invalid UTF-8 once decoded
		{"/%C2%85", "/"},

		// Control characters, which URL parsers strip or choke on.
		{"/\t/evil.com", "/"},
		{"/\n/evil.com", "/"},
		{"/\r/evil.com", "/"},
		{"/app\x00", "/"},
		{"/app\x7f", "/"},
		{"/app\u0085", "/"},
		{"/\xff", "/"},

		// Dot and empty segments that a normaliser could fold into //host.
		{"/./evil.com", "/"},
		{"/../evil.com", "/"},
		{"/..//evil.com", "/"},
		{"/app/..", "/"},
		{"/app/.", "/"},
		{"/app//evil.com", "/"},

		// Length cap.
		{long + "a", "/"},
	}
	for _, tt := range tests {
		if got := SafeReturnTo(tt.in); got != tt.want {
			t.Errorf("SafeReturnTo(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzSafeReturnTo(f *testing.F) {
	for _, s := range []string{
		"/", "/app?x=1#y", "//evil.com", "/\\evil.com", "/%2F%2Fevil.com", "/%5Cevil.com",
		"https://evil.com", "/\t/evil.com", "/../x", "/%2e%2e//x", "/a:b", "javascript:x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := SafeReturnTo(raw)
		if got != "/" && got != raw {
			t.Fatalf("SafeReturnTo(%q) = %q: neither the input nor /", raw, got)
		}
		for _, s := range []string{got, mustUnescape(t, got)} {
			if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.HasPrefix(s, `/\`) {
				t.Fatalf("SafeReturnTo(%q) = %q: %q is not a same-origin path", raw, got, s)
			}
			if strings.Contains(s, `\`) {
				t.Fatalf("SafeReturnTo(%q) = %q: backslash", raw, got)
			}
			if i := strings.Index(s, ":"); i >= 0 && !strings.Contains(s[:i], "/") {
				t.Fatalf("SafeReturnTo(%q) = %q: scheme-like prefix", raw, got)
			}
		}
		// Resolved against a page of the site, it stays on the site.
		base, _ := url.Parse("https://site.example/auth/login")
		ref, err := url.Parse(got)
		if err != nil {
			t.Fatalf("SafeReturnTo(%q) = %q: unparsable: %v", raw, got, err)
		}
		if ref.Scheme != "" || ref.Host != "" || ref.User != nil {
			t.Fatalf("SafeReturnTo(%q) = %q: has scheme, host or user", raw, got)
		}
		if u := base.ResolveReference(ref); u.Host != "site.example" || strings.HasPrefix(u.EscapedPath(), "//") {
			t.Fatalf("SafeReturnTo(%q) = %q: resolves to %s", raw, got, u)
		}
	})
}

func mustUnescape(t *testing.T, s string) string {
	t.Helper()
	d, err := url.PathUnescape(s)
	if err != nil {
		t.Fatalf("accepted %q does not decode: %v", s, err)
	}
	return d
}
