package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

const (
	// MaxUserKeyLen bounds the pseudonymous user tag in a refresh token.
	MaxUserKeyLen      = 64
	refreshSecretBytes = 32
)

// refreshSecretLen is the base64url length of the random half.
var refreshSecretLen = base64.RawURLEncoding.EncodedLen(refreshSecretBytes)

// strictB64 refuses non-canonical encodings, so one secret has exactly one
// spelling and one hash.
var strictB64 = base64.RawURLEncoding.Strict()

// NewRefreshToken makes an opaque refresh token and the hash to store. The
// userKey prefix lets the store find the user's sessions without an index on
// the hash; it must be a pseudonymous tag, never a phone number, because the
// token sits in cookies and client storage. Only the hash is stored, so a
// leaked store yields no usable token; 256 random bits make a salt pointless.
func NewRefreshToken(userKey string) (token, hash string, err error) {
	if !validUserKey(userKey) {
		return "", "", fmt.Errorf("new refresh token: user key must be 1-%d characters of [A-Za-z0-9_-]", MaxUserKeyLen)
	}
	var secret [refreshSecretBytes]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", "", fmt.Errorf("new refresh token: %w", err)
	}
	token = userKey + "." + base64.RawURLEncoding.EncodeToString(secret[:])
	return token, hashRefreshToken(token), nil
}

// ParseRefreshToken splits a presented token and hashes it for the store
// lookup. Anything that NewRefreshToken could not have produced is refused
// here, before it costs a store round trip.
func ParseRefreshToken(token string) (userKey, hash string, ok bool) {
	if len(token) > MaxUserKeyLen+1+refreshSecretLen {
		return "", "", false
	}
	userKey, secret, found := strings.Cut(token, ".")
	if !found || !validUserKey(userKey) || len(secret) != refreshSecretLen {
		return "", "", false
	}
	var raw [refreshSecretBytes]byte
	if n, err := strictB64.Decode(raw[:], []byte(secret)); err != nil || n != refreshSecretBytes {
		return "", "", false
	}
	return userKey, hashRefreshToken(token), true
}

func hashRefreshToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func validUserKey(s string) bool {
	if s == "" || len(s) > MaxUserKeyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// NewSessionID returns a random (v4) UUID, the form Supabase uses for
// session_id, so it reveals nothing about when or where it was made.
func NewSessionID() string { return uuid.NewString() }
