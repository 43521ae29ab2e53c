package gateway

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"net/http"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/phone"
	"github.com/otpgate/otpgate/module/session"
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
		return err
	}
	out, err := g.Verify(r.Context(), req, clientIP)
	if err != nil {
		return err
	}
	g.setSessionCookies(w, out.AccessToken, out.RefreshToken)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Verify checks a code and starts a session: one store call reads the
// challenge, the MAC is compared here in constant time, and a second call
// either consumes it (creating the user and session atomically) or
// records the failure.
func (g *Gateway) Verify(ctx context.Context, req verifyRequest, clientIP string) (tokenResponse, error) {
	switch req.Type {
	case "sms", "whatsapp":
	default:
		return tokenResponse{}, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, `type must be "sms" or "whatsapp".`)
	}
	num, err := phone.Parse(req.Phone)
	if err != nil {
		return tokenResponse{}, phoneError(err)
	}
	if !isDigits(req.Token) || len(req.Token) < 6 || len(req.Token) > 10 {
		return tokenResponse{}, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "token must be the digits of the code.")
	}
	now := g.now()
	uk := g.userKey(num.E164)
	c, found, failures, err := g.cfg.Store.Challenge(ctx, uk)
	if err != nil {
		return tokenResponse{}, storeError(err)
	}
	if !found || !now.Before(c.ExpiresAt) || failures >= g.cfg.FailureLockout {
		outcome := "no_challenge"
		switch {
		case failures >= g.cfg.FailureLockout:
			outcome = "locked"
		case found:
			outcome = "expired"
		}
		g.refuseOTP(num, clientIP, outcome)
		return tokenResponse{}, errOTP()
	}
	if !hmac.Equal(c.CodeMAC, g.codeMAC(c.ID, num.E164, req.Token)) {
		res, err := g.cfg.Store.Fail(ctx, uk, c.ID, g.cfg.MaxAttempts, g.cfg.FailureTTL, now)
		if err != nil {
			return tokenResponse{}, storeError(err)
		}
		outcome := "wrong_code"
		if res.Destroyed {
			outcome = "wrong_code_destroyed"
		}
		g.refuseOTP(num, clientIP, outcome)
		return tokenResponse{}, errOTP()
	}
	refresh, refreshHash, err := session.NewRefreshToken(string(uk))
	if err != nil {
		return tokenResponse{}, apierr.Wrap(http.StatusInternalServerError, apierr.UnexpectedFailure, "Could not start a session.", err)
	}
	sess := store.Session{
		ID:        session.NewSessionID(),
		User:      uk,
		CreatedAt: now,
		ExpiresAt: now.Add(g.cfg.RefreshTTL),
	}
	res, err := g.cfg.Store.Consume(ctx, store.ConsumeRequest{
		User:        uk,
		ChallengeID: c.ID,
		Now:         now,
		NewUserID:   uuid.NewString(),
		Session:     sess,
		RefreshHash: refreshHash,
	})
	if err != nil {
		return tokenResponse{}, storeError(err)
	}
	if res.Status != store.ConsumeOK {
		g.refuseOTP(num, clientIP, "consumed_elsewhere")
		return tokenResponse{}, errOTP()
	}
	sess.UserID = res.User.ID
	out, err := g.issue(res.User, sess, refresh, now)
	if err != nil {
		return tokenResponse{}, err
	}
	g.cfg.Metrics.verify("ok")
	g.logVerify(num, clientIP, "ok", zap.Bool("user_created", res.Created))
	return out, nil
}

func (g *Gateway) refuseOTP(num phone.Number, clientIP, outcome string) {
	g.cfg.Metrics.verify(outcome)
	g.cfg.Metrics.refusal(apierr.OTPExpired)
	g.logVerify(num, clientIP, outcome)
}

func (g *Gateway) logVerify(num phone.Number, clientIP, outcome string, extra ...zap.Field) {
	g.log.Info("verify", append([]zap.Field{
		zap.String("phone", maskedOrEmpty(num)),
		zap.String("country", num.Region),
		zap.String("client_ip", clientIP),
		zap.String("outcome", outcome),
	}, extra...)...)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// tokenResponse is the session answer of /verify and /token.
type tokenResponse struct {
	AccessToken  string   `json:"access_token"`
	TokenType    string   `json:"token_type"`
	ExpiresIn    int64    `json:"expires_in"`
	ExpiresAt    int64    `json:"expires_at"`
	RefreshToken string   `json:"refresh_token"`
	User         userJSON `json:"user"`

	claims session.Claims // what AccessToken asserts, for the gate
}

// issue signs an access token for a session.
func (g *Gateway) issue(u store.User, sess store.Session, refresh string, now time.Time) (tokenResponse, error) {
	exp := now.Add(g.cfg.AccessTTL)
	claims := session.Claims{
		Issuer:    g.cfg.Issuer,
		Subject:   u.ID,
		Audience:  g.cfg.Audience,
		IssuedAt:  now,
		ExpiresAt: exp,
		Phone:     u.Phone,
		Role:      "authenticated",
		AAL:       "aal1",
		AMR:       []session.AMR{{Method: "otp", Timestamp: sess.CreatedAt.Unix()}},
		SessionID: sess.ID,
	}
	tok, err := g.cfg.Tokens.Sign(claims)
	if err != nil {
		return tokenResponse{}, apierr.Wrap(http.StatusInternalServerError, apierr.UnexpectedFailure, "Could not sign the session.", err)
	}
	return tokenResponse{
		AccessToken:  tok,
		TokenType:    "bearer",
		ExpiresIn:    int64(g.cfg.AccessTTL / time.Second),
		ExpiresAt:    exp.Unix(),
		RefreshToken: refresh,
		User:         g.userJSON(u),
		claims:       claims,
	}, nil
}

// userJSON is the Supabase user object.
type userJSON struct {
	ID               string         `json:"id"`
	Aud              string         `json:"aud"`
	Role             string         `json:"role"`
	Email            string         `json:"email"`
	Phone            string         `json:"phone"`
	PhoneConfirmedAt *time.Time     `json:"phone_confirmed_at,omitempty"`
	ConfirmedAt      *time.Time     `json:"confirmed_at,omitempty"`
	LastSignInAt     *time.Time     `json:"last_sign_in_at,omitempty"`
	AppMetadata      map[string]any `json:"app_metadata"`
	UserMetadata     any            `json:"user_metadata"`
	Identities       []any          `json:"identities"`
	CreatedAt        time.Time      `json:"created_at"`
	UpdatedAt        time.Time      `json:"updated_at"`
	IsAnonymous      bool           `json:"is_anonymous"`
}

func (g *Gateway) userJSON(u store.User) userJSON {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	var meta any = map[string]any{}
	if len(u.Metadata) > 0 {
		meta = rawJSON(u.Metadata)
	}
	return userJSON{
		ID:               u.ID,
		Aud:              g.cfg.Audience,
		Role:             "authenticated",
		Phone:            u.Phone,
		PhoneConfirmedAt: opt(u.ConfirmedAt),
		ConfirmedAt:      opt(u.ConfirmedAt),
		LastSignInAt:     opt(u.LastSignInAt),
		AppMetadata:      map[string]any{"provider": "phone", "providers": []string{"phone"}},
		UserMetadata:     meta,
		Identities:       []any{},
		CreatedAt:        u.CreatedAt.UTC(),
		UpdatedAt:        u.UpdatedAt.UTC(),
	}
}

type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }
