package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/phone"
	"github.com/otpgate/otpgate/module/sender"
	"github.com/otpgate/otpgate/module/store"
)

// maxMetadata bounds user metadata sent with a code request.
const maxMetadata = 4 << 10

// sendRequest is the body of POST /otp and POST /resend. The extra
// Supabase fields (code_challenge...) are accepted for auth-js
// compatibility and ignored: phone OTP has no PKCE step.
type sendRequest struct {
	Phone               string          `json:"phone"`
	CreateUser          *bool           `json:"create_user"`
	Data                json.RawMessage `json:"data"`
	Channel             string          `json:"channel"`
	Type                string          `json:"type"` // resend only
	CaptchaToken        string          `json:"captcha_token"`
	GotrueMetaSecurity  *metaSecurity   `json:"gotrue_meta_security"`
	CodeChallenge       string          `json:"code_challenge"`
	CodeChallengeMethod string          `json:"code_challenge_method"`
	// Language picks the message text (Config.MessageTemplates); the
	// login page sends its own language.
	Language string `json:"language"`

	// change, set by PUT /user (never from a body), makes the code that of
	// a phone change to Phone.
	change *changeRequest
}

// metaSecurity is GoTrue's gotrue_meta_security. gotrue-dart up to 2.22
// spells its captcha token captchaToken in verifyOTP.
type metaSecurity struct {
	CaptchaToken      string `json:"captcha_token"`
	CaptchaTokenCamel string `json:"captchaToken"`
}

// token is the captcha token in either spelling.
func (m *metaSecurity) token() string {
	if m == nil {
		return ""
	}
	if m.CaptchaToken != "" {
		return m.CaptchaToken
	}
	return m.CaptchaTokenCamel
}

type sendResponse struct {
	MessageID   string `json:"message_id"`
	MaskedPhone string `json:"masked_phone"`
	Channel     string `json:"channel"`
	ExpiresIn   int64  `json:"expires_in"`
	ResendAfter int64  `json:"resend_after"`
}

func (g *Gateway) serveSend(w http.ResponseWriter, r *http.Request, clientIP string, resend bool) error {
	if err := g.ipRefusedHere(r.Context(), clientIP, resend); err != nil {
		return err // before the body is even read: the cheapest refusal under a flood
	}
	var req sendRequest
	if err := decodeBody(r, &req); err != nil {
		g.cfg.Metrics.refusal(serverOf(r.Context()), apierr.As(err).Code)
		return err
	}
	res, err := g.Send(r.Context(), req, clientIP, resend)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// Send runs one send or resend: validation first (nothing is counted for
// a bad request), then captcha, the client's IP limit, the phone's
// checks in one store call, and finally the provider. An address or phone
// the store has refused is refused here until the Retry-After it gave,
// without asking the store again (the address before anything else).
func (g *Gateway) Send(ctx context.Context, req sendRequest, clientIP string, resend bool) (sendResponse, error) {
	start := g.now()
	op := sendOp(resend)
	if err := g.ipRefusedHere(ctx, clientIP, resend); err != nil {
		return sendResponse{}, err
	}
	num, channel, meta, err := g.validateSend(req, resend)
	if err != nil {
		g.cfg.Metrics.refusal(serverOf(ctx), apierr.As(err).Code)
		g.logSend(ctx, op, num, clientIP, apierr.As(err).Code, "", channel)
		return sendResponse{}, err
	}
	// a phone change comes from a signed-in user (GoTrue asks no captcha)
	if g.cfg.Captcha != nil && req.change == nil {
		token := req.CaptchaToken
		if token == "" {
			token = req.GotrueMetaSecurity.token()
		}
		if err := g.cfg.Captcha.Verify(ctx, token, clientIP); err != nil {
			g.cfg.Metrics.refusal(serverOf(ctx), apierr.CaptchaFailed)
			g.logSend(ctx, op, num, clientIP, apierr.CaptchaFailed, "", channel)
			return sendResponse{}, apierr.Wrap(http.StatusBadRequest, apierr.CaptchaFailed, "Captcha verification failed.", err)
		}
	}
	dec, err := g.cfg.Store.Hit(ctx, "ip:"+ipLimitKey(clientIP), g.cfg.IPLimit.N, g.cfg.IPLimit.Window, start)
	if err != nil {
		return sendResponse{}, storeError(err)
	}
	if !dec.Allowed {
		g.refused.note(ipRefusalKey(clientIP), start.Add(dec.RetryAfter), false, start)
		g.cfg.Metrics.refusal(serverOf(ctx), apierr.OverRequestLimit)
		g.logSend(ctx, op, num, clientIP, apierr.OverRequestLimit, "", channel)
		return sendResponse{}, errIPLimit(dec.RetryAfter)
	}

	testCode, isTest := g.cfg.TestPhones[num.E164]
	code := testCode
	if !isTest {
		if code, err = newCode(g.cfg.CodeLength); err != nil {
			return sendResponse{}, apierr.Wrap(http.StatusInternalServerError, apierr.UnexpectedFailure, "Could not create a code.", err)
		}
	}
	createUser, origin := g.signupPolicy(num.E164, req.CreateUser)
	var change changeRequest
	if req.change != nil {
		createUser, origin, change = false, "", *req.change
	}
	challengeID := uuid.NewString()
	uk := g.userKey(num.E164)
	if left, f := g.refused.check(phoneRefusalKey(uk), start); left > 0 {
		g.cfg.Metrics.refusal(serverOf(ctx), apierr.OverSMSSendLimit)
		g.logRefusedHere(ctx, op, num, clientIP, apierr.OverSMSSendLimit+"_"+phoneRefusalOutcome(f.limited))
		return sendResponse{}, errPhoneLimit(f.limited, left)
	}
	keep := g.cfg.CodeTTL + time.Hour
	begin, err := g.cfg.Store.BeginSend(ctx, store.SendRequest{
		User: uk,
		Now:  start,
		Challenge: store.Challenge{
			ID:         challengeID,
			CodeMAC:    g.codeMAC(challengeID, num.E164, code),
			Phone:      num.E164,
			Channel:    channel,
			CreateUser: createUser,
			Origin:     origin,
			Metadata:   meta,
			SentAt:     start,
			ExpiresAt:  start.Add(g.cfg.CodeTTL),
			ChangeOf:   change.UserID,
			ChangeFrom: change.From,
		},
		Keep:       keep,
		PhoneLimit: g.cfg.PhoneLimit,
		Cooldown:   g.cfg.ResendAfter,
		// a resend needs a pending challenge, which only a send that passed
		// the user check (or was allowed to create the user) leaves behind
		// (a phone change wants the phone free instead: SendTaken)
		RequireUser: !createUser && !resend && req.change == nil,
		Resend:      resend,
		ListedOK:    g.listedOK(num.E164),
		// test phones send nothing: no cooldown, no per-phone limit
		Unlimited: isTest,
	})
	if err != nil {
		return sendResponse{}, storeError(err)
	}
	switch begin.Status {
	case store.SendOptedOut:
		g.cfg.Metrics.refusal(serverOf(ctx), apierr.PhoneOptedOut)
		g.logSend(ctx, op, num, clientIP, apierr.PhoneOptedOut, "", channel)
		return sendResponse{}, apierr.New(http.StatusForbidden, apierr.PhoneOptedOut,
			"This number has opted out of messages (it sent STOP). Text START to the sender to receive codes again.")
	case store.SendCooldown, store.SendPhoneLimited:
		limited := begin.Status == store.SendPhoneLimited
		g.refused.note(phoneRefusalKey(uk), start.Add(begin.RetryAfter), limited, start)
		g.cfg.Metrics.refusal(serverOf(ctx), apierr.OverSMSSendLimit)
		g.logSend(ctx, op, num, clientIP, apierr.OverSMSSendLimit+"_"+begin.Status.String(), "", channel)
		return sendResponse{}, errPhoneLimit(limited, begin.RetryAfter)
	case store.SendUnknownUser, store.SendNoChallenge, store.SendBanned, store.SendLocked, store.SendTaken:
		// Answer exactly like a real send, after a typical provider
		// delay, so that whether a phone has an account (or is banned,
		// or locked out after failed codes, or is another user's, for a
		// phone change) stays unknown; nothing is sent, so a lockout
		// costs nothing and reaches nobody.
		g.cfg.Sleep(ctx, g.typicalSendLatency())
		if channel == "" {
			channel = sender.SMS // what a real resend of an SMS code answers
		}
		g.cfg.Metrics.send(serverOf(ctx), channel, num.Region, "suppressed")
		g.logSend(ctx, op, num, clientIP, "suppressed_"+begin.Status.String(), "", channel)
		return g.sendResponse(uuid.NewString(), num, channel), nil
	}
	if begin.Challenge.Channel != "" {
		channel = begin.Challenge.Channel
	}
	if isTest {
		g.logSend(ctx, op, num, clientIP, "test_phone", "", channel)
		return g.sendResponse(uuid.NewString(), num, channel), nil
	}
	if !g.cfg.Sender.Supports(channel) {
		_ = g.cfg.Store.AbortSend(context.WithoutCancel(ctx), uk, challengeID)
		return sendResponse{}, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "Channel "+channel+" is not configured.")
	}
	// The call outlives a client that hangs up: the message may be on its
	// way, so the send must keep counting against the phone's limits. The
	// sender bounds the call with its own timeout.
	sent := g.now()
	msg := sender.Message{To: num.E164, Channel: channel, Code: code, App: g.cfg.AppName, TTL: g.cfg.CodeTTL}
	msg.Text = g.messageText(req.Language, msg)
	out, err := g.cfg.Sender.Send(context.WithoutCancel(ctx), msg)
	latency := g.now().Sub(sent)
	g.cfg.Metrics.providerLatency(serverOf(ctx), channel, latency, err)
	if err != nil {
		e := providerError(err)
		// A definite refusal means the code never left: forget it and give
		// the quota back, so a provider outage does not lock people out for
		// the cooldown. After a timeout the message may still arrive, so
		// the send keeps counting.
		if e.Code == apierr.SMSSendFailed {
			g.refused.forget(phoneRefusalKey(uk))
			if aerr := g.cfg.Store.AbortSend(context.WithoutCancel(ctx), uk, challengeID); aerr != nil {
				g.logFor(ctx).Warn("abort send", zap.Error(aerr))
			}
		}
		g.cfg.Metrics.send(serverOf(ctx), channel, num.Region, e.Code)
		g.cfg.Metrics.refusal(serverOf(ctx), e.Code)
		g.logSend(ctx, op, num, clientIP, e.Code, "", channel, zap.NamedError("provider_error", err))
		return sendResponse{}, e
	}
	g.observeSendLatency(latency)
	g.cfg.Metrics.send(serverOf(ctx), channel, num.Region, "sent")
	g.logSend(ctx, op, num, clientIP, "sent", out.MessageID, channel)
	return g.sendResponse(out.MessageID, num, channel), nil
}

func sendOp(resend bool) string {
	if resend {
		return "resend"
	}
	return "send"
}

// ipRefusedHere refuses a send from an address the store said is over its
// limit, until the Retry-After it gave, without asking it again.
func (g *Gateway) ipRefusedHere(ctx context.Context, clientIP string, resend bool) error {
	left, _ := g.refused.check(ipRefusalKey(clientIP), g.now())
	if left <= 0 {
		return nil
	}
	g.cfg.Metrics.refusal(serverOf(ctx), apierr.OverRequestLimit)
	g.logRefusedHere(ctx, sendOp(resend), phone.Number{}, clientIP, apierr.OverRequestLimit)
	return errIPLimit(left)
}

// logRefusedHere logs a refusal repeated from the store's, at debug level:
// the store's own refusal was logged, and a flood must not flood the log
// (the refusals metric counts every one).
func (g *Gateway) logRefusedHere(ctx context.Context, op string, num phone.Number, clientIP, outcome string) {
	if ce := g.logFor(ctx).Check(zap.DebugLevel, op); ce != nil {
		ce.Write(zap.String("phone", maskedOrEmpty(num)), zap.String("client_ip", clientIP), zap.String("outcome", outcome+"_here"))
	}
}

func ipRefusalKey(clientIP string) string { return "ip:" + ipLimitKey(clientIP) }

func phoneRefusalKey(uk store.UserKey) string { return "phone:" + string(uk) }

func phoneRefusalOutcome(limited bool) string {
	if limited {
		return store.SendPhoneLimited.String()
	}
	return store.SendCooldown.String()
}

func errIPLimit(retry time.Duration) error {
	return &apierr.Error{Status: http.StatusTooManyRequests, Code: apierr.OverRequestLimit,
		Msg: "Too many code requests from this network. Try again later.", RetryAfter: retry}
}

func errPhoneLimit(limited bool, retry time.Duration) error {
	msg := fmt.Sprintf("For security purposes, you can request a new code after %d seconds.", ceilSeconds(retry))
	if limited {
		msg = fmt.Sprintf("Too many codes were sent to this number. Try again in %d seconds.", ceilSeconds(retry))
	}
	return &apierr.Error{Status: http.StatusTooManyRequests, Code: apierr.OverSMSSendLimit, Msg: msg, RetryAfter: retry}
}

func (g *Gateway) sendResponse(id string, num phone.Number, channel string) sendResponse {
	return sendResponse{
		MessageID:   id,
		MaskedPhone: num.Masked(),
		Channel:     channel,
		ExpiresIn:   int64(g.cfg.CodeTTL / time.Second),
		ResendAfter: int64(g.cfg.ResendAfter / time.Second),
	}
}

// validateSend checks everything that needs no state. A request that
// fails here touches no limit and reaches no provider.
func (g *Gateway) validateSend(req sendRequest, resend bool) (num phone.Number, channel string, meta []byte, err error) {
	if resend {
		switch req.Type {
		case "", "sms", "whatsapp", "voice", "phone_change":
		default:
			return num, "", nil, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, `type must be "sms", "whatsapp" or "voice".`)
		}
		// auth-js always sends type "sms" for phone resends, so only an
		// explicit "whatsapp" or "voice" overrides the channel of the
		// first send
		if req.Channel == "" && (req.Type == "whatsapp" || req.Type == "voice") {
			req.Channel = req.Type
		}
	}
	if strings.TrimSpace(req.Phone) == "" {
		return num, "", nil, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "phone is required.")
	}
	num, err = parsePhone(req.Phone)
	if err != nil {
		return num, "", nil, phoneError(err)
	}
	if err := g.cfg.Policy.Allow(num); err != nil {
		return num, "", nil, phoneError(err)
	}
	channel = req.Channel
	switch channel {
	case "":
		if !resend {
			channel = sender.SMS
		}
	case sender.SMS, sender.WhatsApp, sender.Voice:
	default:
		return num, "", nil, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, `channel must be "sms", "whatsapp" or "voice".`)
	}
	if channel != "" && !g.cfg.Sender.Supports(channel) {
		return num, "", nil, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "Channel "+channel+" is not configured on this server.")
	}
	if len(req.Data) > 0 && string(req.Data) != "null" {
		if len(req.Data) > maxMetadata {
			return num, "", nil, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "data must be at most 4 KiB.")
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(req.Data, &obj) != nil {
			return num, "", nil, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "data must be a JSON object.")
		}
		if len(obj) > 0 {
			meta = req.Data
		}
	}
	return num, channel, meta, nil
}

func phoneError(err error) error {
	if errors.Is(err, phone.ErrNotAllowed) {
		return apierr.Wrap(http.StatusForbidden, apierr.PhoneNotAllowed, "Codes cannot be sent to this number.", err)
	}
	return apierr.Wrap(http.StatusBadRequest, apierr.ValidationFailed,
		"phone must be a valid number in E.164 format, country code first, e.g. +14155550100 (the '+' may be left out).", err)
}

func providerError(err error) *apierr.Error {
	switch {
	case errors.Is(err, sender.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return apierr.Wrap(http.StatusGatewayTimeout, apierr.ProviderTimeout, "The SMS provider did not answer in time. Try again in a moment.", err)
	case errors.Is(err, sender.ErrChannel):
		return apierr.Wrap(http.StatusBadRequest, apierr.ValidationFailed, "This channel is not configured on this server.", err)
	}
	return apierr.Wrap(http.StatusBadGateway, apierr.SMSSendFailed, "The code could not be sent. Try again in a moment.", err)
}

func storeError(err error) error {
	if errors.Is(err, store.ErrInvalid) {
		// a request no correct caller makes: a bug here, not an outage
		return apierr.Wrap(http.StatusInternalServerError, apierr.UnexpectedFailure, "Unexpected failure.", err)
	}
	return apierr.Wrap(http.StatusServiceUnavailable, apierr.StoreUnavailable, "The service is temporarily unavailable. Try again in a moment.", err)
}

// newCode draws length uniform decimal digits from crypto/rand;
// rand.Int rejects out-of-range samples, so there is no modulo bias.
func newCode(length int) (string, error) {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(length)), nil)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%0*s", length, n.String()), nil
}

// ipLimitKey is the client's address for the per-IP limit; IPv6 clients
// are counted per /64, the smallest block a subscriber usually gets.
func ipLimitKey(clientIP string) string {
	addr, err := netip.ParseAddr(clientIP)
	if err != nil || !addr.Is6() || addr.Is4In6() {
		return clientIP
	}
	p, err := addr.Prefix(64)
	if err != nil {
		return clientIP
	}
	return p.String()
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// typicalSendLatency is a moving average of real provider calls, with
// jitter so that the suppressed path has the same spread.
func (g *Gateway) typicalSendLatency() time.Duration {
	base := time.Duration(g.sendEWMA.Load())
	j, err := rand.Int(rand.Reader, big.NewInt(int64(base/5)+1))
	if err != nil {
		return base
	}
	return base - base/10 + time.Duration(j.Int64())
}

func (g *Gateway) observeSendLatency(d time.Duration) {
	if d <= 0 || d > time.Minute {
		return
	}
	old := g.sendEWMA.Load()
	g.sendEWMA.Store(old + (int64(d)-old)/8)
}

func (g *Gateway) logSend(ctx context.Context, op string, num phone.Number, clientIP, outcome, messageID, channel string, extra ...zap.Field) {
	fields := append([]zap.Field{
		zap.String("phone", maskedOrEmpty(num)),
		zap.String("country", num.Region),
		zap.String("client_ip", clientIP),
		zap.String("channel", channel),
		zap.String("outcome", outcome),
	}, extra...)
	if messageID != "" {
		fields = append(fields, zap.String("message_id", messageID))
	}
	g.logFor(ctx).Info(op, fields...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"code":500,"error_code":"unexpected_failure","msg":"Unexpected failure."}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func maskedOrEmpty(num phone.Number) string {
	if num.E164 == "" {
		return ""
	}
	return num.Masked()
}
