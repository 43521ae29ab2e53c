package otpgate

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// signing_key_file selects the algorithm from the key: Ed25519 gives EdDSA,
// RSA gives RS256, P-256 gives ES256; JWKS publishes that key and tokens
// carry its kid.
func TestCaddy_SigningKeyFile_AlgorithmFromKey(t *testing.T) {
	for file, alg := range map[string]string{"ed25519.pem": "EdDSA", "rs256.pem": "RS256", "es256.pem": "ES256"} {
		t.Run(alg, func(t *testing.T) {
			abs, err := filepath.Abs(filepath.Join("..", "testdata", "keys", file))
			if err != nil {
				t.Fatal(err)
			}
			g := startGateway(t, "test_phone +12015550100 123456\n\t\tsigning_key_file "+abs, "")
			c := http.DefaultClient
			_, _, jwks := call(t, c, "GET", g.base+"/auth/v1/.well-known/jwks.json", "")
			keys := jwks["keys"].([]any)
			if len(keys) != 1 || keys[0].(map[string]any)["alg"] != alg {
				t.Fatalf("jwks %v", jwks)
			}
			call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+12015550100"}`)
			_, _, tok := call(t, c, "POST", g.base+"/auth/v1/verify", `{"type":"sms","phone":"+12015550100","token":"123456"}`)
			access, _ := tok["access_token"].(string)
			head, _, _ := strings.Cut(access, ".")
			raw, _ := base64.RawURLEncoding.DecodeString(head)
			var hdr map[string]string
			_ = json.Unmarshal(raw, &hdr)
			if hdr["alg"] != alg || hdr["kid"] != keys[0].(map[string]any)["kid"] {
				t.Fatalf("token header %v", hdr)
			}
			if st, _, _ := call(t, c, "GET", g.base+"/app", "", "Authorization", "Bearer "+access); st != 200 {
				t.Fatalf("gate refused its own %s token: %d", alg, st)
			}
		})
	}
}

// HS256 with hmac_secret: no public keys, tokens still gate.
func TestCaddy_HMACSecret_HS256(t *testing.T) {
	g := startGateway(t, "test_phone +12015550100 123456\n\t\thmac_secret 0123456789abcdef0123456789abcdef-long", "")
	c := http.DefaultClient
	_, _, jwks := call(t, c, "GET", g.base+"/auth/v1/.well-known/jwks.json", "")
	if keys, _ := jwks["keys"].([]any); len(keys) != 0 {
		t.Fatalf("HS256 must publish no keys: %v", jwks)
	}
	call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+12015550100"}`)
	_, _, tok := call(t, c, "POST", g.base+"/auth/v1/verify", `{"type":"sms","phone":"+12015550100","token":"123456"}`)
	if st, _, _ := call(t, c, "GET", g.base+"/app", "", "Authorization", "Bearer "+tok["access_token"].(string)); st != 200 {
		t.Fatalf("HS256 session refused: %d", st)
	}
}
