package otpgate

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/otpgate/otpgate/module/internal/testenv"
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

// signing_alg may be a placeholder: the expanded algorithm is the one
// the key ring is built for.
func TestCaddy_SigningAlgPlaceholder_Expanded(t *testing.T) {
	t.Setenv("OTPGATE_TEST_ALG", "EdDSA")
	cfg := minimalCaddyfile(t, "signing_alg {env.OTPGATE_TEST_ALG}")
	if err := caddy.Load(testenv.AdaptCaddyfile(t, cfg), true); err != nil {
		t.Fatalf("signing_alg {env.X}=EdDSA refused: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
}

// A key option whose placeholder expands to nothing is a config error,
// never a silently generated key: the operator asked for specific keys
// and upstreams verify with them.
func TestCaddy_KeyOptionExpandingToNothing_Refused(t *testing.T) {
	for _, opt := range []string{
		"hmac_secret {env.OTPGATE_TEST_SURELY_UNSET}",
		"signing_key_file {env.OTPGATE_TEST_SURELY_UNSET}",
	} {
		t.Run(strings.Fields(opt)[0], func(t *testing.T) {
			cfg := minimalCaddyfile(t, opt)
			err := caddy.Load(testenv.AdaptCaddyfile(t, cfg), true)
			if err == nil {
				_ = caddy.Stop()
				t.Fatalf("%q with the variable unset was accepted (silently falls back to a generated key)", opt)
			}
		})
	}
}

// minimalCaddyfile is a gateway with the memory store and the given
// global otpgate options in front of a site that answers "ok".
func minimalCaddyfile(t *testing.T, global string) string {
	return fmt.Sprintf(`{
	storage file_system %s
	admin off
	auto_https off
	otpgate {
		%s
	}
}

http://127.0.0.1:%d {
	otpgate
	respond "ok"
}
`, t.TempDir(), global, testenv.FreePort(t))
}
