package session

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func newTestTokens(t testing.TB, alg string) *Tokens {
	t.Helper()
	return NewTokens(KeyRing{Current: mustKey(t, alg)}, testIssuer, testAudience)
}

func sign(t testing.TB, tk *Tokens, c Claims) string {
	t.Helper()
	s, err := tk.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// payload is the JSON a genuine token for testClaims(now) carries, as a map
// so attacks can change or drop single claims.
func payload(now time.Time) map[string]any {
	c := testClaims(now)
	return map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": c.Subject,
		"iat": now.Unix(), "exp": c.ExpiresAt.Unix(),
		"phone": "15551234567", "role": "authenticated", "aal": "aal1",
		"amr":        []map[string]any{{"method": "otp", "timestamp": now.Unix()}},
		"session_id": c.SessionID, "is_anonymous": false,
		"app_metadata": map[string]any{"provider": "phone", "providers": []string{"phone"}, "roles": []string{}},
	}
}

func b64json(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// forge builds a token byte by byte, signing with whatever method and key
// the attack calls for.
func forge(t testing.TB, method jwt.SigningMethod, key any, header, claims map[string]any) string {
	t.Helper()
	signing := b64json(t, header) + "." + b64json(t, claims)
	sig, err := method.Sign(signing, key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func header(alg, kid string) map[string]any {
	h := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		h["kid"] = kid
	}
	return h
}

func wantInvalid(t *testing.T, tk *Tokens, token string, now time.Time) {
	t.Helper()
	c, err := tk.Verify(token, now)
	if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrExpired) {
		t.Fatalf("Verify = %v, want ErrInvalid only", err)
	}
	if c.Subject != "" || c.SessionID != "" {
		t.Fatalf("claims returned with an invalid token: %+v", c)
	}
}

func TestVerify_GenuineToken_RoundTripsClaims(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	in := testClaims(t0)
	got, err := tk.Verify(sign(t, tk, in), t0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != in.Subject || got.Phone != in.Phone || got.SessionID != in.SessionID ||
		got.Issuer != testIssuer || got.Audience != testAudience || got.Role != "authenticated" || got.AAL != "aal1" ||
		!got.IssuedAt.Equal(in.IssuedAt) || !got.ExpiresAt.Equal(in.ExpiresAt) ||
		len(got.AMR) != 1 || got.AMR[0] != (AMR{Method: "otp", Timestamp: t0.Unix()}) {
		t.Fatalf("claims = %+v", got)
	}
}

func TestSign_PayloadIsSupabaseShaped(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	tok := sign(t, tk, testClaims(t0))
	parts := strings.Split(tok, ".")
	var h map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	if h["alg"] != "ES256" || h["typ"] != "JWT" || h["kid"] != tk.ring.Current.Kid {
		t.Fatalf("header = %v", h)
	}
	raw, _ = base64.RawURLEncoding.DecodeString(parts[1])
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := payload(t0)
	wantJSON, _ := json.Marshal(want)
	var wantNorm map[string]any
	_ = json.Unmarshal(wantJSON, &wantNorm)
	gotJSON, _ := json.Marshal(got)
	normJSON, _ := json.Marshal(wantNorm)
	if string(gotJSON) != string(normJSON) {
		t.Fatalf("payload\n got %s\nwant %s", gotJSON, normJSON)
	}
}

func TestSign_RolesTravelInAppMetadata(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	in := testClaims(t0)
	in.Roles = []string{"admin", "ops"}
	tok := sign(t, tk, in)
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	var p struct {
		AppMetadata struct {
			Roles []string `json:"roles"`
		} `json:"app_metadata"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.AppMetadata.Roles, ",") != "admin,ops" {
		t.Fatalf("app_metadata.roles = %v", p.AppMetadata.Roles)
	}
	got, err := tk.Verify(tok, t0)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Roles, ",") != "admin,ops" {
		t.Fatalf("verified roles = %v", got.Roles)
	}
}

func TestSign_MissingRequiredClaims_Refused(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	for name, mutate := range map[string]func(*Claims){
		"subject":    func(c *Claims) { c.Subject = "" },
		"session id": func(c *Claims) { c.SessionID = "" },
		"iat":        func(c *Claims) { c.IssuedAt = time.Time{} },
		"exp":        func(c *Claims) { c.ExpiresAt = time.Time{} },
		"exp<=iat":   func(c *Claims) { c.ExpiresAt = c.IssuedAt },
	} {
		c := testClaims(t0)
		mutate(&c)
		if _, err := tk.Sign(c); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
}

func TestVerify_AllAlgorithms_SignAndVerify(t *testing.T) {
	for _, alg := range []string{AlgES256, AlgEdDSA, AlgRS256, AlgHS256} {
		t.Run(alg, func(t *testing.T) {
			tk := newTestTokens(t, alg)
			c, err := tk.Verify(sign(t, tk, testClaims(t0)), t0)
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != testClaims(t0).Subject {
				t.Fatalf("claims = %+v", c)
			}
		})
	}
}

func TestVerify_ChangedClaims_Rejected(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	parts := strings.Split(sign(t, tk, testClaims(t0)), ".")
	p := payload(t0)
	p["sub"] = "00000000-0000-4000-8000-000000000000"
	wantInvalid(t, tk, parts[0]+"."+b64json(t, p)+"."+parts[2], t0)
}

func TestVerify_AlgNone_Rejected(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	kid := tk.ring.Current.Kid
	unsigned := b64json(t, header("none", kid)) + "." + b64json(t, payload(t0))
	wantInvalid(t, tk, unsigned+".", t0)
	wantInvalid(t, tk, forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, header("none", kid), payload(t0)), t0)
}

func publicKeyDER(t testing.TB, k Key) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.verifying)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestVerify_HS256WithPublicKeyPEM_Rejected(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: publicKeyDER(t, tk.ring.Current)})
	wantInvalid(t, tk, forge(t, jwt.SigningMethodHS256, secret, header("HS256", tk.ring.Current.Kid), payload(t0)), t0)
}

func TestVerify_HS256WithPublicKeyDER_Rejected(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	secret := publicKeyDER(t, tk.ring.Current)
	wantInvalid(t, tk, forge(t, jwt.SigningMethodHS256, secret, header("HS256", tk.ring.Current.Kid), payload(t0)), t0)
}

func TestVerify_HS256WithJWKSBytes_Rejected(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	wantInvalid(t, tk, forge(t, jwt.SigningMethodHS256, tk.JWKS(), header("HS256", tk.ring.Current.Kid), payload(t0)), t0)
}

func TestVerify_OtherGatewayKeyWithSameKid_Rejected(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	other := mustKey(t, AlgES256)
	wantInvalid(t, tk, forge(t, jwt.SigningMethodES256, other.signing, header("ES256", tk.ring.Current.Kid), payload(t0)), t0)
}

func TestVerify_OtherAlgorithmUnderKnownKid_Rejected(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	ed := mustKey(t, AlgEdDSA)
	wantInvalid(t, tk, forge(t, jwt.SigningMethodEdDSA, ed.signing, header("EdDSA", tk.ring.Current.Kid), payload(t0)), t0)
}

func TestVerify_PreviousKeyInRing_Accepted(t *testing.T) {
	old := mustKey(t, AlgES256)
	oldTokens := NewTokens(KeyRing{Current: old}, testIssuer, testAudience)
	tok := sign(t, oldTokens, testClaims(t0))

	rotated := NewTokens(KeyRing{Current: mustKey(t, AlgEdDSA), Previous: old}, testIssuer, testAudience)
	if _, err := rotated.Verify(tok, t0); err != nil {
		t.Fatal("token of the previous key refused:", err)
	}
	if fresh := sign(t, rotated, testClaims(t0)); strings.Contains(fresh, old.Kid) {
		t.Fatal("signed with the previous key")
	}
}

func TestVerify_PreviousKeyDropped_Rejected(t *testing.T) {
	old := mustKey(t, AlgES256)
	tok := sign(t, NewTokens(KeyRing{Current: old}, testIssuer, testAudience), testClaims(t0))
	tk := NewTokens(KeyRing{Current: mustKey(t, AlgES256), Previous: mustKey(t, AlgES256)}, testIssuer, testAudience)
	wantInvalid(t, tk, tok, t0)
}

func TestVerify_UnknownKid_Rejected(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	wantInvalid(t, tk, forge(t, jwt.SigningMethodES256, tk.ring.Current.signing, header("ES256", "some-other-kid"), payload(t0)), t0)
}

func TestVerify_MissingKid_Rejected(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	wantInvalid(t, tk, forge(t, jwt.SigningMethodES256, tk.ring.Current.signing, header("ES256", ""), payload(t0)), t0)
}

func TestVerify_Garbage_Rejected(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	genuine := sign(t, tk, testClaims(t0))
	for _, g := range []string{
		"", ".", "..", "...", "a.b.c", "not a token", "Bearer " + genuine, genuine + ".", genuine + "=",
		" " + genuine, strings.ReplaceAll(genuine, ".", ".."), "\x00\xff.\x00.\x00",
		b64json(t, header("ES256", tk.ring.Current.Kid)) + ".e30.", // {} payload, no signature
	} {
		wantInvalid(t, tk, g, t0)
	}
}

func TestVerify_Oversized_Rejected(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	p := payload(t0)
	p["pad"] = strings.Repeat("x", MaxTokenBytes)
	wantInvalid(t, tk, forge(t, jwt.SigningMethodES256, tk.ring.Current.signing, header("ES256", tk.ring.Current.Kid), p), t0)
}

func TestVerify_ExpiredBeyondLeeway_ErrExpired(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	c := testClaims(t0)
	tok := sign(t, tk, c)
	got, err := tk.Verify(tok, c.ExpiresAt.Add(Leeway+time.Second))
	if !errors.Is(err, ErrExpired) || errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrExpired only", err)
	}
	if got.SessionID != c.SessionID {
		t.Fatal("expired claims not returned for the refresh path")
	}
}

func TestVerify_ExpiredWithinLeeway_Accepted(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	c := testClaims(t0)
	if _, err := tk.Verify(sign(t, tk, c), c.ExpiresAt.Add(Leeway-time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestVerify_ExpiredAndForged_ErrInvalid(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	other := mustKey(t, AlgES256)
	tok := forge(t, jwt.SigningMethodES256, other.signing, header("ES256", tk.ring.Current.Kid), payload(t0))
	wantInvalid(t, tk, tok, t0.Add(24*time.Hour))
}

func TestVerify_ExpiredAndWrongAudience_ErrInvalid(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	p := payload(t0)
	p["aud"] = "other"
	tok := forge(t, jwt.SigningMethodES256, tk.ring.Current.signing, header("ES256", tk.ring.Current.Kid), p)
	wantInvalid(t, tk, tok, t0.Add(24*time.Hour))
}

func TestVerify_WrongAudience_Rejected(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	other := NewTokens(tk.ring, testIssuer, "another-app")
	wantInvalid(t, tk, sign(t, other, testClaims(t0)), t0)
}

func TestVerify_AudienceArray_Rejected(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	p := payload(t0)
	p["aud"] = []string{testAudience}
	wantInvalid(t, tk, forge(t, jwt.SigningMethodES256, tk.ring.Current.signing, header("ES256", tk.ring.Current.Kid), p), t0)
}

func TestVerify_WrongIssuer_Rejected(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	other := NewTokens(tk.ring, "https://evil.example/auth/v1", testAudience)
	wantInvalid(t, tk, sign(t, other, testClaims(t0)), t0)
}

func TestVerify_MissingExp_Rejected(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	p := payload(t0)
	delete(p, "exp")
	wantInvalid(t, tk, forge(t, jwt.SigningMethodES256, tk.ring.Current.signing, header("ES256", tk.ring.Current.Kid), p), t0)
}

func TestVerify_MissingIat_Rejected(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	p := payload(t0)
	delete(p, "iat")
	wantInvalid(t, tk, forge(t, jwt.SigningMethodES256, tk.ring.Current.signing, header("ES256", tk.ring.Current.Kid), p), t0)
}

func TestVerify_IssuedInFutureBeyondSkew_Rejected(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	c := testClaims(t0.Add(Leeway + time.Second))
	wantInvalid(t, tk, sign(t, tk, c), t0)
}

func TestVerify_IssuedInFutureWithinSkew_Accepted(t *testing.T) {
	tk := newTestTokens(t, AlgES256)
	c := testClaims(t0.Add(Leeway - time.Second))
	if _, err := tk.Verify(sign(t, tk, c), t0); err != nil {
		t.Fatal(err)
	}
}

func TestJWKS_HS256_Empty(t *testing.T) {
	if got := string(newTestTokens(t, AlgHS256).JWKS()); got != `{"keys":[]}` {
		t.Fatalf("JWKS = %s", got)
	}
}

// jwksKey is how an upstream reads our JWKS: only the published fields.
type jwksKey struct {
	Kty, Crv, X, Y, N, E, Kid, Alg, Use string
	KeyOps                              []string `json:"key_ops"`
}

func (k jwksKey) publicKey(t *testing.T) any {
	t.Helper()
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("%s: %v", k.Kid, err)
		}
		return b
	}
	switch k.Kty {
	case "EC":
		if k.Crv != "P-256" {
			t.Fatalf("crv = %q", k.Crv)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, dec(k.X)...), dec(k.Y)...))
		if err != nil {
			t.Fatal(err)
		}
		return pub
	case "OKP":
		if k.Crv != "Ed25519" {
			t.Fatalf("crv = %q", k.Crv)
		}
		return ed25519.PublicKey(dec(k.X))
	case "RSA":
		return &rsa.PublicKey{N: new(big.Int).SetBytes(dec(k.N)), E: int(new(big.Int).SetBytes(dec(k.E)).Int64())}
	}
	t.Fatalf("kty = %q", k.Kty)
	return nil
}

func TestJWKS_PublishesCurrentAndPrevious_VerifiableByUpstream(t *testing.T) {
	for _, pair := range [][2]string{{AlgES256, AlgEdDSA}, {AlgEdDSA, AlgRS256}, {AlgRS256, AlgES256}} {
		t.Run(pair[0]+"+"+pair[1], func(t *testing.T) {
			prev := NewTokens(KeyRing{Current: mustKey(t, pair[1])}, testIssuer, testAudience)
			tk := NewTokens(KeyRing{Current: mustKey(t, pair[0]), Previous: prev.ring.Current}, testIssuer, testAudience)
			var set struct{ Keys []jwksKey }
			if err := json.Unmarshal(tk.JWKS(), &set); err != nil {
				t.Fatal(err)
			}
			if len(set.Keys) != 2 {
				t.Fatalf("%d keys published", len(set.Keys))
			}
			byKid := map[string]jwksKey{}
			for _, k := range set.Keys {
				if k.Use != "sig" || k.Kid == "" || len(k.KeyOps) != 1 || k.KeyOps[0] != "verify" {
					t.Fatalf("key = %+v", k)
				}
				byKid[k.Kid] = k
			}
			for _, signer := range []*Tokens{tk, prev} {
				tok := sign(t, signer, testClaims(t0))
				parsed, err := jwt.Parse(tok, func(tok *jwt.Token) (any, error) {
					k, ok := byKid[tok.Header["kid"].(string)]
					if !ok {
						t.Fatal("token kid not in JWKS")
					}
					if k.Alg != tok.Method.Alg() {
						t.Fatalf("JWKS alg %q, token alg %q", k.Alg, tok.Method.Alg())
					}
					return k.publicKey(t), nil
				}, jwt.WithTimeFunc(func() time.Time { return t0 }))
				if err != nil || !parsed.Valid {
					t.Fatal("upstream could not verify with the JWKS:", err)
				}
			}
		})
	}
}

func TestJWKS_NoPrivateMaterial(t *testing.T) {
	for _, alg := range []string{AlgES256, AlgEdDSA, AlgRS256} {
		var set struct{ Keys []map[string]any }
		if err := json.Unmarshal(newTestTokens(t, alg).JWKS(), &set); err != nil {
			t.Fatal(err)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := set.Keys[0][private]; ok {
				t.Fatalf("%s JWKS publishes %q", alg, private)
			}
		}
	}
}

func benchmarkVerify(b *testing.B, alg string) {
	tk := newTestTokens(b, alg)
	tok := sign(b, tk, testClaims(t0))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := tk.Verify(tok, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyES256(b *testing.B) { benchmarkVerify(b, AlgES256) }
func BenchmarkVerifyEdDSA(b *testing.B) { benchmarkVerify(b, AlgEdDSA) }
func BenchmarkVerifyRS256(b *testing.B) { benchmarkVerify(b, AlgRS256) }
func BenchmarkVerifyHS256(b *testing.B) { benchmarkVerify(b, AlgHS256) }

func BenchmarkSignES256(b *testing.B) {
	tk := newTestTokens(b, AlgES256)
	c := testClaims(t0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}
