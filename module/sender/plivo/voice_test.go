package plivo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	plivogo "github.com/plivo/plivo-go/v7"

	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/sender"
)

var testSecret = bytes.Repeat([]byte{7}, 32)

func secretFunc(b []byte) func() []byte { return func() []byte { return b } }

// voiceServer serves Callbacks.ServeVoice at /auth/v1/plivo/voice on a
// real HTTP server, as the gateway does, and returns the API URL a send's
// Origin carries.
func voiceServer(t *testing.T, f *testenv.FakePlivo) (api string, rec *recorder) {
	t.Helper()
	c, rec, _ := newCallbacks(f)
	c.Secret = secretFunc(testSecret)
	mux := http.NewServeMux()
	mux.HandleFunc("/auth/v1/plivo/voice", c.ServeVoice)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/auth/v1", rec
}

func voiceSender(t *testing.T, f *testenv.FakePlivo) *Sender {
	return newSender(t, f, func(c *Config) {
		c.VoiceFrom = "+14155550111"
		c.Secret = secretFunc(testSecret)
		c.Timeout = 2 * time.Second
	})
}

func voiceMessage() sender.Message {
	return sender.Message{To: testTo, Channel: sender.Voice, Code: testCode, App: "Acme", TTL: 5 * time.Minute}
}

func originCtx(api, lang string) context.Context {
	return sender.WithOrigin(context.Background(), sender.Origin{APIURL: api, AcceptLanguage: lang})
}

func onlyCall(t *testing.T, f *testenv.FakePlivo) testenv.FakeCall {
	t.Helper()
	calls := f.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls at Plivo, want 1", len(calls))
	}
	return calls[0]
}

func TestSend_Voice_CallsFromVoiceFromWithSealedAnswerURL(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	s := voiceSender(t, f)
	if !s.Supports(sender.Voice) || newSender(t, f, nil).Supports(sender.Voice) {
		t.Fatal("voice must be supported exactly when voice_from is set")
	}
	res, err := s.Send(originCtx("https://app.example.com/auth/v1", ""), voiceMessage())
	if err != nil {
		t.Fatal(err)
	}
	c := onlyCall(t, f)
	if res.MessageID == "" || res.MessageID != c.RequestUUID {
		t.Fatalf("message id %q, request_uuid %q", res.MessageID, c.RequestUUID)
	}
	if c.From != "14155550111" || c.To != "14155550199" || c.AnswerMethod != http.MethodPost ||
		c.RingTimeout != voiceRingTimeout || c.TimeLimit != voiceTimeLimit {
		t.Fatalf("call %+v", c)
	}
	if !strings.HasPrefix(c.AnswerURL, "https://app.example.com/auth/v1/plivo/voice?t=") {
		t.Fatalf("answer url %s", c.AnswerURL)
	}
	if strings.Contains(string(c.Raw), testCode) || len(f.Messages()) != 0 {
		t.Fatalf("the code travels in clear: %s", c.Raw)
	}
}

func TestSend_Voice_WithoutOrigin_SendError(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	_, err := voiceSender(t, f).Send(context.Background(), voiceMessage())
	if err == nil || errors.Is(err, sender.ErrTimeout) || len(f.Calls()) != 0 {
		t.Fatalf("err %v, %d calls", err, len(f.Calls()))
	}
}

func TestSend_Voice_NoSecret_SendError(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	s := newSender(t, f, func(c *Config) { c.VoiceFrom = "+14155550111"; c.Secret = secretFunc(nil) })
	if _, err := s.Send(originCtx("https://app.example.com/auth/v1", ""), voiceMessage()); err == nil || len(f.Calls()) != 0 {
		t.Fatalf("err %v, %d calls", err, len(f.Calls()))
	}
}

func TestSend_Voice_ProviderFailuresMapLikeSMS(t *testing.T) {
	for _, tc := range []struct {
		mode   testenv.PlivoMode
		status int
	}{
		{testenv.Plivo500, 500}, {testenv.Plivo500Empty, 500}, {testenv.Plivo429, 429},
		{testenv.Plivo401, 401}, {testenv.PlivoNoUUID, 201},
	} {
		f := testenv.NewFakePlivo(t)
		f.Fail(tc.mode)
		_, err := voiceSender(t, f).Send(originCtx("https://app.example.com/auth/v1", ""), voiceMessage())
		var se *StatusError
		if !errors.As(err, &se) || errors.Is(err, sender.ErrTimeout) || strings.Contains(err.Error(), testCode) {
			t.Errorf("mode %d: err = %v", tc.mode, err)
		}
	}
	f := testenv.NewFakePlivo(t)
	f.Fail(testenv.PlivoHang)
	s := newSender(t, f, func(c *Config) {
		c.VoiceFrom, c.Secret, c.Timeout = "+14155550111", secretFunc(testSecret), 200*time.Millisecond
	})
	if _, err := s.Send(originCtx("https://app.example.com/auth/v1", ""), voiceMessage()); !errors.Is(err, sender.ErrTimeout) {
		t.Fatalf("hang: %v", err)
	}
}

func TestServeVoice_SpeaksCodeTwiceOnce(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	api, _ := voiceServer(t, f)
	if _, err := voiceSender(t, f).Send(originCtx(api, "fr-CH, fr;q=0.9, en;q=0.8"), voiceMessage()); err != nil {
		t.Fatal(err)
	}
	c := onlyCall(t, f)
	status, body, err := f.Answer(c)
	if err != nil || status != http.StatusOK {
		t.Fatalf("answer: %d %s %v", status, body, err)
	}
	speech, ok := testenv.ParsePlivoXML(body)
	if !ok || len(speech) != 2 {
		t.Fatalf("xml %s", body)
	}
	for _, sp := range speech {
		if testenv.SpokenDigits(sp.Text) != testCode || sp.Language != "fr-FR" {
			t.Fatalf("speech %+v in %s", sp, body)
		}
	}
	if !strings.Contains(speech[0].Text, "Acme") || !strings.Contains(body, `<Wait length="1"/>`) {
		t.Fatalf("xml %s", body)
	}

	// the same URL again, as a replay with a fresh nonce or with Plivo's
	status, _, _ = f.Answer(c)
	if status != http.StatusForbidden {
		t.Fatalf("second fetch: %d", status)
	}
}

func TestServeVoice_ForgedOrMisdirectedAnswerRefused(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	api, _ := voiceServer(t, f)
	if _, err := voiceSender(t, f).Send(originCtx(api, ""), voiceMessage()); err != nil {
		t.Fatal(err)
	}
	c := onlyCall(t, f)
	u, _ := url.Parse(c.AnswerURL)
	token := u.Query().Get("t")

	tampered := []byte(token)
	tampered[len(tampered)/2] ^= 'A' ^ 'B'
	other, err := newSealer(bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.seal(voiceToken{ID: "x", To: testTo, Code: "111111", Exp: time.Now().Add(time.Minute).Unix()})
	mine, _ := newSealer(testSecret)
	expired, _ := mine.seal(voiceToken{ID: "y", To: testTo, Code: "111111", Exp: time.Now().Add(-time.Second).Unix()})
	withToken := func(tok string) string { return api + "/plivo/voice?t=" + url.QueryEscape(tok) }

	for name, fetch := range map[string]func() int{
		"tampered token": func() int { s, _, _ := f.Callback(withToken(string(tampered)), c.AnswerParams(), ""); return s },
		"no token":       func() int { s, _, _ := f.Callback(api+"/plivo/voice", c.AnswerParams(), ""); return s },
		"other secret":   func() int { s, _, _ := f.Callback(withToken(foreign), c.AnswerParams(), ""); return s },
		"expired":        func() int { s, _, _ := f.Callback(withToken(expired), c.AnswerParams(), ""); return s },
		"other number": func() int {
			p := c.AnswerParams()
			p.Set("To", "14155550100")
			s, _, _ := f.Callback(c.AnswerURL, p, "")
			return s
		},
		"unsigned": func() int {
			resp, err := http.PostForm(c.AnswerURL, c.AnswerParams())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		},
		"signed with another auth token": func() int {
			p := c.AnswerParams()
			req, _ := http.NewRequest(http.MethodPost, c.AnswerURL, strings.NewReader(p.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Plivo-Signature-V3-Nonce", "n1")
			req.Header.Set("X-Plivo-Signature-V3", plivogo.ComputeSignatureV3("not-the-auth-token", c.AnswerURL, http.MethodPost, "n1", firstValues(p)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		},
	} {
		if got := fetch(); got != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, got)
		}
	}
	// none of the refusals used the call's token up
	if status, body, _ := f.Answer(c); status != http.StatusOK || testenv.SpokenDigits(body) == "" {
		t.Fatalf("genuine answer after refusals: %d %s", status, body)
	}
}

func TestServeVoice_ReplayedNonce_Refused(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	api, _ := voiceServer(t, f)
	if _, err := voiceSender(t, f).Send(originCtx(api, ""), voiceMessage()); err != nil {
		t.Fatal(err)
	}
	c := onlyCall(t, f)
	if s, _, _ := f.Callback(c.AnswerURL, c.AnswerParams(), "nonce-1"); s != http.StatusOK {
		t.Fatalf("first: %d", s)
	}
	if s, _, _ := f.Callback(c.AnswerURL, c.AnswerParams(), "nonce-1"); s != http.StatusForbidden {
		t.Fatalf("replay: %d", s)
	}
}

func TestAnswerXML_EscapesAndFallsBackToEnglish(t *testing.T) {
	doc := string(AnswerXML(`<A&B "Co">`, "0123456789", "xx-YY"))
	speech, ok := testenv.ParsePlivoXML(doc)
	if !ok || len(speech) != 2 || speech[0].Language != "en-US" || !strings.Contains(speech[0].Text, `<A&B "Co">`) {
		t.Fatalf("%s", doc)
	}
	if testenv.SpokenDigits(speech[1].Text) != "0123456789" || !strings.Contains(speech[1].Text, "0, 1, 2, 3") {
		t.Fatalf("%s", doc)
	}
}

func TestVoiceLanguage_FromAcceptLanguage(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "en-US",
		"fr-CH, fr;q=0.9":          "fr-FR",
		"pt-BR,pt;q=0.9":           "pt-BR",
		"zh-CN,zh;q=0.9":           "cmn-CN",
		"ar":                       "arb",
		"hi-IN":                    "hi-IN",
		"en-GB":                    "en-GB",
		"id-ID,id;q=0.9,en;q=0.8":  "en-US",
		"de;q=0.5, es;q=0.9":       "es-ES",
		"ja, xx, de-AT":            "de-DE",
		"es-419":                   "es-MX",
		"fr;q=bad, de":             "de-DE",
		"*":                        "en-US",
		"nl-BE;q=0.7, it-CH;q=0.8": "it-IT",
	} {
		if got := VoiceLanguage(in); got != want {
			t.Errorf("VoiceLanguage(%q) = %q, want %q", in, got, want)
		}
		if _, ok := voicePhrases[phraseKey(VoiceLanguage(in))]; !ok {
			t.Errorf("no phrases for %q", VoiceLanguage(in))
		}
	}
}

func TestNew_VoiceAndDLTConfig(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	base := Config{AuthID: f.AuthID, AuthToken: f.AuthToken, From: testFrom, APIURL: f.URL()}
	for _, tc := range []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.VoiceFrom = "14155550111"; c.Secret = secretFunc(testSecret) }, `voice_from: "14155550111" is not an E.164 number`},
		{func(c *Config) { c.VoiceFrom = "+14155550111" }, "voice_from needs the server secret"},
		{func(c *Config) { c.DLTEntityID = "1201159100000000001" }, "dlt_entity_id and dlt_template_id go together"},
		{func(c *Config) { c.DLTTemplateID = "1207161500000000001" }, "dlt_entity_id and dlt_template_id go together"},
		{func(c *Config) { c.DLTTemplateCategory = "service_implicit" }, "dlt_template_category: needs"},
		{func(c *Config) {
			c.DLTEntityID, c.DLTTemplateID, c.DLTTemplateCategory = "1", "2", "otp"
		}, `dlt_template_category: want transactional, service_implicit, service_explicit or promotional (got "otp")`},
	} {
		c := base
		tc.mutate(&c)
		if _, err := New(c, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New: %v, want %q", err, tc.want)
		}
	}
}

func TestSend_DLT_SentWithSMSOnly(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	s := newSender(t, f, func(c *Config) {
		c.DLTEntityID, c.DLTTemplateID, c.DLTTemplateCategory = "1201159100000000001", "1207161500000000001", "service_implicit"
		c.WhatsAppTemplate, c.WhatsAppLanguage = "otp_login", "en"
	})
	if _, err := s.Send(context.Background(), smsMessage()); err != nil {
		t.Fatal(err)
	}
	m := onlyMessage(t, f)
	if m.DLTEntityID != "1201159100000000001" || m.DLTTemplateID != "1207161500000000001" || m.DLTCategory != "service_implicit" {
		t.Fatalf("sms %s", m.Raw)
	}
	wa := smsMessage()
	wa.Channel = sender.WhatsApp
	if _, err := s.Send(context.Background(), wa); err != nil {
		t.Fatal(err)
	}
	if raw := string(f.Messages()[1].Raw); strings.Contains(raw, "dlt_") {
		t.Fatalf("whatsapp carries DLT fields: %s", raw)
	}
}

func TestSend_UsesRenderedText(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	s := newSender(t, f, nil)
	m := smsMessage()
	m.Text = "482913 is your Acme code"
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got := onlyMessage(t, f).Text; got != m.Text {
		t.Fatalf("text %q", got)
	}
}

// The Call API request is recorded like the Message API ones, with the
// sealed token (random each time) replaced.
func TestGolden_RecordedCallAPIPayload(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	if _, err := voiceSender(t, f).Send(originCtx("https://app.example.com/auth/v1", ""), voiceMessage()); err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(onlyCall(t, f).Raw, &v); err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(v, "", "  ")
	got = regexp.MustCompile(`\?t=[A-Za-z0-9_-]+`).ReplaceAll(got, []byte("?t=<sealed>"))
	got = append(got, '\n')
	path := filepath.Join("..", "..", "..", "testdata", "plivo", "voice_call_request.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to record)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("request body changed:\n got %s\nwant %s", got, want)
	}
}
