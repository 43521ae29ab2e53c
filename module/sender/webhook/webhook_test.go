package webhook

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/sender"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// The test vector published with the Standard Webhooks libraries.
func TestSign_StandardWebhooksTestVector(t *testing.T) {
	key, err := ParseSecret(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", []byte(`{"test": 2432232314}`))
	if want := "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature = %s, want %s", got, want)
	}
}

func TestParseSecret_Forms(t *testing.T) {
	key, _ := ParseSecret(testSecret)
	for _, s := range []string{testSecret, "v1," + testSecret, " " + testSecret + "\n"} {
		got, err := ParseSecret(s)
		if err != nil || string(got) != string(key) {
			t.Errorf("ParseSecret(%q) = %x, %v", s, got, err)
		}
	}
	for _, tc := range []struct{ secret, want string }{
		{"", "secret is required"},
		{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", `must be "whsec_" followed by base64`},
		{"whsec_not base64!", `must be "whsec_" followed by base64`},
		{"whsec_" + base64.StdEncoding.EncodeToString([]byte("short")), "at least 16 bytes"},
	} {
		_, err := ParseSecret(tc.secret)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSecret(%q) = %v, want %q", tc.secret, err, tc.want)
		}
		if err != nil && tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
			t.Errorf("error quotes the secret: %v", err)
		}
	}
}

func TestNew_ValidatesConfig(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Secret: testSecret}, "url is required"},
		{Config{URL: "hooks.example.com/sms", Secret: testSecret}, "absolute http or https URL"},
		{Config{URL: "https://u:p@hooks.example.com/", Secret: testSecret}, "credentials"},
		{Config{URL: "https://hooks.example.com/"}, "secret is required"},
		{Config{URL: "https://hooks.example.com/", Secret: testSecret, Timeout: -time.Second}, "timeout must be positive"},
		{Config{URL: "https://hooks.example.com/", Secret: testSecret, Channels: []string{"fax"}}, `unknown channel "fax"`},
	} {
		if _, err := New(tc.c, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.c, err, tc.want)
		}
	}
}

type received struct {
	header http.Header
	body   []byte
}

func newSender(t *testing.T, url string, mutate func(*Config)) *Sender {
	t.Helper()
	c := Config{URL: url, Secret: testSecret, Timeout: 2 * time.Second}
	if mutate != nil {
		mutate(&c)
	}
	s, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSend_PostsSignedSupabasePayload(t *testing.T) {
	got := make(chan received, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- received{r.Header.Clone(), b}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	s := newSender(t, srv.URL+"/send-sms", nil)
	s.now = func() time.Time { return time.Unix(1700000000, 0) }

	res, err := s.Send(context.Background(), sender.Message{To: "+14155550123", Channel: sender.SMS, Code: "482913", App: "Acme", TTL: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	rec := <-got
	if res.MessageID == "" || res.MessageID != rec.header.Get("webhook-id") || !strings.HasPrefix(res.MessageID, "msg_") {
		t.Fatalf("message id %q, webhook-id %q", res.MessageID, rec.header.Get("webhook-id"))
	}
	if ts := rec.header.Get("webhook-timestamp"); ts != strconv.Itoa(1700000000) {
		t.Fatalf("webhook-timestamp %q", ts)
	}
	key, _ := ParseSecret(testSecret)
	want := "v1," + Sign(key, rec.header.Get("webhook-id"), rec.header.Get("webhook-timestamp"), rec.body)
	if sig := rec.header.Get("webhook-signature"); sig != want {
		t.Fatalf("webhook-signature %q, want %q", sig, want)
	}
	if ct := rec.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	var p map[string]any
	if err := json.Unmarshal(rec.body, &p); err != nil {
		t.Fatal(err)
	}
	if string(rec.body) != `{"user":{"phone":"14155550123"},"sms":{"otp":"482913"},"channel":"sms"}` {
		t.Fatalf("payload %s", rec.body)
	}
}

func TestSend_Non2xx_SendErrorWithStatus(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusFound, http.StatusInternalServerError, http.StatusBadGateway} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if status == http.StatusFound {
				http.Redirect(w, r, "/elsewhere", status)
				return
			}
			http.Error(w, "the code 482913 was refused", status)
		}))
		s := newSender(t, srv.URL, nil)
		_, err := s.Send(context.Background(), sender.Message{To: "+14155550123", Code: "482913"})
		srv.Close()
		var se *StatusError
		if !errors.As(err, &se) || se.Status != status || errors.Is(err, sender.ErrTimeout) {
			t.Errorf("status %d: err = %v", status, err)
		}
		if err != nil && strings.Contains(err.Error(), "482913") {
			t.Errorf("error holds the code: %v", err)
		}
	}
}

func TestSend_NoAnswerWithinTimeout_ErrTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	s := newSender(t, srv.URL, func(c *Config) { c.Timeout = 200 * time.Millisecond })
	start := time.Now()
	_, err := s.Send(context.Background(), sender.Message{To: "+14155550123", Code: "482913"})
	if !errors.Is(err, sender.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestSend_ConnectionRefused_SendError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := newSender(t, "http://"+addr+"/hook?token=s3cret", nil)
	_, err = s.Send(context.Background(), sender.Message{To: "+14155550123", Code: "482913"})
	if err == nil || errors.Is(err, sender.ErrTimeout) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("err = %v", err)
	}
}

func TestSend_Channels(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer srv.Close()
	s := newSender(t, srv.URL, nil)
	if !s.Supports(sender.SMS) || s.Supports(sender.Voice) || s.Supports(sender.WhatsApp) {
		t.Fatal("default channels are sms only")
	}
	if _, err := s.Send(context.Background(), sender.Message{To: "+14155550123", Channel: sender.Voice, Code: "1"}); !errors.Is(err, sender.ErrChannel) {
		t.Fatalf("voice: %v", err)
	}
	s = newSender(t, srv.URL, func(c *Config) { c.Channels = []string{sender.SMS, sender.Voice} })
	if _, err := s.Send(context.Background(), sender.Message{To: "+14155550123", Channel: sender.Voice, Code: "1"}); err != nil {
		t.Fatalf("voice: %v", err)
	}
}
