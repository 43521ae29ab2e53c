package otpgate

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/caddyserver/certmagic"
	"github.com/spf13/pflag"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// Rotating the key keeps the old one in JWKS, so sessions signed before the
// rotation survive a reload while new tokens use the new key.
func TestRotateKey_JWKSPublishesCurrentAndPrevious(t *testing.T) {
	g := startGateway(t, "test_phone +12015550100 123456\n\t\totp {\n\t\t\tresend_after 0s\n\t\t}", "")
	c := http.DefaultClient
	call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+12015550100"}`)
	_, _, tok := call(t, c, "POST", g.base+"/auth/v1/verify", `{"type":"sms","phone":"+12015550100","token":"123456"}`)
	old := tok["access_token"].(string)
	_, _, before := call(t, c, "GET", g.base+"/auth/v1/.well-known/jwks.json", "")

	cfgPath := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(g.caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	st, done, err := configStorage(cfgPath, "caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if _, ok := st.(*certmagic.FileStorage); !ok {
		t.Fatalf("storage %T, want the config's file_system storage", st)
	}
	code, err := cmdRotateKey(flags(t, "--config", cfgPath, "--adapter", "caddyfile"))
	if err != nil || code != 0 {
		t.Fatalf("rotate: %d %v", code, err)
	}
	reload(t, g)

	_, _, after := call(t, c, "GET", g.base+"/auth/v1/.well-known/jwks.json", "")
	keys := after["keys"].([]any)
	if len(keys) != 2 {
		t.Fatalf("JWKS after rotation has %d keys, want current and previous", len(keys))
	}
	if keys[1].(map[string]any)["kid"] != before["keys"].([]any)[0].(map[string]any)["kid"] {
		t.Fatalf("previous key not published: %v", keys)
	}
	if st, _, _ := call(t, c, "GET", g.base+"/app", "", "Authorization", "Bearer "+old); st != 200 {
		t.Fatalf("a token signed before the rotation was refused: %d", st)
	}
	call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+12015550100"}`)
	_, _, fresh := call(t, c, "POST", g.base+"/auth/v1/verify", `{"type":"sms","phone":"+12015550100","token":"123456"}`)
	if kidOf(t, fresh["access_token"].(string)) != keys[0].(map[string]any)["kid"] {
		t.Fatal("new tokens are not signed with the new key")
	}
}

func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	var hdr struct {
		Kid string `json:"kid"`
	}
	head, _, _ := strings.Cut(jwt, ".")
	seg, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil || json.Unmarshal(seg, &hdr) != nil {
		t.Fatalf("bad token header: %v", err)
	}
	return hdr.Kid
}

func flags(t *testing.T, args ...string) caddycmd.Flags {
	t.Helper()
	fs := pflag.NewFlagSet("otpgate-rotate-key", pflag.ContinueOnError)
	fs.StringP("config", "c", "", "")
	fs.StringP("adapter", "a", "", "")
	fs.String("alg", "ES256", "")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return caddycmd.Flags{FlagSet: fs}
}

// reload loads the gateway's config again, as `caddy reload` would.
func reload(t *testing.T, g *gatewayUnderTest) {
	t.Helper()
	if err := caddy.Load(testenv.AdaptCaddyfile(t, g.caddyfile), true); err != nil {
		t.Fatalf("reload: %v", err)
	}
}
