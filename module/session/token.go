package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Verification outcomes. ErrExpired is kept apart because the gate answers it
// by refreshing the session in place; everything else is a forgery or a bug
// and gets no second chance.
var (
	ErrExpired = errors.New("access token expired")
	ErrInvalid = errors.New("access token invalid")
)

const (
	// MaxTokenBytes bounds what Verify will even parse, so oversized headers
	// cannot make the gate spend time base64- and JSON-decoding garbage.
	MaxTokenBytes = 4096
	// Leeway absorbs clock skew between instances and upstreams.
	Leeway = 30 * time.Second

	// RoleAuthenticated is the Postgres role a signed-in user's token
	// names (Supabase's "role" claim, and the user object's role).
	RoleAuthenticated = "authenticated"
	aal1              = "aal1"
)

// AMR records how the session was authenticated, in Supabase's shape.
type AMR struct {
	Method    string `json:"method"`
	Timestamp int64  `json:"timestamp"`
}

// Claims is what an access token asserts. Phone is E.164 with its '+' here;
// on the wire it is written without the '+', as Supabase Auth stores and
// emits phone numbers, so upstreams written for Supabase see the same string.
type Claims struct {
	Issuer    string
	Subject   string
	Audience  string
	IssuedAt  time.Time
	ExpiresAt time.Time
	Phone     string
	Role      string
	AAL       string
	AMR       []AMR
	SessionID string
	// Roles are the user's roles when the token was issued (on the wire:
	// app_metadata.roles, as Supabase apps read custom claims).
	Roles []string

	// CheckedAt is when the gate last confirmed these claims against the
	// store (zero: never since IssuedAt). It is not part of the token.
	CheckedAt time.Time
}

// appMetadata is the token's app_metadata, in Supabase's shape.
type appMetadata struct {
	Provider  string   `json:"provider"`
	Providers []string `json:"providers"`
	Roles     []string `json:"roles"`
}

// wireClaims is the JSON payload. aud is a single string, as Supabase emits
// it; jwt's ClaimStrings would write an array.
type wireClaims struct {
	Issuer      string           `json:"iss"`
	Audience    string           `json:"aud"`
	Subject     string           `json:"sub"`
	ExpiresAt   *jwt.NumericDate `json:"exp,omitempty"`
	IssuedAt    *jwt.NumericDate `json:"iat,omitempty"`
	Phone       string           `json:"phone"`
	Role        string           `json:"role"`
	AAL         string           `json:"aal"`
	AMR         []AMR            `json:"amr"`
	SessionID   string           `json:"session_id"`
	IsAnonymous bool             `json:"is_anonymous"`
	AppMetadata *appMetadata     `json:"app_metadata,omitempty"`
}

func (w *wireClaims) GetExpirationTime() (*jwt.NumericDate, error) { return w.ExpiresAt, nil }
func (w *wireClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return w.IssuedAt, nil }
func (w *wireClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (w *wireClaims) GetIssuer() (string, error)                   { return w.Issuer, nil }
func (w *wireClaims) GetSubject() (string, error)                  { return w.Subject, nil }
func (w *wireClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{w.Audience}, nil
}

// Tokens signs and verifies access tokens for one issuer and audience. It is
// immutable; a key rotation takes effect through a new Tokens.
type Tokens struct {
	ring     KeyRing
	issuer   string
	audience string
	method   jwt.SigningMethod
	methods  []string // algorithms present in the ring, for the parser's first check
	jwks     []byte
}

// NewTokens binds a key ring to the iss and aud every token must carry.
func NewTokens(ring KeyRing, issuer, audience string) *Tokens {
	t := &Tokens{
		ring:     ring,
		issuer:   issuer,
		audience: audience,
		method:   jwt.GetSigningMethod(ring.Current.Alg),
		methods:  []string{ring.Current.Alg},
	}
	if ring.Previous.Kid != "" && ring.Previous.Alg != ring.Current.Alg {
		t.methods = append(t.methods, ring.Previous.Alg)
	}
	t.jwks = buildJWKS(ring)
	return t
}

// Sign issues an access token with the current key. iss and aud always come
// from t, so a caller cannot mint a token its own verifier would refuse;
// role and aal default to Supabase's values for a phone login.
func (t *Tokens) Sign(c Claims) (string, error) {
	if t.method == nil {
		return "", fmt.Errorf("sign: no usable %q key", t.ring.Current.Alg)
	}
	if c.Subject == "" || c.SessionID == "" || c.IssuedAt.IsZero() || c.ExpiresAt.IsZero() {
		return "", errors.New("sign: subject, session id, issued-at and expiry are required")
	}
	if !c.ExpiresAt.After(c.IssuedAt) {
		return "", errors.New("sign: expiry must be after issued-at")
	}
	w := &wireClaims{
		Issuer:    t.issuer,
		Audience:  t.audience,
		Subject:   c.Subject,
		ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
		IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
		Phone:     strings.TrimPrefix(c.Phone, "+"),
		Role:      c.Role,
		AAL:       c.AAL,
		AMR:       c.AMR,
		SessionID: c.SessionID,
		AppMetadata: &appMetadata{
			Provider:  "phone",
			Providers: []string{"phone"},
			Roles:     c.Roles,
		},
	}
	if w.AppMetadata.Roles == nil {
		w.AppMetadata.Roles = []string{}
	}
	if w.Role == "" {
		w.Role = RoleAuthenticated
	}
	if w.AAL == "" {
		w.AAL = aal1
	}
	if w.AMR == nil {
		w.AMR = []AMR{{Method: "otp", Timestamp: c.IssuedAt.Unix()}}
	}
	tok := jwt.NewWithClaims(t.method, w)
	tok.Header["kid"] = t.ring.Current.Kid
	s, err := tok.SignedString(t.ring.Current.signing)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return s, nil
}

// Verify checks a token at time now. On ErrExpired the returned claims are
// authentic (the signature held) but stale: enough to identify the session
// being refreshed, never to let a request through.
func (t *Tokens) Verify(token string, now time.Time) (Claims, error) {
	if len(token) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxTokenBytes)
	}
	var w wireClaims
	parser := jwt.NewParser(
		jwt.WithValidMethods(t.methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithAudience(t.audience),
		jwt.WithIssuer(t.issuer),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithStrictDecoding(),
	)
	_, err := parser.ParseWithClaims(token, &w, t.keyFor)
	if err != nil {
		if expiredOnly(err) {
			return w.claims(), fmt.Errorf("%w: %w", ErrExpired, err)
		}
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if w.IssuedAt == nil || w.Subject == "" || w.SessionID == "" {
		return Claims{}, fmt.Errorf("%w: missing iat, sub or session_id", ErrInvalid)
	}
	return w.claims(), nil
}

// keyFor picks the key named by the header's kid and pins the algorithm to
// that key's own: the header's alg is attacker-chosen and is only compared,
// never obeyed. This is what defeats HS256-with-the-public-key forgeries.
func (t *Tokens) keyFor(tok *jwt.Token) (any, error) {
	kid, _ := tok.Header["kid"].(string)
	key, ok := t.ring.lookup(kid)
	if !ok {
		return nil, errors.New("unknown kid")
	}
	if tok.Method.Alg() != key.Alg {
		return nil, fmt.Errorf("algorithm %q does not match key %s", tok.Method.Alg(), key.Kid)
	}
	return key.verifying, nil
}

// expiredOnly reports whether expiry is the sole complaint. jwt joins every
// failed claim check into one error; a token that is both expired and for
// another audience must not be treated as refreshable.
func expiredOnly(err error) bool {
	if !errors.Is(err, jwt.ErrTokenExpired) {
		return false
	}
	for _, other := range []error{
		jwt.ErrTokenMalformed, jwt.ErrTokenUnverifiable, jwt.ErrTokenSignatureInvalid,
		jwt.ErrTokenRequiredClaimMissing, jwt.ErrTokenInvalidAudience, jwt.ErrTokenInvalidIssuer,
		jwt.ErrTokenUsedBeforeIssued, jwt.ErrTokenNotValidYet, jwt.ErrTokenInvalidSubject,
		jwt.ErrTokenInvalidId,
	} {
		if errors.Is(err, other) {
			return false
		}
	}
	return true
}

func (w *wireClaims) claims() Claims {
	c := Claims{
		Issuer:    w.Issuer,
		Subject:   w.Subject,
		Audience:  w.Audience,
		Role:      w.Role,
		AAL:       w.AAL,
		AMR:       w.AMR,
		SessionID: w.SessionID,
	}
	if w.AppMetadata != nil && len(w.AppMetadata.Roles) > 0 {
		c.Roles = w.AppMetadata.Roles
	}
	if w.Phone != "" {
		c.Phone = "+" + strings.TrimPrefix(w.Phone, "+")
	}
	if w.IssuedAt != nil {
		c.IssuedAt = w.IssuedAt.Time
	}
	if w.ExpiresAt != nil {
		c.ExpiresAt = w.ExpiresAt.Time
	}
	return c
}

// JWKS is the public half of the ring for upstreams and auth-js getClaims().
// HS256 publishes nothing: its only key is the secret. The copy keeps the
// precomputed document safe from callers that write into it.
func (t *Tokens) JWKS() []byte { return bytes.Clone(t.jwks) }

func buildJWKS(ring KeyRing) []byte {
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, k := range []Key{ring.Current, ring.Previous} {
		if k.Kid == "" || k.Alg == AlgHS256 {
			continue
		}
		if j, err := k.publicJWK(); err == nil {
			set.Keys = append(set.Keys, j)
		}
	}
	b, _ := json.Marshal(set)
	return b
}
