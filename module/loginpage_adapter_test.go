package otpgate

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/module/sender"
)

// The login page's options: default_country and language on the handler,
// message_template per language in the app.
func TestAdapt_LoginPageOptions(t *testing.T) {
	src := `{
	otpgate {
		countries GB FR US
		message_template "Your {app} code is {code}"
		message_template fr "Votre code {app} : {code}"
		message_template pt-BR "Seu código {app}: {code}"
	}
}

:8080 {
	otpgate {
		default_country GB
		language fr
	}
}
`
	out, _, err := adapt(t, "Caddyfile", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		DefaultCountry string `json:"default_country"`
		Language       string `json:"language"`
	}
	hs := findHandlers(t, out, "otpgate")
	if len(hs) != 1 {
		t.Fatalf("%d otpgate handlers", len(hs))
	}
	if err := json.Unmarshal(hs[0], &h); err != nil || h.DefaultCountry != "GB" || h.Language != "fr" {
		t.Errorf("handler %s: %+v %v", hs[0], h, err)
	}
	var cfg struct {
		Apps struct {
			Otpgate App `json:"otpgate"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	app := cfg.Apps.Otpgate
	if app.MessageTemplate != "Your {app} code is {code}" || app.MessageTemplates["fr"] != "Votre code {app} : {code}" ||
		app.MessageTemplates["pt-BR"] != "Seu código {app}: {code}" || len(app.MessageTemplates) != 2 {
		t.Errorf("templates %q %v", app.MessageTemplate, app.MessageTemplates)
	}
}

func TestAdapt_LoginPageOptions_BadValuesNameTheField(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"region", ":8080 {\n\totpgate {\n\t\tdefault_country UK\n\t}\n}\n", `default_country: "UK" is not a region code`},
		{"language", ":8080 {\n\totpgate {\n\t\tlanguage klingon\n\t}\n}\n", `language: "klingon" is not one of en es fr de pt-BR hi id ar zh-CN`},
		{"template without code", "{\n\totpgate {\n\t\tmessage_template fr \"Bonjour\"\n\t}\n}\n", "message_template fr: must contain {code}"},
		{"template language", "{\n\totpgate {\n\t\tmessage_template \"fr FR\" \"{code}\"\n\t}\n}\n", "is not a language tag"},
		{"template twice", "{\n\totpgate {\n\t\tmessage_template fr \"{code}\"\n\t\tmessage_template fr \"{code}!\"\n\t}\n}\n", "message_template fr: already specified"},
		{"template args", "{\n\totpgate {\n\t\tmessage_template fr \"{code}\" extra\n\t}\n}\n", "message_template: want [<language>] <text>, got 3 arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := adapt(t, "Caddyfile", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if line := errorLine(t, err); line != 3 && !strings.Contains(tc.name, "twice") {
				t.Errorf("error at line %d, want 3 (the option's line): %v", line, err)
			}
		})
	}
}

type channelSender struct{ channels []string }

func (channelSender) Send(context.Context, sender.Message) (sender.Result, error) {
	return sender.Result{}, nil
}
func (s channelSender) Supports(ch string) bool { return slices.Contains(s.channels, ch) }

// The login page offers WhatsApp and calls only when the sender is set up
// for them; the console sender takes every channel but offers SMS only.
func TestPageChannels_WhatTheSenderOffers(t *testing.T) {
	for _, tc := range []struct {
		name string
		snd  sender.Sender
		want []string
	}{
		{"console", sender.Templated{Sender: &ConsoleSender{}}, []string{"sms"}},
		{"sms only", sender.Templated{Sender: channelSender{[]string{"sms"}}}, []string{"sms"}},
		{"whatsapp", sender.Templated{Sender: channelSender{[]string{"sms", "whatsapp"}}}, []string{"sms", "whatsapp"}},
		{"all", channelSender{[]string{"sms", "whatsapp", "voice"}}, []string{"sms", "whatsapp", "voice"}},
		{"none", sender.Templated{}, []string{"sms"}},
	} {
		if got := pageChannels(tc.snd); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
