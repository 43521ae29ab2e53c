package plivo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/sender"
)

const (
	testFrom = "+14155550100"
	testTo   = "+14155550199"
	testCode = "482913"
)

func newSender(t *testing.T, f *testenv.FakePlivo, mutate func(*Config)) *Sender {
	t.Helper()
	c := Config{AuthID: f.AuthID, AuthToken: f.AuthToken, From: testFrom, APIURL: f.URL()}
	if mutate != nil {
		mutate(&c)
	}
	s, err := New(c, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func smsMessage() sender.Message {
	return sender.Message{To: testTo, Channel: sender.SMS, Code: testCode, App: "Acme", TTL: 5 * time.Minute}
}

func onlyMessage(t *testing.T, f *testenv.FakePlivo) testenv.FakeMessage {
	t.Helper()
	msgs := f.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages at Plivo, want 1", len(msgs))
	}
	return msgs[0]
}

func TestSend_SMS_SendsEveryField(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	s := newSender(t, f, nil)
	res, err := s.Send(context.Background(), smsMessage())
	if err != nil {
		t.Fatal(err)
	}
	if res.MessageID == "" {
		t.Fatal("no message id")
	}
	m := onlyMessage(t, f)
	if m.Src != testFrom || m.PowerpackUUID != "" {
		t.Errorf("src %q powerpack %q", m.Src, m.PowerpackUUID)
	}
	if m.Dst != "14155550199" {
		t.Errorf("dst = %q, want the number without '+'", m.Dst)
	}
	if m.Text != "Your Acme code is 482913" || m.Type != "sms" || m.MessageExpiry != 300 {
		t.Errorf("text %q type %q expiry %d", m.Text, m.Type, m.MessageExpiry)
	}
	if m.Log != false || !strings.Contains(string(m.Raw), `"log":false`) {
		t.Errorf("log = %#v in %s", m.Log, m.Raw)
	}
	if m.Template != nil {
		t.Errorf("template sent with SMS: %+v", m.Template)
	}
	if f.LastCode(testTo) != testCode {
		t.Errorf("LastCode = %q", f.LastCode(testTo))
	}
}

func TestSend_SMS_Powerpack(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	s := newSender(t, f, func(c *Config) { c.From, c.PowerpackUUID = "", "d35f2e82-d387-427f-8594-6fa07613c43a" })
	if _, err := s.Send(context.Background(), smsMessage()); err != nil {
		t.Fatal(err)
	}
	m := onlyMessage(t, f)
	if m.Src != "" || m.PowerpackUUID != "d35f2e82-d387-427f-8594-6fa07613c43a" {
		t.Fatalf("src %q powerpack %q", m.Src, m.PowerpackUUID)
	}
}

func TestSend_SMS_CustomTemplate(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	s := newSender(t, f, func(c *Config) { c.Template = "{code} is your {app} login code" })
	if _, err := s.Send(context.Background(), smsMessage()); err != nil {
		t.Fatal(err)
	}
	if m := onlyMessage(t, f); m.Text != "482913 is your Acme login code" {
		t.Fatalf("text = %q", m.Text)
	}
}

func TestSend_SMS_MessageExpiryWithinPlivoBounds(t *testing.T) {
	for _, tc := range []struct {
		ttl  time.Duration
		want int
	}{
		{5 * time.Minute, 300}, {90 * time.Second, 90}, {time.Second, 5}, {24 * time.Hour, 10799}, {0, 0},
	} {
		f := testenv.NewFakePlivo(t)
		s := newSender(t, f, nil)
		m := smsMessage()
		m.TTL = tc.ttl
		if _, err := s.Send(context.Background(), m); err != nil {
			t.Fatalf("ttl %s: %v", tc.ttl, err)
		}
		if got := onlyMessage(t, f).MessageExpiry; got != tc.want {
			t.Errorf("ttl %s: message_expiry %d, want %d", tc.ttl, got, tc.want)
		}
	}
}

func TestSend_EmptyChannelMeansSMS(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	s := newSender(t, f, nil)
	m := smsMessage()
	m.Channel = ""
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got := onlyMessage(t, f).Type; got != "sms" {
		t.Fatalf("type = %q", got)
	}
}

func TestSend_WhatsApp_ApprovedTemplateWithCode(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	s := newSender(t, f, func(c *Config) { c.WhatsAppTemplate, c.WhatsAppLanguage = "otp_login", "en_US" })
	if !s.Supports(sender.WhatsApp) {
		t.Fatal("whatsapp not supported with a template")
	}
	m := smsMessage()
	m.Channel = sender.WhatsApp
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := onlyMessage(t, f)
	if got.Type != "whatsapp" || got.Src != testFrom || got.Dst != "14155550199" || got.Text != "" || got.Log != false {
		t.Fatalf("message %+v", got)
	}
	tpl := got.Template
	if tpl == nil || tpl.Name != "otp_login" || tpl.Language != "en_US" || len(tpl.Components) != 2 {
		t.Fatalf("template %+v", tpl)
	}
	body, button := tpl.Components[0], tpl.Components[1]
	if body.Type != "body" || len(body.Parameters) != 1 || body.Parameters[0] != (testenv.FakeParameter{Type: "text", Text: testCode}) {
		t.Errorf("body component %+v", body)
	}
	if button.Type != "button" || button.SubType != "url" || button.Index != "0" ||
		len(button.Parameters) != 1 || button.Parameters[0].Text != testCode {
		t.Errorf("button component %+v", button)
	}
	if f.LastCode(testTo) != testCode {
		t.Errorf("LastCode = %q", f.LastCode(testTo))
	}
}

func TestSend_UnsupportedChannel_ErrChannelWithoutRequest(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	s := newSender(t, f, nil)
	if s.Supports(sender.WhatsApp) || s.Supports("voice") || !s.Supports(sender.SMS) {
		t.Fatal("Supports is wrong")
	}
	for _, ch := range []string{sender.WhatsApp, "voice"} {
		m := smsMessage()
		m.Channel = ch
		if _, err := s.Send(context.Background(), m); !errors.Is(err, sender.ErrChannel) {
			t.Errorf("%s: err = %v", ch, err)
		}
	}
	if n := f.Requests(); n != 0 {
		t.Fatalf("%d requests reached Plivo", n)
	}
}

func TestSend_BadDestination_NoRequest(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	s := newSender(t, f, nil)
	for _, to := range []string{"14155550199", "+1415555<0199", "+1415 5550199", "+", "+0123456789", ""} {
		m := smsMessage()
		m.To = to
		_, err := s.Send(context.Background(), m)
		if err == nil || errors.Is(err, sender.ErrTimeout) || errors.Is(err, sender.ErrChannel) {
			t.Errorf("%q: err = %v", to, err)
		}
	}
	if n := f.Requests(); n != 0 {
		t.Fatalf("%d requests reached Plivo", n)
	}
}

func TestSend_ProviderFailures_AreSendErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   testenv.PlivoMode
		status int
	}{
		{"500 json", testenv.Plivo500, 500},
		{"500 empty", testenv.Plivo500Empty, 500},
		{"503", testenv.Plivo503, 503},
		{"429", testenv.Plivo429, 429},
		{"401", testenv.Plivo401, 401},
		{"202 without uuid", testenv.PlivoNoUUID, 202},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := testenv.NewFakePlivo(t)
			f.Fail(tc.mode)
			s := newSender(t, f, nil)
			res, err := s.Send(context.Background(), smsMessage())
			assertSendError(t, err, tc.status)
			if res.MessageID != "" {
				t.Errorf("message id %q on failure", res.MessageID)
			}
			if n := len(f.Messages()); n != 1 {
				t.Errorf("%d requests, want exactly 1 (no retry)", n)
			}
		})
	}
}

func TestSend_WrongCredentials_SendError(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	s := newSender(t, f, func(c *Config) { c.AuthToken = "not-the-token" })
	_, err := s.Send(context.Background(), smsMessage())
	assertSendError(t, err, 401)
	if strings.Contains(err.Error(), "not-the-token") || strings.Contains(err.Error(), f.AuthID) {
		t.Errorf("error leaks credentials: %v", err)
	}
}

func TestSend_ConnectionRefused_SendError(t *testing.T) {
	srv := httptest.NewServer(nil)
	srv.Close()
	s, err := New(Config{AuthID: "MAID", AuthToken: "token", From: testFrom, APIURL: srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Send(context.Background(), smsMessage())
	assertSendError(t, err, 0)
	if strings.Contains(err.Error(), "MAID") {
		t.Errorf("error carries the request URL: %v", err)
	}
}

func assertSendError(t *testing.T, err error, status int) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if errors.Is(err, sender.ErrTimeout) || errors.Is(err, sender.ErrChannel) {
		t.Fatalf("err = %v, want a send failure", err)
	}
	var se *StatusError
	if status != 0 && (!errors.As(err, &se) || se.Status != status) {
		t.Errorf("err = %v, want StatusError %d", err, status)
	}
	for _, secret := range []string{testCode, testTo, "14155550199", "Your Acme code"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q contains %q", err, secret)
		}
	}
}

func TestSend_Hang_TimesOut(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	f.Fail(testenv.PlivoHang)
	s := newSender(t, f, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	_, err := s.Send(context.Background(), smsMessage())
	if !errors.Is(err, sender.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if strings.Contains(err.Error(), testCode) {
		t.Fatalf("error contains the code: %v", err)
	}
}

func TestSend_CallerDeadline_TimesOut(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	f.Fail(testenv.PlivoHang)
	s := newSender(t, f, nil) // 10s default: the caller's deadline must win
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Send(ctx, smsMessage()); !errors.Is(err, sender.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
}

func TestSend_CallerCancel_Honoured(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	f.Fail(testenv.PlivoHang)
	s := newSender(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-f.Hanging() // the request is at Plivo, waiting
		cancel()
	}()
	_, err := s.Send(ctx, smsMessage())
	if !errors.Is(err, context.Canceled) || errors.Is(err, sender.ErrTimeout) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}

	done, stop := context.WithCancel(context.Background())
	stop()
	if _, err := s.Send(done, smsMessage()); !errors.Is(err, context.Canceled) {
		t.Fatalf("already cancelled: err = %v", err)
	}
}

func TestSend_SendersWithDifferentURLs_Concurrently(t *testing.T) {
	f1, f2 := testenv.NewFakePlivo(t), testenv.NewFakePlivo(t)
	s1, s2 := newSender(t, f1, nil), newSender(t, f2, nil)
	var wg sync.WaitGroup
	for range 10 {
		for _, s := range []*Sender{s1, s2} {
			wg.Go(func() {
				if _, err := s.Send(context.Background(), smsMessage()); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	if len(f1.Messages()) != 10 || len(f2.Messages()) != 10 {
		t.Fatalf("messages: %d and %d, want 10 each", len(f1.Messages()), len(f2.Messages()))
	}
}

func TestNew_ValidatesConfig(t *testing.T) {
	valid := Config{AuthID: "MAID", AuthToken: "secret-token", From: testFrom}
	for _, tc := range []struct {
		field  string
		mutate func(*Config)
	}{
		{"auth_id", func(c *Config) { c.AuthID = "" }},
		{"auth_token", func(c *Config) { c.AuthToken = "" }},
		{"from and powerpack_uuid", func(c *Config) { c.From = "" }},
		{"powerpack_uuid", func(c *Config) { c.PowerpackUUID = "pp" }},
		{"api_url", func(c *Config) { c.APIURL = "::not a url" }},
		{"api_url", func(c *Config) { c.APIURL = "ftp://api.plivo.com/" }},
		{"api_url", func(c *Config) { c.APIURL = "api.plivo.com" }},
		{"api_url", func(c *Config) { c.APIURL = "https://api.plivo.com/prefix/" }},
		{"api_url", func(c *Config) { c.APIURL = "https://user:pass@api.plivo.com/" }},
		{"timeout", func(c *Config) { c.Timeout = -time.Second }},
		{"template", func(c *Config) { c.Template = "Welcome to {app}" }},
		{"whatsapp_template", func(c *Config) { c.WhatsAppTemplate = "otp" }},
		{"whatsapp_template", func(c *Config) { c.WhatsAppLanguage = "en" }},
		{"whatsapp_template", func(c *Config) {
			c.From, c.PowerpackUUID, c.WhatsAppTemplate, c.WhatsAppLanguage = "", "pp", "otp", "en"
		}},
	} {
		c := valid
		tc.mutate(&c)
		_, err := New(c, nil)
		if err == nil {
			t.Errorf("%s: accepted %+v", tc.field, c)
			continue
		}
		if !strings.Contains(err.Error(), tc.field) || strings.Contains(err.Error(), "secret-token") {
			t.Errorf("%s: error %q", tc.field, err)
		}
	}

	s, err := New(valid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Timeout != DefaultTimeout || s.baseURL.String() != DefaultAPIURL || s.cfg.Template != sender.DefaultTemplate {
		t.Fatalf("defaults: timeout %s url %s template %q", s.cfg.Timeout, s.baseURL, s.cfg.Template)
	}
	for _, u := range []string{"https://api.plivo.com", "http://127.0.0.1:8080/"} {
		c := valid
		c.APIURL = u
		if _, err := New(c, nil); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
}

func TestSegments_DefaultTemplateFitsOneGSM7Segment(t *testing.T) {
	m := sender.Message{App: "Acme Widgets International Online Store", Code: "1234567890"}
	n, gsm := segments(sender.Render(sender.DefaultTemplate, m))
	if n != 1 || !gsm {
		t.Fatalf("default template: %d segments, gsm7 %v", n, gsm)
	}
	for _, tc := range []struct {
		text string
		n    int
		gsm  bool
	}{
		{strings.Repeat("a", 160), 1, true},
		{strings.Repeat("a", 161), 2, true},
		{strings.Repeat("€", 80), 1, true},    // extension: 2 septets each
		{strings.Repeat("€", 81), 2, true},    // 162 septets
		{"Your Café code is 123456", 1, true}, // é is GSM-7
		{"Your Ça code is 123456 ✓", 1, false},
		{strings.Repeat("ж", 71), 2, false},
	} {
		if n, gsm := segments(tc.text); n != tc.n || gsm != tc.gsm {
			t.Errorf("%.20q…: %d segments gsm7 %v, want %d %v", tc.text, n, gsm, tc.n, tc.gsm)
		}
	}
}

func TestProviderText_RedactsAndShortens(t *testing.T) {
	secrets := []string{"Your Acme code is 482913", "482913", "+14155550199", "14155550199"}
	got := providerText(`{"api_id":"x","error":"dst 14155550199 refused text Your Acme code is 482913\n"}`, secrets)
	if got != "dst [redacted] refused text [redacted]" {
		t.Fatalf("got %q", got)
	}
	if got := providerText(strings.Repeat("é", 300), nil); len(got) > 204 || !strings.HasSuffix(got, "…") {
		t.Fatalf("not shortened: %d bytes", len(got))
	}
	if got := providerText(`{"error":{"dst":["482913 invalid"]}}`, secrets); strings.Contains(got, "482913") {
		t.Fatalf("object error not redacted: %q", got)
	}
}

// A provider that echoes the request (code, text, destination) in an error
// body, as JSON, HTML or plain text, does not get the code into the error
// or the logs.
func TestSend_ProviderEchoesRequest_CodeNeverInErrorsOrLogs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   func(raw string) string
	}{
		{"json echo", 400, func(raw string) string {
			b, _ := json.Marshal(map[string]string{"error": "bad request: " + raw})
			return string(b)
		}},
		{"html echo", 502, func(raw string) string { return "<html><pre>" + raw + "</pre></html>" }},
		{"2xx garbage echo", 202, func(raw string) string { return "{" + raw }},
		{"2xx error field", 202, func(raw string) string { b, _ := json.Marshal(map[string]any{"error": raw}); return string(b) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				raw, _ := io.ReadAll(r.Body)
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body(string(raw)))
			}))
			defer srv.Close()
			core, logs := observer.New(zap.DebugLevel)
			s, err := New(Config{AuthID: "MAID", AuthToken: "tok", From: testFrom, APIURL: srv.URL}, zap.New(core))
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Send(context.Background(), smsMessage())
			if err == nil {
				t.Fatal("no error")
			}
			for _, secret := range []string{testCode, "14155550199", "tok"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains %q", err, secret)
				}
			}
			for _, e := range logs.All() {
				b, _ := json.Marshal(e.ContextMap())
				if strings.Contains(e.Message+string(b), testCode) {
					t.Errorf("log %q %s contains the code", e.Message, b)
				}
			}
		})
	}
}

// A provider that sends headers and then stalls the body is bounded by
// the timeout, as is one that streams an endless body.
func TestSend_StalledOrEndlessBody_Bounded(t *testing.T) {
	stall := make(chan struct{})
	defer close(stall)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"message_uuid":[`)
		w.(http.Flusher).Flush()
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	s, err := New(Config{AuthID: "MAID", AuthToken: "tok", From: testFrom, APIURL: srv.URL, Timeout: 200 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Send(context.Background(), smsMessage())
	if !errors.Is(err, sender.ErrTimeout) {
		t.Fatalf("stalled body: err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stalled body took %v", d)
	}

	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		chunk := []byte(strings.Repeat(" ", 64<<10))
		for i := 0; i < 64; i++ { // 4 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer endless.Close()
	s2, _ := New(Config{AuthID: "MAID", AuthToken: "tok", From: testFrom, APIURL: endless.URL, Timeout: 5 * time.Second}, nil)
	if _, err := s2.Send(context.Background(), smsMessage()); err == nil || errors.Is(err, sender.ErrTimeout) {
		t.Fatalf("4 MiB answer: err = %v, want a send failure", err)
	}
}

// The WhatsApp request is an approved authentication template: code as body
// parameter and as the copy-code (url) button parameter at index "0", no
// free text, log false; byte for byte.
func TestSend_WhatsApp_RawPayloadIsTheTemplateOnly(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	s := newSender(t, f, func(c *Config) { c.WhatsAppTemplate, c.WhatsAppLanguage = "otp_auth", "en_US" })
	m := smsMessage()
	m.Channel = sender.WhatsApp
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := onlyMessage(t, f)
	var raw map[string]any
	if err := json.Unmarshal(got.Raw, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["type"] != "whatsapp" || raw["dst"] != "14155550199" || raw["src"] != testFrom || raw["log"] != false {
		t.Errorf("envelope: %s", got.Raw)
	}
	if _, ok := raw["text"]; ok {
		t.Errorf("free text sent with a template: %s", got.Raw)
	}
	tpl, _ := json.Marshal(raw["template"])
	want := `{"components":[{"parameters":[{"text":"482913","type":"text"}],"type":"body"},{"index":"0","parameters":[{"text":"482913","type":"text"}],"sub_type":"url","type":"button"}],"language":"en_US","name":"otp_auth"}`
	if string(tpl) != want {
		t.Errorf("template\n got %s\nwant %s", tpl, want)
	}
}
