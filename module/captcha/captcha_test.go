package captcha

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// provider fakes a siteverify endpoint: it answers with status and body,
// and the returned func gives the last form it was posted.
func provider(t *testing.T, status int, body string) (*httptest.Server, func() url.Values) {
	t.Helper()
	var (
		mu  sync.Mutex
		got url.Values
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("method = %s, want POST", r.Method)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type = %q", ct)
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("ParseForm: %v", err)
		}
		mu.Lock()
		got = r.PostForm
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, func() url.Values {
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

func TestVerify_Success_PostsSecretResponseAndRemoteIP(t *testing.T) {
	srv, form := provider(t, http.StatusOK, `{"success": true, "hostname": "example.com"}`)
	v := &Verifier{Provider: "turnstile", Secret: "s3cret", VerifyURL: srv.URL, Client: srv.Client()}

	if err := v.Verify(context.Background(), "tok", "203.0.113.7"); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for field, want := range map[string]string{"secret": "s3cret", "response": "tok", "remoteip": "203.0.113.7"} {
		if got := form().Get(field); got != want {
			t.Errorf("posted %s = %q, want %q", field, got, want)
		}
	}
}

func TestVerify_NoRemoteIP_OmitsField(t *testing.T) {
	srv, form := provider(t, http.StatusOK, `{"success": true}`)
	v := &Verifier{Provider: "hcaptcha", Secret: "s", VerifyURL: srv.URL}

	if err := v.Verify(context.Background(), "tok", ""); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if _, ok := form()["remoteip"]; ok {
		t.Errorf("remoteip posted although unknown")
	}
}

func TestVerify_FailsClosed(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"success false", http.StatusOK, `{"success": false, "error-codes": ["invalid-input-response"]}`},
		{"success missing", http.StatusOK, `{"hostname": "example.com"}`},
		{"success not a bool", http.StatusOK, `{"success": "true"}`},
		{"server error", http.StatusInternalServerError, `{"success": true}`},
		{"not found", http.StatusNotFound, `{"success": true}`},
		{"garbage", http.StatusOK, `<html>oops</html>`},
		{"empty body", http.StatusOK, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := provider(t, tt.status, tt.body)
			v := &Verifier{Provider: "recaptcha", Secret: "s", VerifyURL: srv.URL}
			if err := v.Verify(context.Background(), "tok", "203.0.113.7"); !errors.Is(err, ErrFailed) {
				t.Fatalf("Verify = %v, want ErrFailed", err)
			}
		})
	}
}

func TestVerify_EmptyToken_NoNetworkCall(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = w.Write([]byte(`{"success": true}`))
	}))
	defer srv.Close()
	v := &Verifier{Provider: "turnstile", Secret: "s", VerifyURL: srv.URL}

	if err := v.Verify(context.Background(), "", "203.0.113.7"); !errors.Is(err, ErrFailed) {
		t.Fatalf("Verify = %v, want ErrFailed", err)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("provider called %d times for an empty token", n)
	}
}

func TestVerify_ProviderUnreachable_Fails(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there any more
	v := &Verifier{Provider: "turnstile", Secret: "s", VerifyURL: addr}

	if err := v.Verify(context.Background(), "tok", ""); !errors.Is(err, ErrFailed) {
		t.Fatalf("Verify = %v, want ErrFailed", err)
	}
}

func TestVerify_ContextCanceled_FailsWithoutWaitingForProvider(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	v := &Verifier{Provider: "turnstile", Secret: "s", VerifyURL: srv.URL}

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	err := v.Verify(ctx, "tok", "")
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("Verify = %v, want ErrFailed", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify = %v, want it to carry context.Canceled", err)
	}
}

func TestVerify_TimeoutBoundsTheCall(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	// A timeout far shorter than any test deadline; the handler never
	// answers on its own, so only the Verifier's bound can end the call.
	v := &Verifier{Provider: "turnstile", Secret: "s", VerifyURL: srv.URL, Timeout: time.Millisecond}

	if err := v.Verify(context.Background(), "tok", ""); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrFailed) {
		t.Fatalf("Verify = %v, want ErrFailed and DeadlineExceeded", err)
	}
}

func TestVerify_UnknownProviderWithoutURL_Fails(t *testing.T) {
	v := &Verifier{Provider: "nope", Secret: "s"}
	if err := v.Verify(context.Background(), "tok", ""); !errors.Is(err, ErrFailed) {
		t.Fatalf("Verify = %v, want ErrFailed", err)
	}
}

func TestValidProvider(t *testing.T) {
	for name, want := range map[string]bool{
		"turnstile": true, "hcaptcha": true, "recaptcha": true,
		"": false, "Turnstile": false, "friendlycaptcha": false,
	} {
		if got := ValidProvider(name); got != want {
			t.Errorf("ValidProvider(%q) = %v, want %v", name, got, want)
		}
	}
}
