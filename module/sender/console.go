package sender

import (
	"context"
	"strings"

	"github.com/google/uuid"
	"go.uber.org/zap"
)

// Console writes messages, code included, to the log instead of sending
// them. For development only: it is the one place otpgate prints a code.
type Console struct {
	Logger   *zap.Logger
	Template string // e.g. "Your {app} code is {code}"
}

// Send logs the message and returns a random message ID.
func (c Console) Send(_ context.Context, m Message) (Result, error) {
	id := uuid.NewString()
	text := m.Text
	if text == "" {
		text = Render(c.Template, m)
	}
	if c.Logger != nil {
		c.Logger.Warn("console sender: message not sent (development only)",
			zap.String("to", MaskTail(m.To)), zap.String("channel", m.Channel),
			zap.String("text", text), zap.String("message_id", id))
	}
	return Result{MessageID: id}, nil
}

// Supports accepts every channel.
func (Console) Supports(string) bool { return true }

// DefaultTemplate is the message text used when none is configured. It fits
// one GSM-7 segment for any reasonable app name.
const DefaultTemplate = "Your {app} code is {code}"

// Render fills {app} and {code} in template.
func Render(template string, m Message) string {
	if template == "" {
		template = DefaultTemplate
	}
	return strings.NewReplacer("{app}", m.App, "{code}", m.Code).Replace(template)
}

// MaskTail keeps the last four digits of a number for logs: enough to
// tell numbers apart, too little to identify anyone.
func MaskTail(p string) string {
	var digits []byte
	for i := 0; i < len(p); i++ {
		if p[i] >= '0' && p[i] <= '9' {
			digits = append(digits, p[i])
		}
	}
	if len(digits) <= 4 {
		return "****"
	}
	return "****" + string(digits[len(digits)-4:])
}
