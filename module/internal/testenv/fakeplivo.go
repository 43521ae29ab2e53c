package testenv

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/plivo/plivo-go/v7"
)

// PlivoMode selects how FakePlivo answers the next Message API calls.
type PlivoMode int

// Answers of FakePlivo.
const (
	PlivoOK       PlivoMode = iota // 202 with one message_uuid
	Plivo500                       // 500 with a Plivo JSON error
	Plivo500Empty                  // 500 with an empty body
	Plivo503                       // 503 with a Plivo JSON error
	Plivo429                       // 429 (Plivo's rate limit) with a JSON error
	Plivo401                       // 401 even with the right credentials
	PlivoNoUUID                    // 202 whose body has no message_uuid
	PlivoHang                      // no answer until the client gives up or the server closes
)

// FakeMessage is one Message API request as FakePlivo received it. The field
// names follow plivo-go's MessageCreateParams JSON tags.
type FakeMessage struct {
	Src           string          `json:"src"`
	Dst           string          `json:"dst"`
	Text          string          `json:"text"`
	Type          string          `json:"type"`
	URL           string          `json:"url"`
	Method        string          `json:"method"`
	Trackable     bool            `json:"trackable"`
	Log           any             `json:"log"` // nil when absent; bool or string as sent
	MediaURLs     []string        `json:"media_urls"`
	MediaIDs      []string        `json:"media_ids"`
	PowerpackUUID string          `json:"powerpack_uuid"`
	MessageExpiry int             `json:"message_expiry"`
	Template      *FakeTemplate   `json:"template"`
	Interactive   json.RawMessage `json:"interactive"`
	Location      json.RawMessage `json:"location"`
	DLTEntityID   string          `json:"dlt_entity_id"`
	DLTTemplateID string          `json:"dlt_template_id"`
	DLTCategory   string          `json:"dlt_template_category"`

	Raw       json.RawMessage `json:"-"` // the request body as sent
	UserAgent string          `json:"-"`
	Answered  PlivoMode       `json:"-"` // the mode the request was answered with
}

// FakeTemplate is a WhatsApp template as plivo-go sends it.
type FakeTemplate struct {
	Name       string          `json:"name"`
	Language   string          `json:"language"`
	Components []FakeComponent `json:"components"`
}

// FakeComponent is one component of a WhatsApp template.
type FakeComponent struct {
	Type       string          `json:"type"`
	SubType    string          `json:"sub_type"`
	Index      string          `json:"index"`
	Parameters []FakeParameter `json:"parameters"`
}

// FakeParameter is one template parameter.
type FakeParameter struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// FakePlivo is an httptest server that speaks the parts of Plivo's API
// otpgate uses: POST /v1/Account/{auth_id}/Message/ and /Call/ with Basic
// auth and a JSON body, answered like Plivo (202 with message_uuid, 201
// with request_uuid, JSON errors). For a call it plays Plivo's part once
// the phone picks up: Answer fetches the call's answer URL, signed.
type FakePlivo struct {
	AuthID    string
	AuthToken string

	srv     *httptest.Server
	done    chan struct{} // closed at cleanup: releases hanging handlers
	hanging chan struct{} // one value per request that starts hanging

	mu       sync.Mutex
	mode     PlivoMode
	requests int
	messages []FakeMessage
	calls    []FakeCall
}

// NewFakePlivo starts a fake Plivo with random credentials. It is closed
// when the test ends.
func NewFakePlivo(t testing.TB) *FakePlivo {
	t.Helper()
	f := &FakePlivo{
		AuthID:    "MA" + strings.ToUpper(plivoHex(9)),
		AuthToken: plivoHex(20),
		done:      make(chan struct{}),
		hanging:   make(chan struct{}, 64),
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		close(f.done)
		f.srv.Close()
	})
	return f
}

// URL is the api_url to configure: the server's base URL with a trailing
// '/', like plivo-go's default "https://api.plivo.com/".
func (f *FakePlivo) URL() string { return f.srv.URL + "/" }

// Fail sets how every following request is answered, until the next call.
func (f *FakePlivo) Fail(mode PlivoMode) {
	f.mu.Lock()
	f.mode = mode
	f.mu.Unlock()
}

// Hanging receives a value each time a request starts hanging in
// PlivoHang mode, so a test can act while the sender waits.
func (f *FakePlivo) Hanging() <-chan struct{} { return f.hanging }

// Requests counts every HTTP request received, valid or not.
func (f *FakePlivo) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// Messages returns the authenticated, well-formed Message API requests
// received so far, in order, whatever they were answered with.
func (f *FakePlivo) Messages() []FakeMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FakeMessage(nil), f.messages...)
}

// LastCode returns the digits of the code in the last message sent to dst
// (E.164, with or without '+'), or "" if none was sent. For SMS it is the
// last run of digits in the text, for WhatsApp the body parameter.
func (f *FakePlivo) LastCode(dst string) string {
	dst = strings.TrimPrefix(dst, "+")
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.messages) - 1; i >= 0; i-- {
		m := f.messages[i]
		if strings.TrimPrefix(m.Dst, "+") != dst {
			continue
		}
		text := m.Text
		if m.Template != nil {
			text = ""
			for _, c := range m.Template.Components {
				if c.Type == "body" && len(c.Parameters) > 0 {
					text = c.Parameters[0].Text
				}
			}
		}
		return plivoLastDigits(text)
	}
	return ""
}

// SignV3 returns the X-Plivo-Signature-V3 header Plivo would send for a
// POST of params to rawURL with nonce, signed with f.AuthToken.
func (f *FakePlivo) SignV3(rawURL, nonce string, params url.Values) string {
	return plivo.ComputeSignatureV3(f.AuthToken, rawURL, http.MethodPost, nonce, plivoFirstValues(params))
}

// NewCallbackRequest returns a server-side request (for calling a handler
// directly) that POSTs params as a form to rawURL, signed like a Plivo
// callback with a fresh nonce.
func (f *FakePlivo) NewCallbackRequest(rawURL string, params url.Values) *http.Request {
	nonce := plivoHex(10)
	r := httptest.NewRequest(http.MethodPost, rawURL, strings.NewReader(params.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-Plivo-Signature-V3-Nonce", nonce)
	r.Header.Set("X-Plivo-Signature-V3", f.SignV3(rawURL, nonce, params))
	return r
}

func (f *FakePlivo) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	mode := f.mode
	f.mu.Unlock()

	id, token, ok := r.BasicAuth()
	account := "/v1/Account/" + f.AuthID + "/"
	if !ok || !plivoEqual(id, f.AuthID) || !plivoEqual(token, f.AuthToken) ||
		(strings.HasPrefix(r.URL.Path, "/v1/Account/") && !strings.HasPrefix(r.URL.Path, account)) {
		plivoError(w, http.StatusUnauthorized, "authentication failed")
		return
	}
	switch r.URL.Path {
	case account + "Message/":
	case account + "Call/":
		f.serveCall(w, r, mode)
		return
	default:
		plivoError(w, http.StatusNotFound, "not found")
		return
	}
	var m FakeMessage
	raw, ok := readPlivoJSON(w, r, &m)
	if !ok {
		return
	}
	if msg := plivoInvalid(m); msg != "" {
		plivoError(w, http.StatusBadRequest, msg)
		return
	}
	m.Raw = raw
	m.UserAgent = r.UserAgent()
	m.Answered = mode
	f.mu.Lock()
	f.messages = append(f.messages, m)
	f.mu.Unlock()

	if f.fail(w, r, mode) {
		return
	}
	plivoWriteJSON(w, http.StatusAccepted, map[string]any{
		"api_id": uuid.NewString(), "message": "message(s) queued",
		"message_uuid": []string{uuid.NewString()},
	})
}

// fail answers like a failing Plivo in mode and reports whether it did.
func (f *FakePlivo) fail(w http.ResponseWriter, r *http.Request, mode PlivoMode) bool {
	switch mode {
	case Plivo500:
		plivoError(w, http.StatusInternalServerError, "internal server error")
	case Plivo500Empty:
		w.WriteHeader(http.StatusInternalServerError)
	case Plivo503:
		plivoError(w, http.StatusServiceUnavailable, "service unavailable")
	case Plivo429:
		plivoError(w, http.StatusTooManyRequests, "too many requests")
	case Plivo401:
		plivoError(w, http.StatusUnauthorized, "authentication failed")
	case PlivoNoUUID:
		plivoWriteJSON(w, http.StatusAccepted, map[string]any{
			"api_id": uuid.NewString(), "message": "message(s) queued",
		})
	case PlivoHang:
		select {
		case f.hanging <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-f.done:
		}
	default:
		return false
	}
	return true
}

// plivoInvalid mirrors Plivo's own validation of the fields otpgate sends.
func plivoInvalid(m FakeMessage) string {
	switch {
	case m.Dst == "":
		return "dst is required"
	case (m.Src == "") == (m.PowerpackUUID == ""):
		return "exactly one of src and powerpack_uuid is required"
	case strings.Contains(m.Dst, "<"):
		return "fake plivo: one destination per message"
	case m.MessageExpiry != 0 && (m.MessageExpiry < 5 || m.MessageExpiry > 10799):
		return "message_expiry must be between 5 and 10799 seconds"
	}
	switch m.Type {
	case "", "sms":
		if m.Text == "" {
			return "text is required"
		}
	case "whatsapp":
		if m.Src == "" {
			return "src is required for whatsapp"
		}
		if m.Text == "" && (m.Template == nil || m.Template.Name == "" || m.Template.Language == "") {
			return "template or text is required for whatsapp"
		}
	default:
		return "unsupported type"
	}
	return ""
}

func plivoError(w http.ResponseWriter, status int, msg string) {
	plivoWriteJSON(w, status, map[string]string{"api_id": uuid.NewString(), "error": msg})
}

func plivoWriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func plivoEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func plivoFirstValues(v url.Values) map[string]string {
	m := make(map[string]string, len(v))
	for k, vs := range v {
		if len(vs) > 0 {
			m[k] = vs[0]
		}
	}
	return m
}

func plivoLastDigits(s string) string {
	end := -1
	for i := len(s) - 1; i >= 0; i-- {
		d := s[i] >= '0' && s[i] <= '9'
		if d && end < 0 {
			end = i + 1
		}
		if !d && end >= 0 {
			return s[i+1 : end]
		}
	}
	if end < 0 {
		return ""
	}
	return s[:end]
}

func plivoHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// readPlivoJSON reads a POST with a JSON body into dst as Plivo's API
// does, answering Plivo's error itself when it cannot (ok false). raw is
// the body as sent.
func readPlivoJSON(w http.ResponseWriter, r *http.Request, dst any) (raw []byte, ok bool) {
	if r.Method != http.MethodPost {
		plivoError(w, http.StatusMethodNotAllowed, "method not allowed")
		return nil, false
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		plivoError(w, http.StatusBadRequest, "content type must be application/json")
		return nil, false
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, false // client went away
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		plivoError(w, http.StatusBadRequest, "invalid json")
		return nil, false
	}
	return raw, true
}
