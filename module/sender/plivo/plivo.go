// Package plivo delivers one-time codes by SMS and WhatsApp through Plivo's
// Message API and by voice call through its Call API (plivo-go v7), and
// receives Plivo's signed status, inbound and voice answer callbacks. It
// knows nothing of Caddy.
package plivo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	plivogo "github.com/plivo/plivo-go/v7"
	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/sender"
)

// Defaults.
const (
	DefaultAPIURL  = "https://api.plivo.com/"
	DefaultTimeout = 10 * time.Second
)

// Plivo accepts message_expiry between 5 and 10799 seconds (under its own
// 3-hour queue limit).
const (
	minExpiry = 5
	maxExpiry = 10799
)

// maxResponse bounds what plivo-go may read from one answer; it reads the
// whole body into memory.
const maxResponse = 1 << 20

// Config configures a Sender. Exactly one of From and PowerpackUUID is set.
type Config struct {
	AuthID        string
	AuthToken     string
	From          string // sender number or ID; required for WhatsApp
	PowerpackUUID string
	// APIURL is the API base, default DefaultAPIURL. Only scheme and host are
	// used: plivo-go replaces the path of every request.
	APIURL string
	// StatusURL, when set, is sent with every message as the URL Plivo
	// posts its delivery reports to.
	StatusURL string
	// Timeout bounds one send, connection included; default DefaultTimeout.
	Timeout time.Duration
	// WhatsAppTemplate and WhatsAppLanguage name an approved authentication
	// template (code as body parameter and copy-code button). Setting them
	// enables the WhatsApp channel.
	WhatsAppTemplate string
	WhatsAppLanguage string
	// Template is the SMS text with {app} and {code}, used when a message
	// comes without a rendered Text; default sender.DefaultTemplate.
	Template string
	// DLTEntityID, DLTTemplateID and DLTTemplateCategory are India's DLT
	// registration of the sender and of the approved template the text
	// matches; when set they go with every SMS.
	DLTEntityID         string
	DLTTemplateID       string
	DLTTemplateCategory string
	// VoiceFrom, a number of the Plivo account in E.164, enables the voice
	// channel: Plivo calls the phone from it and fetches what to say from
	// the answer URL {api}/plivo/voice (see Callbacks.ServeVoice).
	VoiceFrom string
	// Secret returns the server secret the code is sealed with in the
	// answer URL (read at each call: the app may adopt another instance's
	// secret at start); required with VoiceFrom, the same as the
	// Callbacks'.
	Secret func() []byte
}

// StatusError is an HTTP answer from Plivo that is not a success. Msg is
// Plivo's error text with the code, the message text and the destination
// removed; it is for logs, never for API clients.
type StatusError struct {
	Status int
	Msg    string
}

func (e *StatusError) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Msg)
}

// Sender sends codes through Plivo. It is safe for concurrent use.
type Sender struct {
	cfg       Config
	baseURL   *url.URL
	transport *http.Transport
	logger    *zap.Logger
}

var _ sender.Sender = (*Sender)(nil)

// WithDefaults returns c with its zero settings at their defaults.
func (c Config) WithDefaults() Config {
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Template == "" {
		c.Template = sender.DefaultTemplate
	}
	return c
}

// Validate checks the settings of c as they will run, its defaults
// applied, and reports every problem. Each error names the Caddyfile
// option at fault ("plivo api_url: ...") and never holds a credential.
// Secret, the server's and not a setting, is New's to check.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.AuthID == "" {
		add("plivo: auth_id is required")
	}
	if c.AuthToken == "" {
		add("plivo: auth_token is required")
	}
	if (c.From == "") == (c.PowerpackUUID == "") {
		add("plivo: exactly one of from and powerpack_uuid is required")
	}
	if _, err := parseAPIURL(c.APIURL); err != nil {
		errs = append(errs, err)
	}
	if err := checkStatusURL(c.StatusURL); err != nil {
		errs = append(errs, err)
	}
	if c.Timeout < 0 {
		add("plivo timeout: must be positive (got %v)", c.Timeout)
	}
	if !strings.Contains(c.Template, "{code}") {
		add("plivo template: must contain {code}")
	}
	if (c.WhatsAppTemplate == "") != (c.WhatsAppLanguage == "") {
		add("plivo whatsapp_template: name and language are required")
	}
	if v := c.VoiceFrom; v != "" {
		if _, ok := plivoNumber(v); !ok {
			add("plivo voice_from: %q is not an E.164 number (want + then 7 to 15 digits)", v)
		}
	}
	if (c.DLTEntityID == "") != (c.DLTTemplateID == "") {
		add("plivo: dlt_entity_id and dlt_template_id go together; set both")
	}
	if cat := c.DLTTemplateCategory; cat != "" {
		if c.DLTTemplateID == "" {
			add("plivo dlt_template_category: needs dlt_entity_id and dlt_template_id")
		}
		if !DLTCategories[cat] {
			add("plivo dlt_template_category: want transactional, service_implicit, service_explicit or promotional (got %q)", cat)
		}
	}
	return errors.Join(errs...)
}

// New fills c's defaults, checks it and returns a Sender.
func New(c Config, logger *zap.Logger) (*Sender, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.VoiceFrom != "" && c.Secret == nil {
		return nil, errors.New("plivo: voice_from needs the server secret to seal codes into the answer URL")
	}
	// Not in Validate yet: testdata/adapt/redis_plivo_whatsapp.caddyfile,
	// which `caddy adapt` must accept, sets whatsapp_template with a
	// powerpack.
	if c.WhatsAppTemplate != "" && c.From == "" {
		return nil, errors.New("plivo whatsapp_template: requires from (the WhatsApp Business number); a powerpack cannot send WhatsApp")
	}
	base, err := parseAPIURL(c.APIURL)
	if err != nil {
		return nil, err
	}
	var tr *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = dt.Clone()
	} else {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment}
	}
	return &Sender{cfg: c, baseURL: base, transport: tr, logger: logger}, nil
}

// DLTCategories are the template categories India's DLT registers.
var DLTCategories = map[string]bool{
	"transactional": true, "service_implicit": true, "service_explicit": true, "promotional": true,
}

// parseAPIURL reads api_url: a scheme and host only.
func parseAPIURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, errors.New("plivo api_url: must be an absolute http or https URL such as " + DefaultAPIURL)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Opaque != "":
		return nil, fmt.Errorf("plivo api_url: must be an absolute http or https URL (got %q)", u.Redacted())
	case u.User != nil:
		return nil, errors.New("plivo api_url: must not carry credentials; use auth_id and auth_token")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		// plivo-go overwrites the path of every request: a prefix would be
		// silently dropped.
		return nil, fmt.Errorf("plivo api_url: must be a scheme and host only, as plivo-go ignores any path (got %q)", u.Redacted())
	}
	return u, nil
}

// checkStatusURL accepts an empty status_url or an absolute http(s) URL
// without credentials, query or fragment.
func checkStatusURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("plivo status_url: must be an absolute http or https URL")
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return fmt.Errorf("plivo status_url: must be an absolute http or https URL (got %q)", u.Redacted())
	case u.User != nil, u.RawQuery != "", u.Fragment != "":
		return fmt.Errorf("plivo status_url: must not have credentials, a query or a fragment (got %q)", u.Redacted())
	}
	return nil
}

// Close releases idle connections. The Sender must not be used afterwards.
func (s *Sender) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// Supports reports SMS always, WhatsApp when a template is configured and
// voice when voice_from is.
func (s *Sender) Supports(channel string) bool {
	switch channel {
	case sender.SMS:
		return true
	case sender.WhatsApp:
		return s.cfg.WhatsAppTemplate != ""
	case sender.Voice:
		return s.cfg.VoiceFrom != ""
	}
	return false
}

// Send queues m at Plivo and returns Plivo's message UUID. An empty channel
// means SMS. A call that outlives the timeout fails with sender.ErrTimeout;
// any refusal, 5xx, 429 or answer without a message UUID is an error too.
// Errors never contain the code, the text or the destination.
func (s *Sender) Send(ctx context.Context, m sender.Message) (sender.Result, error) {
	channel := m.SendChannel()
	if !s.Supports(channel) {
		return sender.Result{}, fmt.Errorf("plivo send %q: %w", channel, sender.ErrChannel)
	}
	dst, ok := plivoNumber(m.To)
	if !ok {
		return sender.Result{}, errors.New("plivo send: destination is not an E.164 number")
	}
	if channel == sender.Voice {
		return s.call(ctx, dst, m)
	}
	params := s.params(channel, dst, m)
	if channel == sender.SMS {
		if n, gsm := segments(params.Text); n > 1 {
			s.logger.Warn("plivo: message text needs more than one SMS segment",
				zap.Int("segments", n), zap.Bool("gsm7", gsm))
		}
	}

	id, err := s.create(ctx, params, []string{params.Text, m.Code, m.To, dst})
	if err != nil {
		return sender.Result{}, err
	}
	s.logger.Debug("plivo: message queued", zap.String("channel", channel),
		zap.String("to", sender.MaskTail(m.To)), zap.String("message_id", id))
	return sender.Result{MessageID: id}, nil
}

func (s *Sender) params(channel, dst string, m sender.Message) plivogo.MessageCreateParams {
	p := plivogo.MessageCreateParams{
		Src:           s.cfg.From,
		PowerpackUUID: s.cfg.PowerpackUUID,
		Dst:           dst,
		// Log is an interface{} with omitempty: a false bool is still sent,
		// and Plivo then keeps neither the text nor the full number.
		Log: false,
	}
	if s.cfg.StatusURL != "" {
		// Plivo reports delivery only to the URL sent with the message.
		p.URL = s.cfg.StatusURL
		p.Method = http.MethodPost
	}
	if channel == sender.WhatsApp {
		code := []plivogo.Parameter{{Type: "text", Text: m.Code}}
		p.Type = "whatsapp"
		p.Template = &plivogo.Template{
			Name:     s.cfg.WhatsAppTemplate,
			Language: s.cfg.WhatsAppLanguage,
			// Authentication templates take the code twice: in the body
			// and in the copy-code button (a "url" button at index 0).
			Components: []plivogo.Component{
				{Type: "body", Parameters: code},
				{Type: "button", SubType: "url", Index: "0", Parameters: code},
			},
		}
		return p
	}
	p.Type = plivogo.SMS
	p.Text = m.Text
	if p.Text == "" {
		p.Text = sender.Render(s.cfg.Template, m)
	}
	p.MessageExpiry = expirySeconds(m.TTL)
	p.DLTEntityID = s.cfg.DLTEntityID
	p.DLTTemplateID = s.cfg.DLTTemplateID
	p.DLTTemplateCategory = s.cfg.DLTTemplateCategory
	return p
}

// create sends p with plivo-go, bounded by the timeout and ctx. secrets are
// removed from any provider text put in the error.
func (s *Sender) create(ctx context.Context, p plivogo.MessageCreateParams, secrets []string) (string, error) {
	return s.do(ctx, "plivo send", "message_uuid", secrets, func(c *plivogo.Client) (string, string, error) {
		resp, err := c.Messages.Create(p)
		if err != nil || resp == nil {
			return "", "", err
		}
		id := ""
		if len(resp.MessageUUID) > 0 {
			id = resp.MessageUUID[0]
		}
		return id, resp.Error, nil
	})
}

// do runs one plivo-go request, bounded by the timeout and ctx, and
// returns the id the answer names (idField in errors). op prefixes errors.
func (s *Sender) do(ctx context.Context, op, idField string, secrets []string,
	request func(*plivogo.Client) (id, providerErr string, err error)) (string, error) {
	callCtx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()

	// plivo-go builds requests without a context and never calls its
	// RequestInterceptor, so the context travels through a per-call
	// RoundTripper over the shared transport. The plivo-go client is cheap
	// and per call, which also keeps BaseUrl per Sender (it is a client
	// field, not a package variable).
	rt := &callTransport{ctx: callCtx, base: s.transport, target: s.baseURL}
	defer rt.close()
	client, err := plivogo.NewClient(s.cfg.AuthID, s.cfg.AuthToken, &plivogo.ClientOptions{
		HttpClient: &http.Client{
			Transport:     rt,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	client.BaseUrl = s.baseURL // read only: plivo-go copies it per request

	id, providerErr, err := request(client)
	status := rt.status()
	switch {
	case err != nil:
		return "", s.classify(op, ctx, callCtx, err, status, secrets)
	case status < 200 || status > 299:
		// plivo-go reports no error for a failure status with an empty
		// body, nor after its retries of a voice request that failed.
		return "", fmt.Errorf("%s: %w", op, &StatusError{Status: status, Msg: "no usable answer"})
	case id == "":
		msg := "no " + idField + " in the answer"
		if providerErr != "" {
			msg += ": " + redact(providerErr, secrets)
		}
		return "", fmt.Errorf("%s: %w", op, &StatusError{Status: status, Msg: msg})
	}
	return id, nil
}

func (s *Sender) classify(op string, parent, call context.Context, err error, status int, secrets []string) error {
	if perr := parent.Err(); perr != nil {
		if errors.Is(perr, context.DeadlineExceeded) {
			return fmt.Errorf("%s: request deadline: %w", op, sender.ErrTimeout)
		}
		return fmt.Errorf("%s: %w", op, perr)
	}
	if errors.Is(call.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: no answer within %s: %w", op, s.cfg.Timeout, sender.ErrTimeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// url.Error's text holds the request URL (and the auth id): keep
		// only the cause.
		if ue.Timeout() {
			return fmt.Errorf("%s: %w", op, sender.ErrTimeout)
		}
		return fmt.Errorf("%s: %w", op, ue.Err)
	}
	switch {
	case status == 0:
		return fmt.Errorf("%s: %w", op, err)
	case status >= 200 && status <= 299:
		// A JSON decoding error: its text is not needed and may quote
		// the body.
		return fmt.Errorf("%s: %w", op, &StatusError{Status: status, Msg: "unreadable answer"})
	}
	// plivo-go turns a failure status with a body into errors.New(body).
	return fmt.Errorf("%s: %w", op, &StatusError{Status: status, Msg: providerText(err.Error(), secrets)})
}

// callTransport gives every request of one call the call's context, sends
// it to the configured API host, and remembers the status and body of the
// last answer.
type callTransport struct {
	ctx  context.Context
	base http.RoundTripper
	// target is api_url: plivo-go sends voice requests to api.plivo.com
	// whatever its BaseUrl, so the host is set here for all of them.
	target *url.URL

	mu   sync.Mutex
	code int
	body io.Closer
}

func (t *callTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.WithContext(t.ctx)
	if t.target != nil && (r.URL.Host != t.target.Host || r.URL.Scheme != t.target.Scheme) {
		u := *r.URL
		u.Scheme, u.Host = t.target.Scheme, t.target.Host
		r.URL, r.Host = &u, t.target.Host
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.code = resp.StatusCode
	t.body = resp.Body
	t.mu.Unlock()
	resp.Body = &limitedBody{ReadCloser: resp.Body, n: maxResponse}
	return resp, nil
}

func (t *callTransport) status() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.code
}

// close closes the last body: plivo-go reads it but never closes it.
func (t *callTransport) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.body != nil {
		_ = t.body.Close()
	}
}

var errResponseTooLarge = errors.New("plivo answer too large")

type limitedBody struct {
	io.ReadCloser
	n int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, errResponseTooLarge
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.ReadCloser.Read(p)
	b.n -= int64(n)
	return n, err
}

// plivoNumber turns E.164 "+14155550100" into Plivo's "14155550100". Plivo
// strips '+' itself, but '<' separates several destinations in dst, so
// anything but digits is refused.
func plivoNumber(e164 string) (string, bool) {
	d, ok := strings.CutPrefix(e164, "+")
	if !ok || len(d) < 7 || len(d) > 15 || d[0] == '0' {
		return "", false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return "", false
		}
	}
	return d, true
}

func expirySeconds(ttl time.Duration) int {
	if ttl <= 0 {
		return 0 // omitted: Plivo's default
	}
	return min(max(int(ttl/time.Second), minExpiry), maxExpiry)
}

// providerText extracts Plivo's error message from an error body, without
// secrets, on one line and short.
func providerText(body string, secrets []string) string {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal([]byte(body), &e) == nil && len(e.Error) > 0 {
		var s string
		if json.Unmarshal(e.Error, &s) == nil {
			body = s
		} else {
			body = string(e.Error)
		}
	}
	return redact(body, secrets)
}

func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	const maxLen = 200
	if len(s) > maxLen {
		cut := maxLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
