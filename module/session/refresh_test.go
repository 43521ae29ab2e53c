package session

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/uuid"
)

const testUserKey = "u_Zx81kQ"

func TestNewRefreshToken_FormatAndHash(t *testing.T) {
	tok, hash, err := NewRefreshToken(testUserKey)
	if err != nil {
		t.Fatal(err)
	}
	prefix, secret, _ := strings.Cut(tok, ".")
	if prefix != testUserKey || len(secret) != 43 {
		t.Fatalf("token shape %q", tok)
	}
	sum := sha256.Sum256([]byte(tok))
	if hash != hex.EncodeToString(sum[:]) {
		t.Fatal("hash is not hex SHA-256 of the whole token")
	}
	if strings.Contains(hash, secret) {
		t.Fatal("hash reveals the token")
	}
}

func TestNewRefreshToken_Unique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok, _, err := NewRefreshToken(testUserKey)
		if err != nil {
			t.Fatal(err)
		}
		if seen[tok] {
			t.Fatal("duplicate refresh token")
		}
		seen[tok] = true
	}
}

func TestNewRefreshToken_BadUserKeyRefused(t *testing.T) {
	for _, k := range []string{"", "a.b", "+15551234567", "user key", "ü", strings.Repeat("a", MaxUserKeyLen+1)} {
		if _, _, err := NewRefreshToken(k); err == nil {
			t.Errorf("user key %q accepted", k)
		}
	}
}

func TestParseRefreshToken_RoundTrip(t *testing.T) {
	tok, hash, err := NewRefreshToken(testUserKey)
	if err != nil {
		t.Fatal(err)
	}
	userKey, gotHash, ok := ParseRefreshToken(tok)
	if !ok || userKey != testUserKey || gotHash != hash {
		t.Fatalf("ParseRefreshToken = %q, %q, %v", userKey, gotHash, ok)
	}
}

func TestParseRefreshToken_MalformedRefused(t *testing.T) {
	tok, _, _ := NewRefreshToken(testUserKey)
	_, secret, _ := strings.Cut(tok, ".")
	// The last base64url character of 32 bytes carries two unused bits;
	// setting one spells the same secret differently.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, secret[42])
	nonCanonical := secret[:42] + string(alphabet[last|1])
	long, _, _ := NewRefreshToken(strings.Repeat("a", MaxUserKeyLen))

	for name, bad := range map[string]string{
		"empty":             "",
		"no dot":            testUserKey + secret,
		"no user key":       "." + secret,
		"no secret":         testUserKey + ".",
		"two dots":          testUserKey + "." + secret + ".x",
		"dot in secret":     testUserKey + "." + secret[:20] + "." + secret[21:],
		"short secret":      testUserKey + "." + secret[:42],
		"long secret":       testUserKey + "." + secret + "A",
		"padded":            testUserKey + "." + secret + "=",
		"std alphabet":      testUserKey + "." + strings.NewReplacer("-", "+", "_", "/").Replace(secret[:41]) + "+/",
		"non-canonical":     testUserKey + "." + nonCanonical,
		"bad user key char": "u+1." + secret,
		"user key too long": strings.Repeat("a", MaxUserKeyLen+1) + "." + secret,
		"whitespace":        " " + tok,
		"over length limit": long + "A",
		"non-ASCII":         "ü." + secret,
		"NUL":               testUserKey + "\x00." + secret,
	} {
		if _, _, ok := ParseRefreshToken(bad); ok {
			t.Errorf("%s: %q accepted", name, bad)
		}
	}
	if _, _, ok := ParseRefreshToken(long); !ok {
		t.Error("longest valid token refused")
	}
}

func TestNewSessionID_IsRandomUUID(t *testing.T) {
	a, b := NewSessionID(), NewSessionID()
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 {
		t.Fatalf("%q: version %v variant %v, %v", a, u.Version(), u.Variant(), err)
	}
	if a == b {
		t.Fatal("session ids repeat")
	}
}
