package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
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
	ctx, op := r.Context(), sendOp(resend)
	// before the body is even read: the cheapest refusal under a flood
	if res, refused := g.ipRefusedHere(clientIP); refused {
		_, err := g.finishSend(ctx, op, clientIP, res)
		return err
	}
	var req sendRequest
	if err := decodeBody(r, &req); err != nil {
		_, err := g.finishSend(ctx, op, clientIP, sendResult{err: apierr.As(err)})
		return err
	}
	res, err := g.finishSend(ctx, op, clientIP, g.send(ctx, req, clientIP, resend))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// sendResult is how one send or resend ended. finishSend is the one place
// that turns it into the metrics, the log line and the answer, so no way
// out of a send can skip one of them.
type sendResult struct {
	num     phone.Number // "" before the phone was read
	channel string
	resp    sendResponse  // the answer, when err is nil
	err     *apierr.Error // the refusal
	// outcome is the log line's (a refusal's error code when empty).
	outcome string
	// delivery is sends_total's outcome when a message was sent, tried
	// or feigned: "sent", "suppressed" or a provider error code.
	delivery  string
	messageID string
	// here marks a refusal repeated from the store's until its
	// Retry-After: the store's own refusal was logged, and a flood must
	// not flood the log, so it is logged at debug level (the refusals
	// metric counts every one).
	here   bool
	fields []zap.Field
}

// refusedSend is a send refused with err.
func refusedSend(num phone.Number, channel string, err error) sendResult {
	return sendResult{num: num, channel: channel, err: apierr.As(err)}
}

// Send runs one send or resend: validation first (nothing is counted for
// a bad request), then captcha, the client's IP limit, the phone's
// checks in one store call, and finally the provider. An address or phone
// the store has refused is refused here until the Retry-After it gave,
// without asking the store again (the address before anything else).
func (g *Gateway) Send(ctx context.Context, req sendRequest, clientIP string, resend bool) (sendResponse, error) {
	if res, refused := g.ipRefusedHere(clientIP); refused {
		return g.finishSend(ctx, sendOp(resend), clientIP, res)
	}
	return g.finishSend(ctx, sendOp(resend), clientIP, g.send(ctx, req, clientIP, resend))
}

// finishSend counts, logs and answers a send's result.
func (g *Gateway) finishSend(ctx context.Context, op, clientIP string, res sendResult) (sendResponse, error) {
	m, server := g.metrics(), serverOf(ctx)
	if res.delivery != "" {
		m.send(server, res.channel, res.num.Region, res.delivery)
	}
	outcome := res.outcome
	if res.err != nil {
		m.refusal(server, res.err.Code)
		if outcome == "" {
			outcome = res.err.Code
		}
	}
	level := zap.InfoLevel
	if res.here {
		level, outcome = zap.DebugLevel, outcome+"_here"
	}
	if ce := g.logFor(ctx).Check(level, op); ce != nil {
		fields := append([]zap.Field{
			zap.String("phone", maskedOrEmpty(res.num)),
			zap.String("country", res.num.Region),
			zap.String("client_ip", clientIP),
			zap.String("channel", res.channel),
			zap.String("outcome", outcome),
		}, res.fields...)
		if res.messageID != "" {
			fields = append(fields, zap.String("message_id", res.messageID))
		}
		ce.Write(fields...)
	}
	if res.err != nil {
		return sendResponse{}, res.err
	}
	return res.resp, nil
}

// send runs a send whose address was not refused here (ipRefusedHere,
// which serveSend asks before reading the body).
func (g *Gateway) send(ctx context.Context, req sendRequest, clientIP string, resend bool) sendResult {
	start := g.now()
	num, channel, meta, err := g.validateSend(req, resend)
	if err != nil {
		return refusedSend(num, channel, err)
	}
	// a phone change comes from a signed-in user (GoTrue asks no captcha)
	if g.cfg.Captcha != nil && req.change == nil {
		token := req.CaptchaToken
		if token == "" {
			token = req.GotrueMetaSecurity.token()
		}
		if err := g.cfg.Captcha.Verify(ctx, token, clientIP); err != nil {
			return refusedSend(num, channel, apierr.Wrap(http.StatusBadRequest, apierr.CaptchaFailed, "Captcha verification failed.", err))
		}
	}
	dec, err := g.cfg.Store.Hit(ctx, "ip:"+ipLimitKey(clientIP), g.cfg.IPLimit.N, g.cfg.IPLimit.Window, start)
	if err != nil {
		return refusedSend(num, channel, storeError(err))
	}
	if !dec.Allowed {
		g.refused.note(ipRefusalKey(clientIP), start.Add(dec.RetryAfter), false, start)
		return refusedSend(num, channel, errIPLimit(dec.RetryAfter))
	}

	testCode, isTest := g.cfg.TestPhones[num.E164]
	code := testCode
	if !isTest {
		if code, err = newCode(g.cfg.CodeLength); err != nil {
			return refusedSend(num, channel, apierr.Wrap(http.StatusInternalServerError, apierr.UnexpectedFailure, "Could not create a code.", err))
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
		res := refusedSend(num, channel, errPhoneLimit(f.limited, left))
		res.outcome, res.here = apierr.OverSMSSendLimit+"_"+phoneRefusalOutcome(f.limited), true
		return res
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
		return refusedSend(num, channel, storeError(err))
	}
	switch begin.Status {
	case store.SendOptedOut:
		return refusedSend(num, channel, apierr.New(http.StatusForbidden, apierr.PhoneOptedOut,
			"This number has opted out of messages (it sent STOP). Text START to the sender to receive codes again."))
	case store.SendCooldown, store.SendPhoneLimited:
		limited := begin.Status == store.SendPhoneLimited
		g.refused.note(phoneRefusalKey(uk), start.Add(begin.RetryAfter), limited, start)
		res := refusedSend(num, channel, errPhoneLimit(limited, begin.RetryAfter))
		res.outcome = apierr.OverSMSSendLimit + "_" + begin.Status.String()
		return res
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
		return sendResult{num: num, channel: channel, resp: g.sendResponse(uuid.NewString(), num, channel),
			outcome: "suppressed_" + begin.Status.String(), delivery: "suppressed"}
	}
	if begin.Challenge.Channel != "" {
		channel = begin.Challenge.Channel
	}
	if isTest {
		return sendResult{num: num, channel: channel, resp: g.sendResponse(uuid.NewString(), num, channel), outcome: "test_phone"}
	}
	if !g.cfg.Sender.Supports(channel) {
		// a resend of a code first sent on a channel no longer configured
		_ = g.cfg.Store.AbortSend(context.WithoutCancel(ctx), uk, challengeID)
		return refusedSend(num, channel, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "Channel "+channel+" is not configured."))
	}
	// The call outlives a client that hangs up: the message may be on its
	// way, so the send must keep counting against the phone's limits. The
	// sender bounds the call with its own timeout.
	sent := g.now()
	msg := sender.Message{To: num.E164, Channel: channel, Code: code, App: g.cfg.AppName, TTL: g.cfg.CodeTTL}
	msg.Text = g.messageText(req.Language, msg)
	out, err := g.cfg.Sender.Send(context.WithoutCancel(ctx), msg)
	latency := g.now().Sub(sent)
	g.metrics().providerLatency(serverOf(ctx), channel, latency, err)
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
		res := refusedSend(num, channel, e)
		res.delivery, res.fields = e.Code, []zap.Field{zap.NamedError("provider_error", err)}
		return res
	}
	g.observeSendLatency(latency)
	return sendResult{num: num, channel: channel, resp: g.sendResponse(out.MessageID, num, channel),
		outcome: "sent", delivery: "sent", messageID: out.MessageID}
}

func sendOp(resend bool) string {
	if resend {
		return "resend"
	}
	return "send"
}

// ipRefusedHere refuses a send from an address the store said is over its
// limit, until the Retry-After it gave, without asking it again.
func (g *Gateway) ipRefusedHere(clientIP string) (sendResult, bool) {
	left, _ := g.refused.check(ipRefusalKey(clientIP), g.now())
	if left <= 0 {
		return sendResult{}, false
	}
	res := refusedSend(phone.Number{}, "", errIPLimit(left))
	res.here = true
	return res, true
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

func maskedOrEmpty(num phone.Number) string {
	if num.E164 == "" {
		return ""
	}
	return num.Masked()
}
