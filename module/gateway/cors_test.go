package gateway

import (
	"net/http"
	"strings"
	"testing"
)

func TestNormalizeOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://App.Example.com":      "https://app.example.com",
		"https://app.example.com/":     "https://app.example.com",
		"https://app.example.com:443":  "https://app.example.com",
		"http://127.0.0.1:8080":        "http://127.0.0.1:8080",
		"http://[::1]:3000":            "http://[::1]:3000",
		"https://app.example.com:8443": "https://app.example.com:8443",
	} {
		if got, err := NormalizeOrigin(in); err != nil || got != want {
			t.Errorf("NormalizeOrigin(%q) = %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"app.example.com", "ftp://x.example", "https://*.example.com", "https://app.example.com/path",
		"https://app.example.com?x=1", "https://user@app.example.com", "*", "null", "https://"} {
		if got, err := NormalizeOrigin(bad); err == nil {
			t.Errorf("NormalizeOrigin(%q) = %q, want an error", bad, got)
		}
	}
}

// A listed origin's preflight is answered and its credentialed requests
// carry the CORS headers; any other origin gets none, and its
// state-changing requests stay refused.
func TestCORS_ListedOriginsOnly(t *testing.T) {
	e := newEnv(t, openMemory(t))
	e.site = &Site{G: e.g, APIPrefix: "/auth/v1", LoginPath: "/auth/login", Gate: true, CORSOrigins: []string{"https://app.example.com"}}
	const app, evil = "https://app.example.com", "https://evil.example.net"

	pre := e.do("OPTIONS", "/auth/v1/otp", "", "Origin", app, "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "content-type,apikey,x-client-info,authorization,x-supabase-api-version")
	h := pre.header
	if pre.status != 204 || h.Get("Access-Control-Allow-Origin") != app || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("preflight: %d %v", pre.status, h)
	}
	for _, m := range []string{"POST", "PUT", "GET"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Methods"), m) {
			t.Errorf("Allow-Methods %q lacks %s", h.Get("Access-Control-Allow-Methods"), m)
		}
	}
	for _, hd := range []string{"authorization", "apikey", "content-type", "x-client-info", "x-supabase-api-version"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Headers"), hd) {
			t.Errorf("Allow-Headers %q lacks %s", h.Get("Access-Control-Allow-Headers"), hd)
		}
	}
	if !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
		t.Errorf("Vary = %v", h.Values("Vary"))
	}
	if e.sender.count() != 0 {
		t.Fatal("a preflight sent a code")
	}

	r := e.do("POST", "/auth/v1/otp", `{"phone":"`+alice+`"}`, "Origin", app, "Sec-Fetch-Site", "cross-site")
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != app || r.header.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "x-sb-error-code") {
		t.Fatalf("credentialed POST from the listed origin: %d %v %s", r.status, r.header, r.raw)
	}
	// errors carry the headers too, so the page can read them
	wantError(t, e.do("POST", "/auth/v1/otp", `{"phone":"`+alice+`"}`, "Origin", app, "Sec-Fetch-Site", "cross-site"), 429, "over_sms_send_rate_limit")

	// another origin: no CORS headers, preflight not answered, POST refused
	pre = e.do("OPTIONS", "/auth/v1/otp", "", "Origin", evil, "Access-Control-Request-Method", "POST")
	if pre.header.Get("Access-Control-Allow-Origin") != "" || pre.status == 204 {
		t.Fatalf("preflight from another origin: %d %v", pre.status, pre.header)
	}
	r = e.do("POST", "/auth/v1/otp", `{"phone":"`+bob+`"}`, "Origin", evil, "Sec-Fetch-Site", "cross-site")
	wantError(t, r, 403, "cross_site_request")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("another origin got CORS headers")
	}
	// a look-alike of the listed origin is another origin
	wantError(t, e.do("POST", "/auth/v1/otp", `{"phone":"`+bob+`"}`, "Origin", "https://app.example.com.evil.example.net", "Sec-Fetch-Site", "cross-site"), 403, "cross_site_request")
	// outside the API (the gate, the login page) there is no CORS
	if g := e.do("GET", "/app", "", "Origin", app); g.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("the gate answered with CORS headers: %v", g.header)
	}
	// without cors_origins nothing changes: cross-site is refused
	e = newEnv(t, openMemory(t))
	wantError(t, e.do("POST", "/auth/v1/otp", `{"phone":"`+carol+`"}`, "Origin", app, "Sec-Fetch-Site", "cross-site"), 403, "cross_site_request")
	if pre := e.do("OPTIONS", "/auth/v1/otp", "", "Origin", app, "Access-Control-Request-Method", "POST"); pre.status != http.StatusMethodNotAllowed {
		t.Fatalf("preflight without cors_origins: %d", pre.status)
	}
}
