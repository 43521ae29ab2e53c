package gateway

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"net/http"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/phone"
	"github.com/otpgate/otpgate/module/store"
)

// verifyRequest is the body of POST /verify.
type verifyRequest struct {
	Type       string `json:"type"`
	Phone      string `json:"phone"`
	Token      string `json:"token"`
	RedirectTo string `json:"redirect_to"`
	// auth-js sends its whole parameter object, options included; the
	// captcha token in it is not needed for verify, so it is ignored.
	Options            json.RawMessage `json:"options"`
	GotrueMetaSecurity *metaSecurity   `json:"gotrue_meta_security"`
}

// errOTP is the one answer for a wrong, expired, used or unknown code:
// telling them apart would help a guesser.
func errOTP() *apierr.Error {
	return apierr.New(http.StatusForbidden, apierr.OTPExpired, "Token has expired or is invalid.")
}

func (g *Gateway) serveVerify(w http.ResponseWriter, r *http.Request, clientIP string) error {
	var req verifyRequest
	if err := decodeBody(r, &req); err != nil {
		_, err := g.finishVerify(r.Context(), clientIP, verifyResult{err: apierr.As(err)})
		return err
	}
	out, err := g.finishVerify(r.Context(), clientIP, g.verify(r.Context(), req, actorOf(r, clientIP, "user")))
	if err != nil {
		return err
	}
	g.setSessionCookies(w, out.AccessToken, out.RefreshToken)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Verify checks a code and starts a session: one store call records the
// attempt (as a failure) and returns the challenge, the MAC is compared
// here in constant time, and for a right code a second call consumes it
// (creating the user and session atomically, and taking the failure
// back). A wrong code costs one round trip.
func (g *Gateway) Verify(ctx context.Context, req verifyRequest, clientIP string) (tokenResponse, error) {
	return g.finishVerify(ctx, clientIP, g.verify(ctx, req, Actor{Kind: "user", IP: clientIP}))
}

// verifyResult is how one verify ended. finishVerify is the one place
// that turns it into the metrics, the log line and the answer.
type verifyResult struct {
	num phone.Number // "" before the phone was read
	out tokenResponse
	err *apierr.Error
	// outcome is verifies_total's and the log line's ("ok",
	// "wrong_code", …; a refusal's error code when empty).
	outcome string
	fields  []zap.Field
}

// otpRefused is the one answer for a code that does not start a session
// (errOTP), with why for the metric and the log.
func otpRefused(num phone.Number, why string) verifyResult {
	return verifyResult{num: num, err: errOTP(), outcome: why}
}

func verifyRefused(num phone.Number, err error) verifyResult {
	return verifyResult{num: num, err: apierr.As(err)}
}

func (g *Gateway) finishVerify(ctx context.Context, clientIP string, res verifyResult) (tokenResponse, error) {
	m, server := g.metrics(), serverOf(ctx)
	outcome := res.outcome
	if res.err != nil {
		m.refusal(server, res.err.Code)
		if outcome == "" {
			outcome = res.err.Code
		}
	}
	m.verify(server, outcome)
	g.logFor(ctx).Info("verify", append([]zap.Field{
		zap.String("phone", maskedOrEmpty(res.num)),
		zap.String("country", res.num.Region),
		zap.String("client_ip", clientIP),
		zap.String("outcome", outcome),
	}, res.fields...)...)
	if res.err != nil {
		return tokenResponse{}, res.err
	}
	return res.out, nil
}

func (g *Gateway) verify(ctx context.Context, req verifyRequest, actor Actor) verifyResult {
	switch req.Type {
	case "sms", "whatsapp", "voice", "phone_change":
	default:
		return verifyRefused(phone.Number{}, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, `type must be "sms", "whatsapp", "voice" or "phone_change".`))
	}
	num, err := parsePhone(req.Phone)
	if err != nil {
		return verifyRefused(phone.Number{}, phoneError(err))
	}
	if !isDigits(req.Token) || len(req.Token) < MinCodeLength || len(req.Token) > MaxCodeLength {
		return verifyRefused(num, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "token must be the digits of the code."))
	}
	now := g.now()
	uk := g.userKey(num.E164)
	// The attempt is counted (as a failure, until the consume takes it
	// back) before the code is compared: a store that cannot count it
	// answers an error, and no code is judged, right or wrong.
	att, err := g.cfg.Store.Attempt(ctx, store.AttemptRequest{
		User:        uk,
		Now:         now,
		MaxAttempts: g.cfg.MaxAttempts,
		Lockout:     g.lockout(),
	})
	if err != nil {
		return verifyRefused(num, storeError(err))
	}
	if att.Status != store.AttemptOK {
		return otpRefused(num, att.Status.String())
	}
	c := att.Challenge
	if !hmac.Equal(c.CodeMAC, g.codeMAC(c.ID, num.E164, req.Token)) {
		outcome := "wrong_code"
		switch {
		case att.Locked > 0:
			outcome = "wrong_code_locked"
			g.log.Warn("verify: phone locked out after failed codes", zap.String("phone", maskedOrEmpty(num)),
				zap.Int("failures", att.Failures), zap.Duration("lock", att.Locked))
		case c.Attempts >= g.cfg.MaxAttempts:
			outcome = "wrong_code_destroyed"
		}
		return otpRefused(num, outcome)
	}
	// a phone change's code completes the change, and only that
	if (req.Type == "phone_change") != (c.ChangeOf != "") {
		return otpRefused(num, "wrong_type")
	}
	if c.ChangeOf != "" {
		return g.verifyChange(ctx, c, uk, actor, now)
	}
	sess, refresh, refreshHash, err := g.newSession(uk, now, actor)
	if err != nil {
		return verifyRefused(num, err)
	}
	res, err := g.cfg.Store.Consume(ctx, store.ConsumeRequest{
		User:        uk,
		ChallengeID: c.ID,
		Now:         now,
		NewUserID:   newUserID(),
		Session:     sess,
		RefreshHash: refreshHash,
		NewUser:     !c.HasUser,
		ListedOK:    g.listedOK(num.E164),
	})
	if err != nil {
		return verifyRefused(num, storeError(err))
	}
	switch res.Status {
	case store.ConsumeOK:
		res.User = g.settle(ctx, uk, res.User)
	case store.ConsumeBanned:
		return otpRefused(num, "banned")
	case store.ConsumeNoUser:
		return otpRefused(num, "not_a_user")
	default:
		return otpRefused(num, "consumed_elsewhere")
	}
	roles, deny := g.admit(res.User, now)
	if deny != "" {
		// the user's access changed between the send and now: the session
		// just made must not outlive this answer
		g.endSessions(ctx, uk, []string{sess.ID}, now)
		return otpRefused(num, deny)
	}
	sess.UserID = res.User.ID
	out, err := g.issue(res.User, sess, refresh, now, roles)
	if err != nil {
		return verifyRefused(num, err)
	}
	g.auditEvent("sign_in", append(auditFields(actor, res.User.ID, sess.ID, num.E164), zap.Bool("user_created", res.Created), zap.Strings("roles", roles))...)
	return verifyResult{num: num, out: out, outcome: "ok", fields: []zap.Field{zap.Bool("user_created", res.Created)}}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

// lockout is the per-phone lock after failed verifies: it grows with each
// lock (15 minutes, then 30, ... up to a day by default), so that someone
// who knows a number cannot keep its owner out for long with a few wrong
// guesses, while guessing stays bounded.
func (g *Gateway) lockout() store.Lockout {
	return store.Lockout{After: g.cfg.FailureLockout, Base: g.cfg.LockoutBase, Max: g.cfg.LockoutMax, Memory: g.cfg.FailureTTL}
}
