package plivo

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

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
