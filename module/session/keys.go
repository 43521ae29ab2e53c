// Package session issues and checks otpgate's sessions: signing keys and their
// storage, Supabase-compatible access tokens, refresh tokens, and the gate's
// cache of already-verified tokens. It knows nothing of Caddy or HTTP.
package session

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// Signing algorithms otpgate accepts. Anything else is refused at load time,
// so a token can never be checked with an algorithm the operator did not choose.
const (
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
	AlgRS256 = "RS256"
	AlgHS256 = "HS256"
)

const (
	minRSABits      = 2048
	generateRSABits = 2048
)

// Key is one signing key. The private half stays unexported so a Key passed
// around (or accidentally printed, see String) never spills secret material.
type Key struct {
	Alg string // ES256, EdDSA, RS256 or HS256
	Kid string // RFC 7638 thumbprint; a one-way tag for HMAC keys

	signing   any // *ecdsa.PrivateKey, ed25519.PrivateKey, *rsa.PrivateKey or []byte
	verifying any // *ecdsa.PublicKey, ed25519.PublicKey, *rsa.PublicKey or []byte
}

// String keeps secrets out of logs and error messages that format a Key.
func (k Key) String() string { return k.Alg + " key " + k.Kid }

// GoString does the same for %#v.
func (k Key) GoString() string { return k.String() }

// GenerateKey makes a fresh asymmetric key. ES256 is the default because it
// is what @supabase/auth-js getClaims() verifies through JWKS.
func GenerateKey(alg string) (Key, error) {
	switch alg {
	case "", AlgES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return Key{}, fmt.Errorf("generate ES256 key: %w", err)
		}
		return newAsymmetricKey(priv)
	case AlgEdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return Key{}, fmt.Errorf("generate EdDSA key: %w", err)
		}
		return newAsymmetricKey(priv)
	case AlgRS256:
		priv, err := rsa.GenerateKey(rand.Reader, generateRSABits)
		if err != nil {
			return Key{}, fmt.Errorf("generate RS256 key: %w", err)
		}
		return newAsymmetricKey(priv)
	case AlgHS256:
		return Key{}, errors.New("generate key: HS256 keys come from hmac_secret, not from storage")
	default:
		return Key{}, fmt.Errorf("generate key: unsupported algorithm %q (want ES256, EdDSA or RS256)", alg)
	}
}

// ParsePrivateKeyPEM reads a key an operator supplies or that storage holds.
// The algorithm follows from the key type, so a stored key cannot be
// reinterpreted under a weaker algorithm.
func ParsePrivateKeyPEM(data []byte) (Key, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return Key{}, errors.New("parse private key: no PEM block found")
	}
	if len(block.Headers) != 0 {
		return Key{}, errors.New("parse private key: encrypted PEM is not supported")
	}
	if next, _ := pem.Decode(rest); next != nil {
		return Key{}, errors.New("parse private key: more than one PEM block")
	}
	var (
		priv any
		err  error
	)
	switch block.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		priv, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		priv, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return Key{}, fmt.Errorf("parse private key: unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return Key{}, fmt.Errorf("parse private key: %w", err)
	}
	return newAsymmetricKey(priv)
}

// MarshalPEM writes the key as PKCS#8, the one format every key type shares.
func (k Key) MarshalPEM() ([]byte, error) {
	switch k.signing.(type) {
	case *ecdsa.PrivateKey, ed25519.PrivateKey, *rsa.PrivateKey:
	default:
		return nil, fmt.Errorf("marshal %s key: only asymmetric keys are stored as PEM", k.Alg)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.signing)
	if err != nil {
		return nil, fmt.Errorf("marshal %s key: %w", k.Alg, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// HMACKey wraps a shared secret. The 32-byte floor matches SHA-256's output:
// a shorter secret is the weakest link and can be brute-forced offline from
// any one token.
func HMACKey(secret []byte) (Key, error) {
	if len(secret) < MinHMACSecret {
		return Key{}, fmt.Errorf("hmac_secret must be at least %d bytes, got %d", MinHMACSecret, len(secret))
	}
	s := append([]byte(nil), secret...)
	// The kid is public (it travels in every token header), so it is derived
	// through a domain-separated hash: it names the secret without revealing it.
	h := sha256.New()
	h.Write([]byte("otpgate hmac kid\x00"))
	h.Write(s)
	kid := base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
	return Key{Alg: AlgHS256, Kid: kid, signing: s, verifying: s}, nil
}

func newAsymmetricKey(priv any) (Key, error) {
	var k Key
	switch p := priv.(type) {
	case *ecdsa.PrivateKey:
		if p.Curve != elliptic.P256() {
			return Key{}, fmt.Errorf("EC key on curve %s: only P-256 (ES256) is supported", p.Curve.Params().Name)
		}
		k = Key{Alg: AlgES256, signing: p, verifying: &p.PublicKey}
	case ed25519.PrivateKey:
		k = Key{Alg: AlgEdDSA, signing: p, verifying: p.Public().(ed25519.PublicKey)}
	case *rsa.PrivateKey:
		if bits := p.N.BitLen(); bits < minRSABits {
			return Key{}, fmt.Errorf("RSA key of %d bits: at least %d are required", bits, minRSABits)
		}
		k = Key{Alg: AlgRS256, signing: p, verifying: &p.PublicKey}
	default:
		return Key{}, fmt.Errorf("unsupported private key type %T", priv)
	}
	jwk, err := k.publicJWK()
	if err != nil {
		return Key{}, err
	}
	k.Kid = jwk.thumbprint()
	return k, nil
}

// jwk is the public half of a key in RFC 7517 form. Field order matters only
// for the thumbprint, which builds its own canonical string.
type jwk struct {
	Kty    string   `json:"kty"`
	Crv    string   `json:"crv,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
	N      string   `json:"n,omitempty"`
	E      string   `json:"e,omitempty"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
}

func (k Key) publicJWK() (jwk, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	out := jwk{Kid: k.Kid, Alg: k.Alg, Use: "sig", KeyOps: []string{"verify"}}
	switch pub := k.verifying.(type) {
	case *ecdsa.PublicKey:
		point, err := pub.Bytes() // 0x04 || X || Y, each padded to 32 bytes
		if err != nil {
			return jwk{}, fmt.Errorf("encode EC public key: %w", err)
		}
		out.Kty, out.Crv = "EC", "P-256"
		out.X, out.Y = b64(point[1:33]), b64(point[33:65])
	case ed25519.PublicKey:
		out.Kty, out.Crv, out.X = "OKP", "Ed25519", b64(pub)
	case *rsa.PublicKey:
		out.Kty = "RSA"
		out.N = b64(pub.N.Bytes())
		out.E = b64(big.NewInt(int64(pub.E)).Bytes())
	default:
		return jwk{}, fmt.Errorf("%s key has no public form", k.Alg)
	}
	return out, nil
}

// thumbprint follows RFC 7638: the required members only, in lexicographic
// order, no whitespace, hashed with SHA-256.
func (j jwk) thumbprint() string {
	var members any
	switch j.Kty {
	case "EC":
		members = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
			Y   string `json:"y"`
		}{j.Crv, j.Kty, j.X, j.Y}
	case "OKP":
		members = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
		}{j.Crv, j.Kty, j.X}
	case "RSA":
		members = struct {
			E   string `json:"e"`
			Kty string `json:"kty"`
			N   string `json:"n"`
		}{j.E, j.Kty, j.N}
	}
	// Base64url and curve names never need JSON escaping, so encoding/json's
	// output is exactly the canonical form.
	canonical, _ := json.Marshal(members)
	sum := sha256.Sum256(canonical)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// KeyRing is the key that signs plus the one it replaced, so tokens issued
// just before a rotation keep working until they expire.
type KeyRing struct {
	Current  Key
	Previous Key // zero Key when there has been no rotation
}

// lookup finds a verification key by kid. An empty kid never matches, so a
// token without one cannot fall through to some default key.
func (r KeyRing) lookup(kid string) (Key, bool) {
	switch {
	case kid == "":
		return Key{}, false
	case kid == r.Current.Kid:
		return r.Current, true
	case kid == r.Previous.Kid:
		return r.Previous, true
	}
	return Key{}, false
}
