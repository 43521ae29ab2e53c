package plivo

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	plivogo "github.com/plivo/plivo-go/v7"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/sender"
)

// signedRequest builds a callback request for target (the URL the request
// really arrives at) signed over signedURL with nonce.
func review3Signed(f *testenv.FakePlivo, target, signedURL, nonce string, params url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(params.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-Plivo-Signature-V3-Nonce", nonce)
	r.Header.Set("X-Plivo-Signature-V3", f.SignV3(signedURL, nonce, params))
	return r
}

// A STOP whose processing failed (503) has not been honoured; when Plivo
// delivers the same request again it must be processed, not refused as a
// replay. Today the nonce is burnt before OnInbound runs, so the opt-out is
// lost for good.
func TestReview3_Inbound_FailedProcessingDoesNotBurnNonce(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	c, rec, _ := newCallbacks(f)
	fail := true
	okInbound := c.OnInbound
	c.OnInbound = func(ctx context.Context, from string, out bool) error {
		if fail {
			return errors.New("redis blip")
		}
		return okInbound(ctx, from, out)
	}
	params := url.Values{"From": {"14155550199"}, "To": {"14155550100"}, "Text": {"STOP"}, "Type": {"sms"}}
	const nonce = "31415926535897932384"
	w := serve(c.ServeInbound, review3Signed(f, inboundURL, inboundURL, nonce, params))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("first delivery: %d, want 503", w.Code)
	}
	fail = false
	w = serve(c.ServeInbound, review3Signed(f, inboundURL, inboundURL, nonce, params))
	if w.Code != http.StatusOK || len(rec.inbound) != 1 {
		t.Fatalf("redelivery after a 503: status %d, inbound %+v; want 200 and the STOP recorded", w.Code, rec.inbound)
	}
}

// A forged request must not be able to burn the nonce of a genuine one.
func TestReview3_ForgedRequestDoesNotConsumeNonce(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	c, rec, _ := newCallbacks(f)
	params := statusParams()
	const nonce = "27182818284590452353"
	forged := review3Signed(f, statusURL, statusURL, nonce, params)
	forged.Header.Set("X-Plivo-Signature-V3", "AAAA"+forged.Header.Get("X-Plivo-Signature-V3")[4:])
	assertRefused(t, serve(c.ServeStatus, forged), http.StatusForbidden, "invalid_signature")
	if w := serve(c.ServeStatus, review3Signed(f, statusURL, statusURL, nonce, params)); w.Code != http.StatusOK || len(rec.statuses) != 1 {
		t.Fatalf("genuine request after a forged one with its nonce: %d", w.Code)
	}
	// and the same nonce on the other endpoint is a replay
	in := url.Values{"From": {"14155550199"}, "Text": {"STOP"}}
	assertRefused(t, serve(c.ServeInbound, review3Signed(f, inboundURL, inboundURL, nonce, in)), http.StatusForbidden, "invalid_signature")
}

// The URL the handler reconstructs must be the one plivo-go's own
// ValidateSignatureV3 accepts, for the URL shapes Plivo calls: query
// strings (sorted, repeated keys), escaped paths, ports, TLS and not.
func TestReview3_SignatureAgreesWithPlivoGo(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	c, _, _ := newCallbacks(f)
	params := statusParams()
	params.Set("Text", "a+b=c&d ü") // characters that need form encoding
	for i, u := range []string{
		"https://auth.example.com/auth/v1/plivo/status",
		"https://auth.example.com/auth/v1/plivo/status?site=b&a=1",
		"https://auth.example.com/auth/v1/plivo/status?x=1&x=2",
		"https://auth.example.com:8443/auth/v1/plivo/status",
		"http://auth.example.com/auth/v1/plivo/status?q=a%20b",
		"https://auth.example.com/auth/v1/plivo/st%61tus",
	} {
		nonce := "1000000000000000000" + string(rune('0'+i))
		r := review3Signed(f, u, u, nonce, params)
		if !strings.HasPrefix(u, "https") {
			r.TLS = nil
		}
		form, _ := url.ParseQuery(params.Encode())
		if !plivogo.ValidateSignatureV3(u, nonce, http.MethodPost, r.Header.Get("X-Plivo-Signature-V3"), f.AuthToken, firstValues(form)) {
			t.Fatalf("%s: plivo-go itself refuses the test signature", u)
		}
		if w := serve(c.ServeStatus, r); w.Code != http.StatusOK {
			t.Errorf("%s: %d %s", u, w.Code, w.Body)
		}
	}
}

func firstValues(v url.Values) map[string]string {
	m := map[string]string{}
	for k, vs := range v {
		m[k] = vs[0]
	}
	return m
}

// Over a real TLS listener (as Caddy serves it), the scheme, host:port and
// query come from the connection; an X-Forwarded-* header sent by anyone
// must not change the URL checked.
func TestReview3_URLReconstruction_RealServer(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	c, rec, _ := newCallbacks(f)
	srv := httptest.NewTLSServer(http.HandlerFunc(c.ServeStatus))
	defer srv.Close()
	client := srv.Client()
	client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}

	target := srv.URL + "/auth/v1/plivo/status?b=2&a=1"
	params := statusParams()
	post := func(signedURL, nonce string, hdr map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(params.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Plivo-Signature-V3-Nonce", nonce)
		req.Header.Set("X-Plivo-Signature-V3", f.SignV3(signedURL, nonce, params))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if got := post(target, "n1", nil); got != http.StatusOK {
		t.Fatalf("genuine over TLS: %d", got)
	}
	// A signature over another host, claimed through forwarding headers.
	other := strings.Replace(target, "127.0.0.1", "evil.example", 1)
	if got := post(other, "n2", map[string]string{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}); got != http.StatusForbidden {
		t.Fatalf("signature over a forwarded host accepted: %d", got)
	}
	// http:// signature for an https request
	if got := post(strings.Replace(target, "https://", "http://", 1), "n3", nil); got != http.StatusForbidden {
		t.Fatalf("signature over http accepted on https: %d", got)
	}
	if len(rec.statuses) != 1 {
		t.Fatalf("statuses %d, want 1", len(rec.statuses))
	}
}

// A provider that echoes the request (code, text, destination) in an error
// body, as JSON, HTML or plain text, must not get the code into the error
// or the logs.
func TestReview3_CodeNeverInErrorsOrLogs(t *testing.T) {
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
func TestReview3_StalledOrEndlessBody_Bounded(t *testing.T) {
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
// free text, log false.
func TestReview3_WhatsAppPayloadShape(t *testing.T) {
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
