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
	"sync"
	"testing"

	plivogo "github.com/plivo/plivo-go/v7"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

const (
	statusURL  = "https://auth.example.com/auth/v1/plivo/status"
	inboundURL = "https://auth.example.com/auth/v1/plivo/inbound"
)

type inboundCall struct {
	from   string
	optOut bool
}

type recorder struct {
	mu       sync.Mutex
	nonces   map[string]bool
	statuses []Status
	inbound  []inboundCall
}

func newCallbacks(f *testenv.FakePlivo) (*Callbacks, *recorder, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	rec := &recorder{nonces: map[string]bool{}}
	c := &Callbacks{
		AuthToken: f.AuthToken,
		Seen: func(_ context.Context, nonce string) (bool, error) {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			first := !rec.nonces[nonce]
			rec.nonces[nonce] = true
			return first, nil
		},
		Forget: func(_ context.Context, nonce string) {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			delete(rec.nonces, nonce)
		},
		OnStatus: func(_ context.Context, s Status) {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.statuses = append(rec.statuses, s)
		},
		OnInbound: func(_ context.Context, from string, optOut bool) error {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.inbound = append(rec.inbound, inboundCall{from, optOut})
			return nil
		},
		Logger: zap.New(core),
	}
	return c, rec, logs
}

func serve(h http.HandlerFunc, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h(w, r)
	return w
}

func assertRefused(t *testing.T, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	var body struct {
		Code      int    `json:"code"`
		ErrorCode string `json:"error_code"`
		Msg       string `json:"msg"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	if w.Code != status || body.Code != status || body.ErrorCode != code || body.Msg == "" {
		t.Fatalf("status %d body %+v, want %d %s", w.Code, body, status, code)
	}
}

func statusParams() url.Values {
	return url.Values{
		"MessageUUID": {"db3ce55a-7f1d-11e1-8ea7-1231380bc196"},
		"Status":      {"undelivered"},
		"ErrorCode":   {"30"},
		"To":          {"14155550199"},
		"From":        {"14155550100"},
	}
}

func TestCallbacks_Status_ValidSignatureAccepted(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	c, rec, logs := newCallbacks(f)
	w := serve(c.ServeStatus, f.NewCallbackRequest(statusURL, statusParams()))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	want := Status{MessageUUID: "db3ce55a-7f1d-11e1-8ea7-1231380bc196", Status: "undelivered", ErrorCode: "30", To: "+14155550199"}
	if len(rec.statuses) != 1 || rec.statuses[0] != want {
		t.Fatalf("statuses %+v", rec.statuses)
	}
	entries := logs.FilterMessage("plivo: message status").All()
	if len(entries) != 1 || entries[0].ContextMap()["to"] != "****0199" {
		t.Fatalf("logs %+v", logs.All())
	}
	for _, e := range logs.All() {
		for _, v := range e.ContextMap() {
			if s, ok := v.(string); ok && strings.Contains(s, "14155550199") {
				t.Fatalf("full number in log %q: %v", e.Message, e.ContextMap())
			}
		}
	}
}

func TestCallbacks_BadOrMissingSignature_403(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	c, rec, _ := newCallbacks(f)
	body := statusParams()

	missing := f.NewCallbackRequest(statusURL, body)
	missing.Header.Del("X-Plivo-Signature-V3")
	noNonce := f.NewCallbackRequest(statusURL, body)
	noNonce.Header.Del("X-Plivo-Signature-V3-Nonce")
	wrongSig := f.NewCallbackRequest(statusURL, body)
	wrongSig.Header.Set("X-Plivo-Signature-V3", "AAAA"+wrongSig.Header.Get("X-Plivo-Signature-V3")[4:])
	otherNonce := f.NewCallbackRequest(statusURL, body)
	otherNonce.Header.Set("X-Plivo-Signature-V3-Nonce", "another")

	// Signed for https, received over plain http (no TLS, no PublicURL).
	plainHTTP := f.NewCallbackRequest(statusURL, body)
	plainHTTP.TLS = nil

	// Signed params, then one changed in the body.
	tampered := f.NewCallbackRequest(statusURL, body)
	changed := statusParams()
	changed.Set("Status", "delivered")
	tampered = withBody(tampered, changed)

	// A second value for a signed name.
	repeated := f.NewCallbackRequest(statusURL, body)
	doubled := statusParams()
	doubled.Add("Status", "delivered")
	repeated = withBody(repeated, doubled)

	// Forwarded proto is not trusted.
	forwarded := f.NewCallbackRequest(statusURL, body)
	forwarded.TLS = nil
	forwarded.Header.Set("X-Forwarded-Proto", "https")

	for name, r := range map[string]*http.Request{
		"missing": missing, "no nonce": noNonce, "wrong": wrongSig, "other nonce": otherNonce,
		"plain http": plainHTTP, "tampered": tampered, "repeated": repeated, "forwarded": forwarded,
	} {
		t.Run(name, func(t *testing.T) {
			assertRefused(t, serve(c.ServeStatus, r), http.StatusForbidden, "invalid_signature")
		})
	}
	if len(rec.statuses) != 0 || len(rec.nonces) != 0 {
		t.Fatalf("refused callbacks reached the store: %+v %v", rec.statuses, rec.nonces)
	}

	other := *c
	other.AuthToken = "another-token"
	assertRefused(t, serve(other.ServeStatus, f.NewCallbackRequest(statusURL, body)), http.StatusForbidden, "invalid_signature")
}

func withBody(r *http.Request, v url.Values) *http.Request {
	n := httptest.NewRequest(r.Method, r.URL.String(), strings.NewReader(v.Encode()))
	n.Header = r.Header.Clone()
	n.TLS = r.TLS
	n.Host = r.Host
	return n
}

func TestCallbacks_ReplayedNonce_403(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	c, rec, _ := newCallbacks(f)
	first := f.NewCallbackRequest(statusURL, statusParams())
	replay := withBody(first, statusParams())
	if w := serve(c.ServeStatus, first); w.Code != http.StatusOK {
		t.Fatalf("first: %d", w.Code)
	}
	assertRefused(t, serve(c.ServeStatus, replay), http.StatusForbidden, "invalid_signature")
	if len(rec.statuses) != 1 {
		t.Fatalf("%d statuses", len(rec.statuses))
	}
}

func TestCallbacks_SeveralSignatures_OneValidAccepted(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	c, _, _ := newCallbacks(f)
	r := f.NewCallbackRequest(statusURL, statusParams())
	r.Header.Set("X-Plivo-Signature-V3", "b2xkLXRva2VuLXNpZw==, "+r.Header.Get("X-Plivo-Signature-V3"))
	if w := serve(c.ServeStatus, r); w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
}

func TestCallbacks_QueryInURL_Signed(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	c, _, _ := newCallbacks(f)
	r := f.NewCallbackRequest(statusURL+"?site=a&b=2", statusParams())
	if w := serve(c.ServeStatus, r); w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
}

func TestCallbacks_PublicURL_UsedForSignature(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	c, _, _ := newCallbacks(f)
	signed := f.NewCallbackRequest(statusURL, statusParams())
	// The same request as it reaches otpgate behind a TLS-terminating proxy.
	inner := httptest.NewRequest(http.MethodPost, "http://10.0.0.7:8080/auth/v1/plivo/status", strings.NewReader(statusParams().Encode()))
	inner.Header = signed.Header.Clone()

	assertRefused(t, serve(c.ServeStatus, withBody(inner, statusParams())), http.StatusForbidden, "invalid_signature")
	c.PublicURL = "https://auth.example.com/"
	if w := serve(c.ServeStatus, inner); w.Code != http.StatusOK {
		t.Fatalf("with PublicURL: %d %s", w.Code, w.Body)
	}
}

func TestCallbacks_Inbound_StopAndStartKeywords(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	c, rec, _ := newCallbacks(f)
	var want []inboundCall
	for _, tc := range []struct {
		text string
		call bool
		opt  bool
	}{
		{"STOP", true, true}, {" stop \n", true, true}, {"StopAll", true, true}, {"UNSUBSCRIBE", true, true},
		{"cancel", true, true}, {"End", true, true}, {"quit", true, true},
		{"START", true, false}, {" unstop", true, false}, {"yes", true, false},
		{"hello", false, false}, {"stop please", false, false}, {"", false, false},
	} {
		params := url.Values{"From": {"14155550199"}, "To": {"14155550100"}, "Text": {tc.text}, "Type": {"sms"}}
		w := serve(c.ServeInbound, f.NewCallbackRequest(inboundURL, params))
		if w.Code != http.StatusOK || w.Body.String() != "<Response></Response>" {
			t.Fatalf("%q: %d %q", tc.text, w.Code, w.Body)
		}
		if tc.call {
			want = append(want, inboundCall{"+14155550199", tc.opt})
		}
	}
	if len(rec.inbound) != len(want) {
		t.Fatalf("inbound %+v, want %+v", rec.inbound, want)
	}
	for i := range want {
		if rec.inbound[i] != want[i] {
			t.Fatalf("inbound %+v, want %+v", rec.inbound, want)
		}
	}
}

func TestCallbacks_Inbound_StoreFailure_503(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	c, _, _ := newCallbacks(f)
	c.OnInbound = func(context.Context, string, bool) error { return errors.New("redis down") }
	params := url.Values{"From": {"14155550199"}, "Text": {"STOP"}}
	assertRefused(t, serve(c.ServeInbound, f.NewCallbackRequest(inboundURL, params)), http.StatusServiceUnavailable, "store_unavailable")

	c, _, _ = newCallbacks(f)
	c.Seen = func(context.Context, string) (bool, error) { return false, errors.New("redis down") }
	assertRefused(t, serve(c.ServeInbound, f.NewCallbackRequest(inboundURL, params)), http.StatusServiceUnavailable, "store_unavailable")

	c.Seen = nil // no replay protection: refused, not accepted
	assertRefused(t, serve(c.ServeInbound, f.NewCallbackRequest(inboundURL, params)), http.StatusInternalServerError, "unexpected_failure")
}

func TestCallbacks_BodyTooLarge_413(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	c, rec, _ := newCallbacks(f)
	params := url.Values{"From": {"14155550199"}, "Text": {"STOP"}, "Pad": {strings.Repeat("x", 64<<10)}}
	assertRefused(t, serve(c.ServeInbound, f.NewCallbackRequest(inboundURL, params)), http.StatusRequestEntityTooLarge, "request_too_large")
	if len(rec.inbound) != 0 {
		t.Fatal("oversized callback processed")
	}
}

func TestCallbacks_OnlyPOST(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	c, _, _ := newCallbacks(f)
	r := httptest.NewRequest(http.MethodGet, statusURL+"?Status=delivered", nil)
	w := serve(c.ServeStatus, r)
	assertRefused(t, w, http.StatusMethodNotAllowed, "method_not_allowed")
	if w.Header().Get("Allow") != http.MethodPost {
		t.Fatalf("Allow = %q", w.Header().Get("Allow"))
	}
}

// signedRequest builds a callback request for target (the URL the request
// really arrives at) signed over signedURL with nonce.
func signedRequest(f *testenv.FakePlivo, target, signedURL, nonce string, params url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(params.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-Plivo-Signature-V3-Nonce", nonce)
	r.Header.Set("X-Plivo-Signature-V3", f.SignV3(signedURL, nonce, params))
	return r
}

// firstValues is a form as plivo-go's signature functions take it.
func firstValues(v url.Values) map[string]string {
	m := map[string]string{}
	for k, vs := range v {
		m[k] = vs[0]
	}
	return m
}

// A callback whose processing failed (503) has not been honoured: its
// nonce is forgotten, so Plivo's redelivery of the same request is
// processed, not refused as a replay.
func TestCallbacks_Inbound_FailedProcessing_RedeliveryProcessed(t *testing.T) {
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
	w := serve(c.ServeInbound, signedRequest(f, inboundURL, inboundURL, nonce, params))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("first delivery: %d, want 503", w.Code)
	}
	fail = false
	w = serve(c.ServeInbound, signedRequest(f, inboundURL, inboundURL, nonce, params))
	if w.Code != http.StatusOK || len(rec.inbound) != 1 {
		t.Fatalf("redelivery after a 503: status %d, inbound %+v; want 200 and the STOP recorded", w.Code, rec.inbound)
	}
}

// Only a request with a valid signature uses up its nonce: a forged one
// cannot burn the nonce of a genuine one.
func TestCallbacks_ForgedRequest_DoesNotBurnTheNonce(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	c, rec, _ := newCallbacks(f)
	params := statusParams()
	const nonce = "27182818284590452353"
	forged := signedRequest(f, statusURL, statusURL, nonce, params)
	forged.Header.Set("X-Plivo-Signature-V3", "AAAA"+forged.Header.Get("X-Plivo-Signature-V3")[4:])
	assertRefused(t, serve(c.ServeStatus, forged), http.StatusForbidden, "invalid_signature")
	if w := serve(c.ServeStatus, signedRequest(f, statusURL, statusURL, nonce, params)); w.Code != http.StatusOK || len(rec.statuses) != 1 {
		t.Fatalf("genuine request after a forged one with its nonce: %d", w.Code)
	}
	// and the same nonce on the other endpoint is a replay
	in := url.Values{"From": {"14155550199"}, "Text": {"STOP"}}
	assertRefused(t, serve(c.ServeInbound, signedRequest(f, inboundURL, inboundURL, nonce, in)), http.StatusForbidden, "invalid_signature")
}

// The URL the handler reconstructs is the one plivo-go's own
// ValidateSignatureV3 accepts, for the URL shapes Plivo calls: query
// strings (sorted, repeated keys), escaped paths, ports, TLS and not.
func TestCallbacks_Signature_AgreesWithPlivoGo(t *testing.T) {
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
		r := signedRequest(f, u, u, nonce, params)
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

// Over a real TLS listener (as Caddy serves it), the scheme, host:port and
// query of the signed URL come from the connection; an X-Forwarded-* header
// sent by anyone does not change the URL checked.
func TestCallbacks_SignedURL_FromConnectionNotForwardedHeaders(t *testing.T) {
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
