package session

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
)

func TestGenerateKey_EmptyAlgIsES256(t *testing.T) {
	k, err := GenerateKey("")
	if err != nil {
		t.Fatal(err)
	}
	if k.Alg != AlgES256 {
		t.Fatalf("alg = %q, want ES256", k.Alg)
	}
	if len(k.Kid) != 43 {
		t.Fatalf("kid %q is not a base64url SHA-256", k.Kid)
	}
}

func TestGenerateKey_EachAlgorithm(t *testing.T) {
	for _, alg := range []string{AlgES256, AlgEdDSA, AlgRS256} {
		k := mustKey(t, alg)
		if k.Alg != alg {
			t.Errorf("GenerateKey(%s).Alg = %q", alg, k.Alg)
		}
	}
}

func TestGenerateKey_UnsupportedAlg(t *testing.T) {
	for _, alg := range []string{"HS256", "ES384", "none", "PS256"} {
		if _, err := GenerateKey(alg); err == nil {
			t.Errorf("GenerateKey(%q) succeeded", alg)
		}
	}
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParsePrivateKeyPEM_AcceptedFormats(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey := testRSAKey().signing.(*rsa.PrivateKey)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	cases := []struct {
		name, typ, alg string
		der            []byte
		want           any
	}{
		{"PKCS8 EC", "PRIVATE KEY", AlgES256, pkcs8(ec), ec},
		{"SEC1 EC", "EC PRIVATE KEY", AlgES256, sec1, ec},
		{"PKCS8 Ed25519", "PRIVATE KEY", AlgEdDSA, pkcs8(ed), ed},
		{"PKCS8 RSA", "PRIVATE KEY", AlgRS256, pkcs8(rsaKey), rsaKey},
		{"PKCS1 RSA", "RSA PRIVATE KEY", AlgRS256, x509.MarshalPKCS1PrivateKey(rsaKey), rsaKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParsePrivateKeyPEM(pemOf(tc.typ, tc.der))
			if err != nil {
				t.Fatal(err)
			}
			if k.Alg != tc.alg {
				t.Fatalf("alg = %q, want %q", k.Alg, tc.alg)
			}
			direct, err := newAsymmetricKey(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if k.Kid != direct.Kid {
				t.Fatalf("kid depends on the PEM format: %q vs %q", k.Kid, direct.Kid)
			}
		})
	}
}

func TestParsePrivateKeyPEM_RejectsP384(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ec)
	if _, err := ParsePrivateKeyPEM(pemOf("PRIVATE KEY", der)); err == nil || !strings.Contains(err.Error(), "P-256") {
		t.Fatalf("P-384 key: err = %v, want a P-256 error", err)
	}
}

func TestParsePrivateKeyPEM_RejectsRSAUnder2048Bits(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Skip("this Go refuses to generate 1024-bit RSA keys:", err)
	}
	if _, err := ParsePrivateKeyPEM(pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small))); err == nil {
		t.Fatal("1024-bit RSA key accepted")
	}
}

func TestParsePrivateKeyPEM_RejectsNonKeys(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	cases := map[string][]byte{
		"empty":          nil,
		"garbage":        []byte("not a key"),
		"public key":     pemOf("PUBLIC KEY", pub),
		"wrong type":     pemOf("CERTIFICATE", sec1),
		"corrupt body":   pemOf("PRIVATE KEY", []byte{0x30, 0x03, 0x01}),
		"two keys":       append(pemOf("EC PRIVATE KEY", sec1), pemOf("EC PRIVATE KEY", sec1)...),
		"encrypted":      pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: sec1}),
		"SEC1 as PKCS8":  pemOf("PRIVATE KEY", sec1),
		"PKCS8 as PKCS1": pemOf("RSA PRIVATE KEY", sec1),
	}
	for name, data := range cases {
		if _, err := ParsePrivateKeyPEM(data); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestMarshalPEM_RoundTripsEachAlgorithm(t *testing.T) {
	for _, alg := range []string{AlgES256, AlgEdDSA, AlgRS256} {
		k := mustKey(t, alg)
		p, err := k.MarshalPEM()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(p), "-----BEGIN PRIVATE KEY-----") {
			t.Fatalf("%s: not PKCS#8 PEM", alg)
		}
		back, err := ParsePrivateKeyPEM(p)
		if err != nil {
			t.Fatal(err)
		}
		if back.Alg != k.Alg || back.Kid != k.Kid {
			t.Fatalf("%s: round trip changed key: %v -> %v", alg, k, back)
		}
	}
}

func TestMarshalPEM_RefusesHMAC(t *testing.T) {
	if _, err := mustKey(t, AlgHS256).MarshalPEM(); err == nil {
		t.Fatal("HMAC secret marshalled as PEM")
	}
}

func TestHMACKey_ShortSecretRefused(t *testing.T) {
	_, err := HMACKey(make([]byte, 31))
	if err == nil || !strings.Contains(err.Error(), "hmac_secret must be at least 32 bytes") {
		t.Fatalf("err = %v", err)
	}
}

func TestHMACKey_KidIsStableAndRevealsNothing(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	a, _ := HMACKey(secret)
	b, _ := HMACKey(append([]byte(nil), secret...))
	other, _ := HMACKey([]byte("0123456789abcdef0123456789abcdeX"))
	if a.Kid != b.Kid {
		t.Fatal("kid differs for the same secret")
	}
	if a.Kid == other.Kid {
		t.Fatal("kid collides for different secrets")
	}
	for _, enc := range []string{string(secret), base64.RawURLEncoding.EncodeToString(secret), fmt.Sprintf("%x", secret)} {
		if strings.Contains(a.Kid, enc[:8]) {
			t.Fatalf("kid %q contains secret material", a.Kid)
		}
	}
}

func TestHMACKey_CopiesSecret(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	k, _ := HMACKey(secret)
	secret[0] = 'X'
	if k.signing.([]byte)[0] != '0' {
		t.Fatal("key aliases the caller's secret")
	}
}

func TestKey_FormattingHidesSecret(t *testing.T) {
	k := mustKey(t, AlgHS256)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, k); strings.Contains(s, "0123456789") {
			t.Fatalf("%s prints the secret: %s", verb, s)
		}
	}
}

// RFC 8037 appendix A gives an Ed25519 key and its RFC 7638 thumbprint.
func TestKid_MatchesRFC8037Thumbprint(t *testing.T) {
	seed, _ := base64.RawURLEncoding.DecodeString("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
	k, err := newAsymmetricKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	if want := "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; k.Kid != want {
		t.Fatalf("kid = %q, want %q", k.Kid, want)
	}
}
