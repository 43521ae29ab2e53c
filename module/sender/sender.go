// Package sender delivers one-time codes. Three implementations ship with
// otpgate: the console sender (development: the message is written to the
// log), the Plivo sender (SMS, WhatsApp and voice calls through plivo-go)
// and the webhook sender (a Standard Webhooks POST to a service of yours).
// Others plug in as Caddy modules in the otpgate.senders namespace that
// implement Sender.
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
	Voice    = "voice"
)

// ErrTimeout means the provider did not answer within the configured
// timeout (504 provider_timeout).
var ErrTimeout = errors.New("provider timeout")

// ErrChannel means the channel is not configured for this sender.
var ErrChannel = errors.New("channel not configured")

// Message is one code to deliver.
type Message struct {
	To      string        // E.164
	Channel string        // SMS, WhatsApp or Voice
	Code    string        // the one-time code
	App     string        // app name for the text template
	TTL     time.Duration // code lifetime; the provider may drop the message after it
	// Text is the message text rendered from the app's message_template
	// ("Your {app} code is {code}"); a sender that sends text sends it as
	// is. Senders used on their own render their template when it is
	// empty.
	Text string
}

// SendChannel is the channel to send m on: its Channel, SMS when empty.
func (m Message) SendChannel() string {
	if m.Channel == "" {
		return SMS
	}
	return m.Channel
}

// Result is the provider's receipt.
type Result struct {
	MessageID string
}

// Sender delivers codes. Any error other than ErrTimeout or ErrChannel is a
// provider failure (502 sms_send_failed); errors never contain the code.
// Send may be called concurrently; the context carries the request's
// Origin and bounds the call.
type Sender interface {
	Send(ctx context.Context, m Message) (Result, error)
	// Supports reports whether channel can be delivered.
	Supports(channel string) bool
}

// Origin is what a sender may need to know of the HTTP request that asked
// for a code.
type Origin struct {
	// APIURL is the public URL of the auth API that served the request,
	// e.g. "https://app.example.com/auth/v1": public_url (or the request's
	// scheme and host) followed by the site's api_prefix. Providers that
	// call back into otpgate (Plivo's voice answer URL) build on it.
	APIURL string
	// AcceptLanguage is the request's Accept-Language header.
	AcceptLanguage string
}

type originKey struct{}

// WithOrigin returns ctx carrying o.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginOf returns the Origin carried by ctx, or the zero Origin.
func OriginOf(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	return o
}

// Templated fills Message.Text from Template before handing a message to
// the Sender it wraps.
type Templated struct {
	Sender
	Template string
}

// Send renders the text, unless the message has one, and sends it.
func (t Templated) Send(ctx context.Context, m Message) (Result, error) {
	if m.Text == "" {
		m.Text = Render(t.Template, m)
	}
	return t.Sender.Send(ctx, m)
}
