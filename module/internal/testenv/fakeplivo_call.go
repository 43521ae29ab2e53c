package testenv

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
)

// FakeCall is one Call API request as FakePlivo received it. The field
// names follow plivo-go's CallCreateParams JSON tags.
type FakeCall struct {
	From         string `json:"from"`
	To           string `json:"to"`
	AnswerURL    string `json:"answer_url"`
	AnswerMethod string `json:"answer_method"`
	RingTimeout  int64  `json:"ring_timeout"`
	TimeLimit    int64  `json:"time_limit"`
	HangupURL    string `json:"hangup_url"`

	Raw         json.RawMessage `json:"-"` // the request body as sent
	Answered    PlivoMode       `json:"-"` // the mode the request was answered with
	RequestUUID string          `json:"-"` // what FakePlivo answered; "" on failure
}

// Calls returns the authenticated, well-formed Call API requests received
// so far, in order, whatever they were answered with.
func (f *FakePlivo) Calls() []FakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FakeCall(nil), f.calls...)
}

// serveCall answers POST /v1/Account/{auth_id}/Call/ like Plivo: 201 with
// a request_uuid, or the failure mode set with Fail.
func (f *FakePlivo) serveCall(w http.ResponseWriter, r *http.Request, mode PlivoMode) {
	var c FakeCall
	raw, ok := readPlivoJSON(w, r, &c)
	if !ok {
		return
	}
	switch {
	case c.From == "" || c.To == "" || c.AnswerURL == "":
		plivoError(w, http.StatusBadRequest, "from, to and answer_url are required")
		return
	case strings.Contains(c.To, "<"):
		plivoError(w, http.StatusBadRequest, "fake plivo: one destination per call")
		return
	}
	if u, err := url.Parse(c.AnswerURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		plivoError(w, http.StatusBadRequest, "answer_url must be an absolute http(s) URL")
		return
	}
	c.Raw, c.Answered = raw, mode
	if mode == PlivoOK {
		c.RequestUUID = uuid.NewString()
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	if f.fail(w, r, mode) {
		return
	}
	plivoWriteJSON(w, http.StatusCreated, map[string]any{
		"api_id": uuid.NewString(), "message": "call fired", "request_uuid": c.RequestUUID,
	})
}

// AnswerParams are the form values Plivo POSTs to a call's answer URL
// when the phone picks up.
func (c FakeCall) AnswerParams() url.Values {
	return url.Values{
		"CallUUID":     {c.RequestUUID},
		"RequestUUID":  {c.RequestUUID},
		"From":         {strings.TrimPrefix(c.From, "+")},
		"To":           {strings.TrimPrefix(c.To, "+")},
		"Direction":    {"outbound"},
		"CallStatus":   {"in-progress"},
		"Event":        {"StartApp"},
		"CallerName":   {""},
		"ALegUUID":     {c.RequestUUID},
		"SessionStart": {time.Now().UTC().Format("2006-01-02 15:04:05.000000")},
	}
}

// Answer plays Plivo once the phone of c picks up: it fetches c's answer
// URL, signed with a fresh nonce, and returns the status and the XML.
func (f *FakePlivo) Answer(c FakeCall) (int, string, error) {
	return f.Callback(c.AnswerURL, c.AnswerParams(), "")
}

// Callback POSTs params to rawURL as Plivo calls back: form-encoded and
// signed (V3) with nonce, a fresh one when empty. It returns the status
// and the body.
func (f *FakePlivo) Callback(rawURL string, params url.Values, nonce string) (int, string, error) {
	if nonce == "" {
		nonce = plivoHex(10)
	}
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(params.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "PlivoHTTPClient")
	req.Header.Set("X-Plivo-Signature-V3-Nonce", nonce)
	req.Header.Set("X-Plivo-Signature-V3", f.SignV3(rawURL, nonce, params))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body), err
}

// PlivoSpeech is what one Speak element of Plivo XML says.
type PlivoSpeech struct {
	Language string
	Voice    string
	Text     string
}

// ParsePlivoXML returns the Speak elements of a Plivo XML answer in order,
// and false when it is not a <Response> document.
func ParsePlivoXML(doc string) ([]PlivoSpeech, bool) {
	var resp struct {
		XMLName xml.Name `xml:"Response"`
		Speak   []struct {
			Language string `xml:"language,attr"`
			Voice    string `xml:"voice,attr"`
			Text     string `xml:",chardata"`
		} `xml:"Speak"`
	}
	if err := xml.Unmarshal([]byte(doc), &resp); err != nil {
		return nil, false
	}
	out := make([]PlivoSpeech, 0, len(resp.Speak))
	for _, s := range resp.Speak {
		out = append(out, PlivoSpeech{Language: s.Language, Voice: s.Voice, Text: s.Text})
	}
	return out, true
}

// SpokenDigits returns the digits a speech says one by one ("4, 8, 2" →
// "482"): single digits between separators, ignoring the words around.
func SpokenDigits(text string) string {
	var b strings.Builder
	for _, field := range strings.FieldsFunc(text, func(r rune) bool {
		return r == ',' || r == ' ' || r == '.' || r == ':' || r == '：'
	}) {
		if len(field) == 1 && field[0] >= '0' && field[0] <= '9' {
			b.WriteByte(field[0])
		}
	}
	return b.String()
}
