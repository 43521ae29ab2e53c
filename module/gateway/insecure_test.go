package gateway

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otpgate/otpgate/module/loginpage"
)

// The login page served over plain HTTP to a host a browser does not
// trust is logged once per site, for the operator; localhost, HTTPS and a
// TLS-terminating proxy are not.
func TestLoginPage_PlainHTTPElsewhere_WarnsOnce(t *testing.T) {
	page, err := loginpage.New(loginpage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.WarnLevel)
	s := &Site{APIPrefix: "/auth/v1", LoginPath: "/auth/login", Page: page, Logger: zap.New(core)}
	get := func(host string, mod func(*http.Request)) {
		r := httptest.NewRequest(http.MethodGet, "http://"+host+"/auth/login", nil)
		if mod != nil {
			mod(r)
		}
		w := httptest.NewRecorder()
		if _, done, _ := s.Handle(w, r, "192.0.2.1"); !done || w.Code != http.StatusOK {
			t.Fatalf("GET %s: done %v, status %d", host, done, w.Code)
		}
	}

	for _, host := range []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080", "app.localhost"} {
		get(host, nil)
	}
	get("app.example.com", func(r *http.Request) { r.TLS = &tls.ConnectionState{} })
	get("app.example.com", func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "https") })
	get("app.example.com", func(r *http.Request) { r.Header.Set("Forwarded", "for=192.0.2.1;proto=https") })
	if n := logs.Len(); n != 0 {
		t.Fatalf("%d warnings for secure contexts: %v", n, logs.All())
	}

	get("app.example.com", nil)
	get("192.0.2.7:8080", nil)
	warnings := logs.All()
	if len(warnings) != 1 {
		t.Fatalf("%d warnings, want exactly one: %v", len(warnings), warnings)
	}
	if w := warnings[0]; w.ContextMap()["host"] != "app.example.com" {
		t.Errorf("warning %q with fields %v, want the host", w.Message, w.ContextMap())
	}
}
