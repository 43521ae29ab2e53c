package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/plivo/plivo-go/v7"
)

func plivoClient(t *testing.T, f *FakePlivo, id, token string) *plivo.Client {
	t.Helper()
	c, err := plivo.NewClient(id, token, &plivo.ClientOptions{HttpClient: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	c.BaseUrl, err = url.Parse(f.URL())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func postMessage(t *testing.T, f *FakePlivo, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.URL()+"v1/Account/"+f.AuthID+"/Message/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(f.AuthID, f.AuthToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestFakePlivo_PlivoGoSend_RecordedAndQueued(t *testing.T) {
	f := NewFakePlivo(t)
	c := plivoClient(t, f, f.AuthID, f.AuthToken)
	resp, err := c.Messages.Create(plivo.MessageCreateParams{
		Src: "14155550100", Dst: "14155550199", Text: "Your Acme code is 123456",
		Type: "sms", Log: false, MessageExpiry: 300,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.MessageUUID) != 1 || resp.MessageUUID[0] == "" || resp.Message != "message(s) queued" || resp.ApiID == "" {
		t.Fatalf("answer = %+v", resp)
	}
	msgs := f.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages recorded", len(msgs))
	}
	m := msgs[0]
	if m.Src != "14155550100" || m.Dst != "14155550199" || m.Text != "Your Acme code is 123456" ||
		m.Type != "sms" || m.Log != false || m.MessageExpiry != 300 || m.PowerpackUUID != "" {
		t.Fatalf("recorded %+v", m)
	}
	if !strings.Contains(string(m.Raw), `"log":false`) || !strings.HasPrefix(m.UserAgent, "plivo-go/") {
		t.Fatalf("raw %s, user agent %q", m.Raw, m.UserAgent)
	}
	if got := f.LastCode("+14155550199"); got != "123456" {
		t.Fatalf("LastCode = %q", got)
	}
	if got := f.LastCode("+14155550000"); got != "" {
		t.Fatalf("LastCode of another number = %q", got)
	}
}

func TestFakePlivo_WrongCredentials_401(t *testing.T) {
	f := NewFakePlivo(t)
	c := plivoClient(t, f, f.AuthID, "wrong")
	_, err := c.Messages.Create(plivo.MessageCreateParams{Src: "1", Dst: "2", Text: "x"})
	if err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("err = %v", err)
	}
	c = plivoClient(t, f, "MAOTHER", f.AuthToken)
	if _, err = c.Messages.Create(plivo.MessageCreateParams{Src: "1", Dst: "2", Text: "x"}); err == nil {
		t.Fatal("another auth id was accepted")
	}
	if len(f.Messages()) != 0 || f.Requests() != 2 {
		t.Fatalf("messages %d, requests %d", len(f.Messages()), f.Requests())
	}
}

func TestFakePlivo_Modes(t *testing.T) {
	f := NewFakePlivo(t)
	const body = `{"src":"14155550100","dst":"14155550199","text":"code 1234","type":"sms"}`
	for _, tc := range []struct {
		mode   PlivoMode
		status int
		empty  bool
		uuid   bool
	}{
		{PlivoOK, 202, false, true},
		{Plivo500, 500, false, false},
		{Plivo500Empty, 500, true, false},
		{Plivo503, 503, false, false},
		{Plivo429, 429, false, false},
		{Plivo401, 401, false, false},
		{PlivoNoUUID, 202, false, false},
	} {
		f.Fail(tc.mode)
		resp := postMessage(t, f, body)
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status || (len(data) == 0) != tc.empty {
			t.Errorf("mode %d: status %d body %q", tc.mode, resp.StatusCode, data)
		}
		var answer map[string]any
		if !tc.empty {
			if err := json.Unmarshal(data, &answer); err != nil {
				t.Errorf("mode %d: body not JSON: %q", tc.mode, data)
			}
		}
		if _, ok := answer["message_uuid"]; ok != tc.uuid {
			t.Errorf("mode %d: message_uuid present = %v", tc.mode, ok)
		}
	}
	if n := len(f.Messages()); n != 7 {
		t.Fatalf("%d messages recorded", n)
	}
}

func TestFakePlivo_RefusesWhatPlivoRefuses(t *testing.T) {
	f := NewFakePlivo(t)
	for _, body := range []string{
		`{"src":"1","powerpack_uuid":"p","dst":"2","text":"x"}`,
		`{"dst":"2","text":"x"}`,
		`{"src":"1","text":"x"}`,
		`{"src":"1","dst":"2<3","text":"x"}`,
		`{"src":"1","dst":"2","text":"x","message_expiry":3}`,
		`{"src":"1","dst":"2","type":"whatsapp"}`,
		`{"powerpack_uuid":"p","dst":"2","type":"whatsapp","template":{"name":"otp","language":"en"}}`,
		`not json`,
	} {
		if resp := postMessage(t, f, body); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d", body, resp.StatusCode)
		}
	}
	if n := len(f.Messages()); n != 0 {
		t.Fatalf("%d invalid messages recorded", n)
	}
}

func TestFakePlivo_Hang_EndsWithClientContext(t *testing.T) {
	f := NewFakePlivo(t)
	f.Fail(PlivoHang)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.URL()+"v1/Account/"+f.AuthID+"/Message/",
		strings.NewReader(`{"src":"1","dst":"2","text":"x"}`))
	req.SetBasicAuth(f.AuthID, f.AuthToken)
	req.Header.Set("Content-Type", "application/json")
	_, err := http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestFakePlivo_Hang_EndsWithServer(t *testing.T) {
	result := make(chan error, 1)
	t.Run("server", func(t *testing.T) {
		f := NewFakePlivo(t)
		f.Fail(PlivoHang)
		go func() { result <- postMessageNoFatal(f) }()
	}) // cleanup closes the server while the request hangs (or before it starts)
	if err := <-result; err == nil {
		t.Fatal("a hanging request got an answer")
	}
}

func postMessageNoFatal(f *FakePlivo) error {
	req, _ := http.NewRequest(http.MethodPost, f.URL()+"v1/Account/"+f.AuthID+"/Message/",
		strings.NewReader(`{"src":"1","dst":"2","text":"x"}`))
	req.SetBasicAuth(f.AuthID, f.AuthToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted {
		return errors.New(resp.Status)
	}
	return nil
}

func TestFakePlivo_LastCode_WhatsAppBodyParameter(t *testing.T) {
	f := NewFakePlivo(t)
	postMessage(t, f, `{"src":"14155550100","dst":"14155550199","text":"Your App2 code is 111111"}`)
	postMessage(t, f, `{"src":"14155550100","dst":"14155550199","type":"whatsapp",`+
		`"template":{"name":"otp","language":"en","components":[{"type":"body","parameters":[{"type":"text","text":"222222"}]}]}}`)
	if got := f.LastCode("14155550199"); got != "222222" {
		t.Fatalf("LastCode = %q", got)
	}
}

func TestFakePlivo_SignV3_ValidatesWithPlivoGo(t *testing.T) {
	f := NewFakePlivo(t)
	params := url.Values{"From": {"14155550199"}, "Text": {"STOP"}}
	const u = "https://auth.example.com/auth/v1/plivo/inbound?x=1"
	sig := f.SignV3(u, "nonce-1", params)
	m := map[string]string{"From": "14155550199", "Text": "STOP"}
	if !plivo.ValidateSignatureV3(u, "nonce-1", http.MethodPost, sig, f.AuthToken, m) {
		t.Fatal("plivo-go refuses the signature")
	}
	if plivo.ValidateSignatureV3(u, "nonce-2", http.MethodPost, sig, f.AuthToken, m) {
		t.Fatal("the signature does not cover the nonce")
	}
	r := f.NewCallbackRequest(u, params)
	if r.Header.Get("X-Plivo-Signature-V3") == "" || r.Header.Get("X-Plivo-Signature-V3-Nonce") == "" || r.TLS == nil {
		t.Fatalf("callback request headers %v", r.Header)
	}
}
