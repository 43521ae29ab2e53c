package sender

import (
	"context"

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
