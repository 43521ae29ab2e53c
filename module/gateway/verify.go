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
	out, err := g.verify(r.Context(), req, actorOf(r, clientIP, "user"))
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
	return g.verify(ctx, req, Actor{Kind: "user", IP: clientIP})
}

func (g *Gateway) verify(ctx context.Context, req verifyRequest, actor Actor) (tokenResponse, error) {
	clientIP := actor.IP
	switch req.Type {
	case "sms", "whatsapp", "voice", "phone_change":
	default:
		return tokenResponse{}, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, `type must be "sms", "whatsapp", "voice" or "phone_change".`)
	}
	num, err := parsePhone(req.Phone)
	if err != nil {
		return tokenResponse{}, phoneError(err)
	}
	if !isDigits(req.Token) || len(req.Token) < 6 || len(req.Token) > 10 {
		return tokenResponse{}, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "token must be the digits of the code.")
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
		return tokenResponse{}, storeError(err)
	}
	if att.Status != store.AttemptOK {
		g.refuseOTP(ctx, num, clientIP, att.Status.String())
		return tokenResponse{}, errOTP()
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
		g.refuseOTP(ctx, num, clientIP, outcome)
		return tokenResponse{}, errOTP()
	}
	// a phone change's code completes the change, and only that
	if (req.Type == "phone_change") != (c.ChangeOf != "") {
		g.refuseOTP(ctx, num, clientIP, "wrong_type")
		return tokenResponse{}, errOTP()
	}
	if c.ChangeOf != "" {
		return g.verifyChange(ctx, c, uk, clientIP, actor, now)
	}
	sess, refresh, refreshHash, err := g.newSession(uk, now, actor)
	if err != nil {
		return tokenResponse{}, err
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
		return tokenResponse{}, storeError(err)
	}
	switch res.Status {
	case store.ConsumeOK:
		res.User = g.settle(ctx, uk, res.User)
	case store.ConsumeBanned:
		g.refuseOTP(ctx, num, clientIP, "banned")
		return tokenResponse{}, errOTP()
	case store.ConsumeNoUser:
		g.refuseOTP(ctx, num, clientIP, "not_a_user")
		return tokenResponse{}, errOTP()
	default:
		g.refuseOTP(ctx, num, clientIP, "consumed_elsewhere")
		return tokenResponse{}, errOTP()
	}
	roles, deny := g.admit(res.User, now)
	if deny != "" {
		// the user's access changed between the send and now: the session
		// just made must not outlive this answer
		g.endSessions(ctx, uk, []string{sess.ID}, now)
		g.refuseOTP(ctx, num, clientIP, deny)
		return tokenResponse{}, errOTP()
	}
	sess.UserID = res.User.ID
	out, err := g.issue(res.User, sess, refresh, now, roles)
	if err != nil {
		return tokenResponse{}, err
	}
	g.cfg.Metrics.verify(serverOf(ctx), "ok")
	g.logVerify(ctx, num, clientIP, "ok", zap.Bool("user_created", res.Created))
	g.auditEvent("sign_in", append(auditFields(actor, res.User.ID, sess.ID, num.E164), zap.Bool("user_created", res.Created), zap.Strings("roles", roles))...)
	return out, nil
}

// newSession is the session a verify starts, with its first refresh token
// (and the token's hash, which is what the store keeps).
func (g *Gateway) newSession(uk store.UserKey, now time.Time, actor Actor) (sess store.Session, refresh, refreshHash string, err error) {
	refresh, refreshHash, err = session.NewRefreshToken(string(uk))
	if err != nil {
		return sess, "", "", apierr.Wrap(http.StatusInternalServerError, apierr.UnexpectedFailure, "Could not start a session.", err)
	}
	sess = store.Session{
		ID:        session.NewSessionID(),
		User:      uk,
		CreatedAt: now,
		ExpiresAt: now.Add(g.cfg.RefreshTTL),
		IP:        actor.IP,
		UserAgent: actor.UserAgent,
	}
	return sess, refresh, refreshHash, nil
}

// newUserID: UUIDv7, so that the user index (ordered by ID) lists users in
// the order they were created.
func newUserID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// endSessions revokes sessions of one person in the store and announces
// them, best effort: used where a session must end but the request is
// already refused anyway.
func (g *Gateway) endSessions(ctx context.Context, uk store.UserKey, ids []string, now time.Time) {
	ctx = context.WithoutCancel(ctx)
	g.cache.Revoke(ids, now.Add(g.revocationRetain()))
	for _, id := range ids {
		if _, err := g.cfg.Store.Revoke(ctx, uk, store.RevokeOne, id, now); err != nil {
			g.log.Warn("ending a session", zap.Error(err))
		}
	}
	g.announce(ctx, ids, now)
}

func (g *Gateway) refuseOTP(ctx context.Context, num phone.Number, clientIP, outcome string) {
	g.cfg.Metrics.verify(serverOf(ctx), outcome)
	g.cfg.Metrics.refusal(serverOf(ctx), apierr.OTPExpired)
	g.logVerify(ctx, num, clientIP, outcome)
}

func (g *Gateway) logVerify(ctx context.Context, num phone.Number, clientIP, outcome string, extra ...zap.Field) {
	g.logFor(ctx).Info("verify", append([]zap.Field{
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
func (g *Gateway) issue(u store.User, sess store.Session, refresh string, now time.Time, roles []string) (tokenResponse, error) {
	ttl := g.accessTTL()
	exp := now.Add(ttl)
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
		Roles:     roles,
	}
	tok, err := g.tokens().Sign(claims)
	// the user was read from the store just now (consume or rotate), so
	// the gate need not check these claims again for changes made before
	claims.CheckedAt = now
	if err != nil {
		return tokenResponse{}, apierr.Wrap(http.StatusInternalServerError, apierr.UnexpectedFailure, "Could not sign the session.", err)
	}
	return tokenResponse{
		AccessToken:  tok,
		TokenType:    "bearer",
		ExpiresIn:    int64(ttl / time.Second),
		ExpiresAt:    exp.Unix(),
		RefreshToken: refresh,
		User:         g.userJSONWithRoles(u, roles),
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
	BannedUntil      *time.Time     `json:"banned_until,omitempty"`
	AppMetadata      map[string]any `json:"app_metadata"`
	UserMetadata     any            `json:"user_metadata"`
	Identities       []any          `json:"identities"`
	CreatedAt        time.Time      `json:"created_at"`
	UpdatedAt        time.Time      `json:"updated_at"`
	IsAnonymous      bool           `json:"is_anonymous"`
}

// userJSON is the user object with the user's current roles (those of its
// users line and those an administrator gave it).
func (g *Gateway) userJSON(u store.User) userJSON {
	listRoles, _ := g.listed(u.Phone)
	return g.userJSONWithRoles(u, unionRoles(listRoles, u.Roles))
}

func (g *Gateway) userJSONWithRoles(u store.User, roles []string) userJSON {
	if roles == nil {
		roles = []string{}
	}
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
		Phone:            apiPhone(u.Phone),
		PhoneConfirmedAt: opt(u.ConfirmedAt),
		ConfirmedAt:      opt(u.ConfirmedAt),
		LastSignInAt:     opt(u.LastSignInAt),
		BannedUntil:      opt(u.BannedUntil),
		AppMetadata:      map[string]any{"provider": "phone", "providers": []string{"phone"}, "roles": roles},
		UserMetadata:     meta,
		Identities:       []any{},
		CreatedAt:        u.CreatedAt.UTC(),
		UpdatedAt:        u.UpdatedAt.UTC(),
	}
}

type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }
