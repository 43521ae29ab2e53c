// Package webhook delivers one-time codes by POSTing them to a service of
// yours, in the payload of Supabase's Send SMS hook, signed as Standard
// Webhooks specify (https://www.standardwebhooks.com). It knows nothing of
// Caddy.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/sender"
)

// DefaultTimeout bounds one POST when no timeout is configured; Supabase
// gives its hooks the same.
const DefaultTimeout = 5 * time.Second

// SecretPrefix starts a Standard Webhooks secret; base64 follows.
const SecretPrefix = "whsec_"

// maxResponse is how much of an answer is read (and discarded) so the
// connection can be reused.
const maxResponse = 64 << 10

// Config configures a Sender.
type Config struct {
	// URL receives the POSTs: http or https.
	URL string
	// Secret is the Standard Webhooks secret, "whsec_<base64>"; the
	// "v1,whsec_…" form Supabase shows is accepted too.
	Secret string
	// Timeout bounds one POST, connection included; default DefaultTimeout.
	Timeout time.Duration
	// Channels are the channels the receiver delivers; default sms only.
	Channels []string
}

// StatusError is a non-2xx answer from the receiver.
type StatusError struct{ Status int }

func (e *StatusError) Error() string { return fmt.Sprintf("HTTP %d", e.Status) }

// Sender POSTs codes to the configured URL. It is safe for concurrent use.
type Sender struct {
	cfg       Config
	key       []byte
	client    *http.Client
	transport *http.Transport
	logger    *zap.Logger
	now       func() time.Time
}

var _ sender.Sender = (*Sender)(nil)

// New validates c and returns a Sender. Errors name the Caddyfile field at
// fault and never contain the secret.
func New(c Config, logger *zap.Logger) (*Sender, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	if err := CheckURL(c.URL); err != nil {
		return nil, err
	}
	key, err := ParseSecret(c.Secret)
	if err != nil {
		return nil, err
	}
	if c.Timeout < 0 {
		return nil, errors.New("webhook: timeout must be positive")
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if len(c.Channels) == 0 {
		c.Channels = []string{sender.SMS}
	}
	for _, ch := range c.Channels {
		if ch != sender.SMS && ch != sender.WhatsApp && ch != sender.Voice {
			return nil, fmt.Errorf("webhook: unknown channel %q (want sms, whatsapp or voice)", ch)
		}
	}
	var tr *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = dt.Clone()
	} else {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment}
	}
	return &Sender{
		cfg: c, key: key, transport: tr, logger: logger, now: time.Now,
		client: &http.Client{
			Transport: tr,
			// a redirect is not delivery: the receiver answers itself
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// CheckURL accepts an absolute http(s) URL without credentials.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return errors.New("webhook: url is required")
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return errors.New("webhook: url must be an absolute http or https URL")
	case u.User != nil:
		return errors.New("webhook: url must not carry credentials")
	}
	return nil
}

// ParseSecret returns the HMAC key of a Standard Webhooks secret.
func ParseSecret(secret string) ([]byte, error) {
	s := strings.TrimPrefix(strings.TrimSpace(secret), "v1,")
	b64, ok := strings.CutPrefix(s, SecretPrefix)
	if secret == "" {
		return nil, errors.New("webhook: secret is required")
	}
	if !ok {
		return nil, errors.New(`webhook: secret must be "whsec_" followed by base64 (a Standard Webhooks secret)`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New(`webhook: secret must be "whsec_" followed by base64 (a Standard Webhooks secret)`)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("webhook: secret must hold at least 16 bytes (got %d)", len(key))
	}
	return key, nil
}

// Close releases idle connections.
func (s *Sender) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// Supports reports the configured channels.
func (s *Sender) Supports(channel string) bool { return slices.Contains(s.cfg.Channels, channel) }

// Payload is the body of each POST: Supabase's Send SMS hook input, plus
// the channel.
type Payload struct {
	User    User   `json:"user"`
	SMS     SMS    `json:"sms"`
	Channel string `json:"channel"`
}

// User is the user part of the payload. Phone is spelt as Supabase does:
// the E.164 digits without '+'.
type User struct {
	Phone string `json:"phone"`
}

// SMS holds the code.
type SMS struct {
	OTP string `json:"otp"`
}

// Send POSTs the code. A 2xx answer is delivery; any other answer, a
// redirect included, is a failure, and no answer within the timeout is
// sender.ErrTimeout. The message id is the webhook-id.
func (s *Sender) Send(ctx context.Context, m sender.Message) (sender.Result, error) {
	channel := m.SendChannel()
	if !s.Supports(channel) {
		return sender.Result{}, fmt.Errorf("webhook send %q: %w", channel, sender.ErrChannel)
	}
	body, err := json.Marshal(Payload{
		User:    User{Phone: strings.TrimPrefix(m.To, "+")},
		SMS:     SMS{OTP: m.Code},
		Channel: channel,
	})
	if err != nil {
		return sender.Result{}, fmt.Errorf("webhook send: %w", err)
	}
	id, err := messageID()
	if err != nil {
		return sender.Result{}, fmt.Errorf("webhook send: %w", err)
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)

	callCtx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return sender.Result{}, errors.New("webhook send: bad url")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "otpgate-webhook")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+Sign(s.key, id, ts, body))

	resp, err := s.client.Do(req)
	if err != nil {
		return sender.Result{}, classify(ctx, callCtx, err, s.cfg.Timeout)
	}
	// the status decides; the body is read only to reuse the connection
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return sender.Result{}, fmt.Errorf("webhook send: %w", &StatusError{Status: resp.StatusCode})
	}
	s.logger.Debug("webhook: code delivered", zap.String("channel", channel),
		zap.String("to", sender.MaskTail(m.To)), zap.String("message_id", id))
	return sender.Result{MessageID: id}, nil
}

func classify(parent, call context.Context, err error, timeout time.Duration) error {
	if perr := parent.Err(); perr != nil {
		if errors.Is(perr, context.DeadlineExceeded) {
			return fmt.Errorf("webhook send: request deadline: %w", sender.ErrTimeout)
		}
		return fmt.Errorf("webhook send: %w", perr)
	}
	if errors.Is(call.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("webhook send: no answer within %s: %w", timeout, sender.ErrTimeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// url.Error's text holds the URL, which may carry a token
		if ue.Timeout() {
			return fmt.Errorf("webhook send: %w", sender.ErrTimeout)
		}
		return fmt.Errorf("webhook send: %w", ue.Err)
	}
	return fmt.Errorf("webhook send: %w", err)
}

// Sign is the Standard Webhooks signature of one message: base64 of
// HMAC-SHA256 over "id.timestamp.body".
func Sign(key []byte, id, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func messageID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "msg_" + hex.EncodeToString(b), nil
}
