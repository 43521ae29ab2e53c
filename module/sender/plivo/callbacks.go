package plivo

import (
	"context"
	"crypto/hmac"
	"errors"
	"net/http"
	"net/url"
	"strings"

	plivogo "github.com/plivo/plivo-go/v7"
	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/sender"
)

// maxCallbackBody bounds a callback's form body.
const maxCallbackBody = 64 << 10

// Status is one message status callback.
type Status struct {
	MessageUUID string
	Status      string // queued, sent, delivered, undelivered, failed, read…
	ErrorCode   string // Plivo's error code for undelivered/failed; "" or "000" otherwise
	To          string // E.164, with '+'
}

// Callbacks receives Plivo's message status callbacks, inbound messages and
// voice answer URL fetches. Every request must carry a valid
// X-Plivo-Signature-V3 over the public URL and the POST form, and a nonce
// not seen before.
type Callbacks struct {
	AuthToken string
	// PublicURL ("https://auth.example.com") is the scheme and host Plivo
	// calls, when a proxy in front changes them. Without it the request's
	// own Host is used, https only when the connection is TLS.
	PublicURL string
	// Secret returns the server secret voice codes are sealed with (the
	// Sender's Config.Secret); without it ServeVoice refuses every call.
	Secret func() []byte
	// Seen records a nonce and reports whether it was new. Required: keep
	// nonces at least as long as Plivo may retry a callback (a day is
	// ample). Voice answer tokens are recorded through it too, prefixed
	// "voice-answer:", so that each is used once.
	Seen func(ctx context.Context, nonce string) (first bool, err error)
	// Forget drops a nonce whose request failed, so Plivo's redelivery is
	// accepted; optional.
	Forget func(ctx context.Context, nonce string)
	// OnStatus receives parsed status callbacks; optional.
	OnStatus func(ctx context.Context, s Status)
	// OnInbound receives STOP (optOut true) and START (optOut false)
	// keywords from the number from (E.164). An error makes the answer 503.
	OnInbound func(ctx context.Context, from string, optOut bool) error
	Logger    *zap.Logger
}

// Keywords, compared after trimming and upper-casing the whole text.
var (
	optOutWords = map[string]bool{"STOP": true, "STOPALL": true, "UNSUBSCRIBE": true, "CANCEL": true, "END": true, "QUIT": true}
	optInWords  = map[string]bool{"START": true, "UNSTOP": true, "YES": true}
)

// ServeStatus handles a message status callback: 200 once verified and
// parsed.
func (c *Callbacks) ServeStatus(w http.ResponseWriter, r *http.Request) {
	form, ok := c.verify(w, r)
	if !ok {
		return
	}
	s := Status{
		MessageUUID: form.Get("MessageUUID"),
		Status:      strings.ToLower(form.Get("Status")),
		ErrorCode:   form.Get("ErrorCode"),
		To:          e164(form.Get("To")),
	}
	level := zap.DebugLevel
	if s.Status == "failed" || s.Status == "undelivered" || s.Status == "rejected" {
		level = zap.WarnLevel
	}
	c.logger().Log(level, "plivo: message status",
		zap.String("message_id", s.MessageUUID), zap.String("status", s.Status),
		zap.String("error_code", s.ErrorCode), zap.String("to", sender.MaskTail(s.To)))
	if c.OnStatus != nil {
		c.OnStatus(r.Context(), s)
	}
	w.WriteHeader(http.StatusOK)
}

// ServeInbound handles an inbound message: STOP-like keywords opt the
// sender out, START-like ones opt it back in, anything else is ignored.
// It answers an empty Plivo XML response (no reply is sent).
func (c *Callbacks) ServeInbound(w http.ResponseWriter, r *http.Request) {
	form, ok := c.verify(w, r)
	if !ok {
		return
	}
	from := e164(form.Get("From"))
	word := strings.ToUpper(strings.TrimSpace(form.Get("Text")))
	optOut, optIn := optOutWords[word], optInWords[word]
	if (optOut || optIn) && c.OnInbound != nil {
		if from == "" {
			apierr.Write(w, r, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "From is missing."))
			return
		}
		if err := c.OnInbound(r.Context(), from, optOut); err != nil {
			c.logger().Error("plivo: inbound keyword not recorded",
				zap.String("from", sender.MaskTail(from)), zap.Bool("opt_out", optOut), zap.Error(err))
			// Plivo delivers again after a failure; the nonce must not
			// make that redelivery look like a replay, or the STOP is lost.
			if c.Forget != nil {
				c.Forget(context.WithoutCancel(r.Context()), r.Header.Get("X-Plivo-Signature-V3-Nonce"))
			}
			apierr.Write(w, r, apierr.New(http.StatusServiceUnavailable, apierr.StoreUnavailable, "Try again later."))
			return
		}
		c.logger().Info("plivo: inbound keyword",
			zap.String("from", sender.MaskTail(from)), zap.Bool("opt_out", optOut))
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("<Response></Response>"))
}

// verify reads the form and checks method, size, signature and nonce. On
// failure it has answered and returns false.
func (c *Callbacks) verify(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		apierr.Write(w, r, apierr.New(http.StatusMethodNotAllowed, apierr.MethodNotAllowed, "Use POST."))
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxCallbackBody)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			apierr.Write(w, r, apierr.New(http.StatusRequestEntityTooLarge, apierr.RequestTooLarge, "Callback body too large."))
		} else {
			apierr.Write(w, r, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "Malformed form body."))
		}
		return nil, false
	}
	refuse := func(reason string) (url.Values, bool) {
		c.logger().Warn("plivo: callback refused", zap.String("reason", reason), zap.String("path", r.URL.Path))
		apierr.Write(w, r, apierr.New(http.StatusForbidden, apierr.InvalidSignature, "Invalid Plivo signature."))
		return nil, false
	}
	sig := r.Header.Get("X-Plivo-Signature-V3")
	nonce := r.Header.Get("X-Plivo-Signature-V3-Nonce")
	if c.AuthToken == "" {
		return refuse("no auth token configured")
	}
	if sig == "" || nonce == "" {
		return refuse("missing signature")
	}
	params := make(map[string]string, len(r.PostForm))
	for k, vs := range r.PostForm {
		if len(vs) != 1 {
			// Plivo signs one value per name; a second one is forged.
			return refuse("repeated parameter")
		}
		params[k] = vs[0]
	}
	target := c.publicURL(r)
	if _, err := url.Parse(target); err != nil {
		return refuse("unparsable url") // plivo-go panics on it
	}
	want := plivogo.ComputeSignatureV3(c.AuthToken, target, http.MethodPost, nonce, params)
	if !anyEqual(sig, want) {
		return refuse("bad signature")
	}
	if c.Seen == nil {
		c.logger().Error("plivo: callbacks have no nonce store; refusing")
		apierr.Write(w, r, apierr.New(http.StatusInternalServerError, apierr.UnexpectedFailure, "Unexpected failure."))
		return nil, false
	}
	first, err := c.Seen(r.Context(), nonce)
	if err != nil {
		c.logger().Error("plivo: nonce not recorded", zap.Error(err))
		apierr.Write(w, r, apierr.New(http.StatusServiceUnavailable, apierr.StoreUnavailable, "Try again later."))
		return nil, false
	}
	if !first {
		return refuse("replayed nonce")
	}
	return r.PostForm, true
}

// publicURL is the URL Plivo signed: PublicURL or the request's own scheme
// and host, plus the request URI. X-Forwarded-Proto is not trusted.
func (c *Callbacks) publicURL(r *http.Request) string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/") + r.URL.RequestURI()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

// anyEqual compares want with each comma-separated signature in constant
// time (Plivo sends several while an auth token is being rotated).
func anyEqual(header, want string) bool {
	ok := false
	for _, s := range strings.Split(header, ",") {
		if hmac.Equal([]byte(strings.TrimSpace(s)), []byte(want)) {
			ok = true
		}
	}
	return ok
}

// e164 turns Plivo's "14155550100" into "+14155550100"; "" if not a number.
func e164(n string) string {
	n = strings.TrimSpace(n)
	if n == "" {
		return ""
	}
	if d, ok := plivoNumber("+" + strings.TrimPrefix(n, "+")); ok {
		return "+" + d
	}
	return ""
}

func (c *Callbacks) logger() *zap.Logger {
	if c.Logger == nil {
		return zap.NewNop()
	}
	return c.Logger
}
