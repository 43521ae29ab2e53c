package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"github.com/otpgate/otpgate/module/session"
	"github.com/otpgate/otpgate/module/store"
)

// keySet is the server secret and the token keys, replaced together.
type keySet struct {
	secret []byte
	tokens *session.Tokens
}

// Rekey replaces the server secret and the token keys. The Caddy adapter
// provisions with values it generated when storage held none (provisioning
// writes nothing) and, at start, adopts those of an instance that stored
// its own first.
func (g *Gateway) Rekey(secret []byte, tokens *session.Tokens) error {
	if len(secret) < 32 || tokens == nil {
		return errors.New("gateway: rekey: a secret of at least 32 bytes and tokens are required")
	}
	g.keys.Store(&keySet{secret: secret, tokens: tokens})
	return nil
}

func (g *Gateway) tokens() *session.Tokens { return g.keys.Load().tokens }

// JWKS is the public half of the keys the gateway signs with now.
func (g *Gateway) JWKS() []byte { return g.tokens().JWKS() }

// userKey is the pseudonymous key of a phone: stable under one secret,
// and reveals nothing about the number without it.
func (g *Gateway) userKey(e164 string) store.UserKey {
	m := hmac.New(sha256.New, g.keys.Load().secret)
	m.Write([]byte("otpgate user\x00"))
	m.Write([]byte(e164))
	return store.UserKey(base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16]))
}

// codeMAC binds a code to its challenge and phone.
func (g *Gateway) codeMAC(challengeID, e164, code string) []byte {
	m := hmac.New(sha256.New, g.keys.Load().secret)
	m.Write([]byte("otpgate code\x00"))
	m.Write([]byte(challengeID))
	m.Write([]byte{0})
	m.Write([]byte(e164))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}

// ServerSecret is the current server secret (Rekey may replace it at
// start), for senders that seal data into provider callbacks: Plivo's
// voice answer URL carries the code sealed with it.
func (g *Gateway) ServerSecret() []byte { return g.keys.Load().secret }
