package sender

import (
	"context"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestRender_FillsAppAndCode(t *testing.T) {
	m := Message{App: "Acme", Code: "482913"}
	for _, tc := range []struct{ template, want string }{
		{"", "Your Acme code is 482913"},
		{DefaultTemplate, "Your Acme code is 482913"},
		{"{code} is your {app} code. {code}", "482913 is your Acme code. 482913"},
		{"no placeholders", "no placeholders"},
	} {
		if got := Render(tc.template, m); got != tc.want {
			t.Errorf("Render(%q) = %q, want %q", tc.template, got, tc.want)
		}
	}
	// Placeholders inside the app name are not expanded a second time.
	if got := Render("", Message{App: "{code}", Code: "1"}); got != "Your {code} code is 1" {
		t.Errorf("app name expanded: %q", got)
	}
}

func TestConsole_Send_LogsTheText(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	c := Console{Logger: zap.New(core), Template: "{app}: {code}"}
	res, err := c.Send(context.Background(), Message{To: "+14155550199", Channel: SMS, Code: "482913", App: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	if res.MessageID == "" {
		t.Fatal("no message id")
	}
	entries := logs.All()
	if len(entries) != 1 || entries[0].Level != zapcore.WarnLevel {
		t.Fatalf("logs %+v", entries)
	}
	fields := entries[0].ContextMap()
	if fields["text"] != "Acme: 482913" || fields["message_id"] != res.MessageID || fields["channel"] != SMS {
		t.Fatalf("fields %v", fields)
	}
	if !c.Supports(WhatsApp) || !c.Supports(SMS) {
		t.Fatal("console refuses a channel")
	}
}

func TestConsole_Send_WithoutLogger(t *testing.T) {
	if _, err := (Console{}).Send(context.Background(), Message{Code: "1"}); err != nil {
		t.Fatal(err)
	}
}
