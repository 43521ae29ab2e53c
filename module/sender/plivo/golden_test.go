package plivo

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/sender"
)

var update = flag.Bool("update", false, "rewrite the recorded provider payloads in testdata/plivo")

// The Message API requests plivo-go sends are recorded in testdata/plivo;
// a change to what reaches Plivo shows up as a diff there.
func TestGolden_RecordedMessageAPIPayloads(t *testing.T) {
	cases := []struct {
		file string
		cfg  func(c *Config)
		msg  sender.Message
	}{
		{"sms_request.json", func(c *Config) {}, sender.Message{To: "+14155550123", Channel: sender.SMS, Code: "482913", App: "Acme", TTL: 5 * time.Minute}},
		{"sms_powerpack_request.json", func(c *Config) { c.From = ""; c.PowerpackUUID = "1f0e2c3a-0000-4000-8000-000000000001" },
			sender.Message{To: "+447400123456", Channel: sender.SMS, Code: "48291305", App: "Acme", TTL: 10 * time.Minute}},
		{"sms_status_url_request.json", func(c *Config) { c.StatusURL = "https://app.example.com/auth/v1/plivo/status" },
			sender.Message{To: "+14155550123", Channel: sender.SMS, Code: "482913", App: "Acme", TTL: 5 * time.Minute}},
		{"whatsapp_request.json", func(c *Config) { c.WhatsAppTemplate = "otp_login"; c.WhatsAppLanguage = "en" },
			sender.Message{To: "+14155550123", Channel: sender.WhatsApp, Code: "482913", App: "Acme", TTL: 5 * time.Minute}},
		{"sms_dlt_request.json", func(c *Config) {
			c.DLTEntityID, c.DLTTemplateID, c.DLTTemplateCategory = "1201159100000000001", "1207161500000000001", "service_implicit"
		}, sender.Message{To: "+919812345678", Channel: sender.SMS, Code: "482913", App: "Acme", TTL: 5 * time.Minute,
			Text: "482913 is your OTP to sign in to Acme. It is valid for 5 minutes. Do not share it with anyone."}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			fake := testenv.NewFakePlivo(t)
			c := Config{AuthID: fake.AuthID, AuthToken: fake.AuthToken, From: "+14155550100", APIURL: fake.URL(), Timeout: 5 * time.Second}
			tc.cfg(&c)
			s, err := New(c, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Send(context.Background(), tc.msg); err != nil {
				t.Fatal(err)
			}
			msgs := fake.Messages()
			if len(msgs) != 1 {
				t.Fatalf("%d requests", len(msgs))
			}
			var v any
			if err := json.Unmarshal(msgs[0].Raw, &v); err != nil {
				t.Fatal(err)
			}
			got, _ := json.MarshalIndent(v, "", "  ")
			got = append(got, '\n')
			path := filepath.Join("..", "..", "..", "testdata", "plivo", tc.file)
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
		})
	}
}
