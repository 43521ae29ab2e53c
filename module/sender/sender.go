// Package sender delivers one-time codes. Two implementations exist: the
// console sender (development: the message is written to the log) and the
// Plivo sender (SMS and WhatsApp through plivo-go).
package sender

import (
	"context"
	"errors"
	"time"
)

// Channels.
const (
	SMS      = "sms"
	WhatsApp = "whatsapp"
)

// ErrTimeout means the provider did not answer within the configured
// timeout (504 provider_timeout).
var ErrTimeout = errors.New("provider timeout")

// ErrChannel means the channel is not configured for this sender.
var ErrChannel = errors.New("channel not configured")

// Message is one code to deliver.
type Message struct {
	To      string        // E.164
	Channel string        // SMS or WhatsApp
	Code    string        // the one-time code
	App     string        // app name for the text template
	TTL     time.Duration // code lifetime; the provider may drop the message after it
}

// Result is the provider's receipt.
type Result struct {
	MessageID string
}

// Sender delivers codes. Any error other than ErrTimeout or ErrChannel is a
// provider failure (502 sms_send_failed); errors never contain the code.
type Sender interface {
	Send(ctx context.Context, m Message) (Result, error)
	// Supports reports whether channel can be delivered.
	Supports(channel string) bool
}
