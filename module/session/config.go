package session

import (
	"errors"
	"fmt"
)

// MinHMACSecret is the shortest HS256 secret accepted: SHA-256's output
// size (RFC 7518 section 3.2). A shorter secret is the weakest link and
// can be brute-forced offline from any one token.
const MinHMACSecret = 32

// DefaultAlg is the algorithm of a generated key: what @supabase/auth-js
// getClaims() verifies through JWKS.
const DefaultAlg = AlgES256

// KeyConfig says where the signing key comes from: an HMAC secret
// (HS256), else a PEM key file (its algorithm follows from the key), else
// a key of Alg generated once and kept in storage.
type KeyConfig struct {
	HMACSecret string
	KeyFile    string
	Alg        string // ES256 (default), EdDSA or RS256
}

// Validate checks c and reports every problem, each naming the Caddyfile
// option at fault. It reads no file.
func (c KeyConfig) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.Alg {
	case "", AlgES256, AlgEdDSA, AlgRS256:
	default:
		add("signing_alg: unknown algorithm %q (want ES256, EdDSA or RS256; HS256 is set by hmac_secret)", c.Alg)
	}
	if c.HMACSecret != "" {
		if c.KeyFile != "" || c.Alg != "" {
			add("hmac_secret: cannot be combined with signing_key_file or signing_alg")
		}
		if len(c.HMACSecret) < MinHMACSecret {
			add("hmac_secret: must be at least %d bytes (got %d)", MinHMACSecret, len(c.HMACSecret))
		}
	}
	return errors.Join(errs...)
}
