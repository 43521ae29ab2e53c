package gateway

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/session"
	"github.com/otpgate/otpgate/module/store"
)

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
		Role:      session.RoleAuthenticated,
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
