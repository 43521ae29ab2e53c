package otpgate

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/otpgate/otpgate/module/sender"
)

// smsJSON is the sms option's JSON for sender module typ with config cfg,
// as the Caddyfile adapter writes it.
func smsJSON(typ string, cfg any) json.RawMessage {
	if cfg == nil {
		cfg = struct{}{}
	}
	return caddyconfig.JSONModuleObject(cfg, "type", typ, nil)
}

func TestSenders_RegisteredInTheirNamespace(t *testing.T) {
	for _, name := range []string{"console", "plivo", "webhook"} {
		info, err := caddy.GetModule("otpgate.senders." + name)
		if err != nil {
			t.Fatal(err)
		}
		inst := info.New()
		if _, ok := inst.(sender.Sender); !ok {
			t.Errorf("%s is not a sender.Sender", info.ID)
		}
		if _, ok := inst.(caddyfile.Unmarshaler); !ok {
			t.Errorf("%s cannot be written in a Caddyfile", info.ID)
		}
	}
}

func TestAppValidate_SenderModules(t *testing.T) {
	webhook := func(w WebhookConfig) json.RawMessage { return smsJSON("webhook", w) }
	good := map[string]json.RawMessage{
		"console":            smsJSON("console", nil),
		"webhook":            webhook(WebhookConfig{URL: "https://hooks.example.com/sms", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Timeout: dur(5 * time.Second)}),
		"webhook supabase":   webhook(WebhookConfig{URL: "https://hooks.example.com/sms", Secret: "v1,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
		"webhook env":        webhook(WebhookConfig{URL: "{env.HOOK_URL}", Secret: "{env.HOOK_SECRET}", Channels: []string{"sms", "voice"}}),
		"plivo voice":        smsJSON("plivo", &PlivoConfig{AuthID: "i", AuthToken: "t", From: "+14155550100", VoiceFrom: "+14155550111"}),
		"plivo voice env":    smsJSON("plivo", &PlivoConfig{AuthID: "i", AuthToken: "t", From: "+14155550100", VoiceFrom: "{env.VOICE_FROM}"}),
		"plivo dlt":          smsJSON("plivo", &PlivoConfig{AuthID: "i", AuthToken: "t", From: "ACMEIN", DLTEntityID: "1201159100000000001", DLTTemplateID: "1207161500000000001", DLTTemplateCategory: "service_implicit"}),
		"plivo dlt no class": smsJSON("plivo", &PlivoConfig{AuthID: "i", AuthToken: "t", From: "ACMEIN", DLTEntityID: "1", DLTTemplateID: "2"}),
	}
	for name, raw := range good {
		if err := (&App{SMS: raw}).Validate(); err != nil {
			t.Errorf("%s: Validate() = %v", name, err)
		}
	}
	bad := []struct {
		name string
		raw  json.RawMessage
		want string
	}{
		{"not an object", json.RawMessage(`"plivo"`), "sms: want an object with a type"},
		{"type not a string", json.RawMessage(`{"type": 1}`), "sms: type must be a string"},
		{"webhook unknown field", json.RawMessage(`{"type":"webhook","url":"https://x","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","tiemout":"5s"}`), `sms webhook: json: unknown field "tiemout"`},
		{"webhook empty", webhook(WebhookConfig{}), "sms webhook: url is required"},
		{"webhook no secret", webhook(WebhookConfig{URL: "https://x"}), "sms webhook: secret is required"},
		{"webhook url", webhook(WebhookConfig{URL: "hooks.example.com", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}), "sms webhook: url must be an absolute http or https URL"},
		{"webhook secret", webhook(WebhookConfig{URL: "https://x", Secret: "hunter2hunter2hunter2"}), `sms webhook: secret must be "whsec_" followed by base64`},
		{"webhook timeout", webhook(WebhookConfig{URL: "https://x", Secret: "{env.S}", Timeout: dur(-time.Second)}), "sms webhook timeout: must be positive"},
		{"webhook channel", webhook(WebhookConfig{URL: "https://x", Secret: "{env.S}", Channels: []string{"fax"}}), `sms webhook channels: unknown channel "fax"`},
		{"voice_from", smsJSON("plivo", &PlivoConfig{AuthID: "i", AuthToken: "t", From: "f", VoiceFrom: "14155550111"}), `sms plivo voice_from: "14155550111" is not an E.164 number`},
		{"dlt half", smsJSON("plivo", &PlivoConfig{AuthID: "i", AuthToken: "t", From: "f", DLTEntityID: "1"}), "sms plivo: dlt_entity_id and dlt_template_id go together"},
		{"dlt category alone", smsJSON("plivo", &PlivoConfig{AuthID: "i", AuthToken: "t", From: "f", DLTTemplateCategory: "transactional"}), "sms plivo dlt_template_category: needs dlt_entity_id and dlt_template_id"},
		{"dlt category", smsJSON("plivo", &PlivoConfig{AuthID: "i", AuthToken: "t", From: "f", DLTEntityID: "1", DLTTemplateID: "2", DLTTemplateCategory: "otp"}), `sms plivo dlt_template_category: want transactional, service_implicit, service_explicit or promotional (got "otp")`},
	}
	for _, tc := range bad {
		err := (&App{SMS: tc.raw}).Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestAdapt_SenderOptions(t *testing.T) {
	global := func(lines string) string {
		return "{\n\totpgate {\n" + lines + "\n\t}\n}\n\n:8080 {\n\totpgate\n}\n"
	}
	sms := func(t *testing.T, caddyfile string) map[string]any {
		t.Helper()
		out, _, err := adapt(t, "Caddyfile", []byte(caddyfile))
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Apps struct {
				Otpgate struct {
					SMS map[string]any `json:"sms"`
				} `json:"otpgate"`
			} `json:"apps"`
		}
		if err := json.Unmarshal(out, &cfg); err != nil {
			t.Fatal(err)
		}
		return cfg.Apps.Otpgate.SMS
	}
	got := sms(t, global("sms webhook {\nurl https://hooks.example.com/sms\nsecret {env.HOOK}\ntimeout 3s\nchannels sms voice\n}"))
	if got["type"] != "webhook" || got["url"] != "https://hooks.example.com/sms" || got["secret"] != "{env.HOOK}" ||
		got["timeout"] != float64(3e9) || len(got["channels"].([]any)) != 2 {
		t.Errorf("webhook JSON %v", got)
	}
	got = sms(t, global("sms console"))
	if len(got) != 1 || got["type"] != "console" {
		t.Errorf("console JSON %v", got)
	}

	for _, tc := range []struct{ lines, want string }{
		{"sms webhook {\nurl https://x\nsecret {env.S}\nbogus 1\n}", `sms webhook: unknown option "bogus"`},
		{"sms webhook https://x", `sms webhook: unexpected argument "https://x"`},
		{"sms webhook {\nurl https://x\nurl https://y\n}", "sms webhook url: already specified"},
		{"sms webhook {\nsecret {env.S}\n}", "sms webhook: url is required"},
		{"sms webhook {\nurl https://x\nsecret nope\n}", `sms webhook: secret must be "whsec_" followed by base64`},
		{"sms webhook {\nurl https://x\nsecret {env.S}\ntimeout soon\n}", `sms webhook timeout: invalid duration "soon"`},
		{"sms webhook {\nurl https://x\nsecret {env.S}\nchannels\n}", "sms webhook channels: wrong argument count"},
		{"sms plivo {\nvoice_from 14155550111\n}", `sms plivo voice_from: "14155550111" is not an E.164 number`},
		{"sms plivo {\ndlt_template_category otp\n}", `sms plivo dlt_template_category: want transactional`},
		{"sms plivo {\nauth_id a\nauth_token b\nfrom ACME\ndlt_template_id 1\n}", "sms plivo: dlt_entity_id and dlt_template_id go together"},
	} {
		_, _, err := adapt(t, "Caddyfile", []byte(global(tc.lines)))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Caddyfile:") {
			t.Errorf("%q: error = %v, want %q with the file and line", tc.lines, err, tc.want)
		}
	}
}

// An error inside a sender's block points at its line.
func TestAdapt_SenderErrorPointsAtItsLine(t *testing.T) {
	caddyfile := "{\n\totpgate {\n\t\tsms plivo {\n\t\t\tauth_id a\n\t\t\ttimeout soon\n\t\t}\n\t}\n}\n"
	_, _, err := adapt(t, "Caddyfile", []byte(caddyfile))
	if err == nil || !strings.Contains(err.Error(), "Caddyfile:5") {
		t.Fatalf("error = %v, want it at Caddyfile:5", err)
	}
}
