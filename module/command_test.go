package otpgate

import (
	"bytes"
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
	fs.Bool("force", false, "")
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

// A second rotation within access_ttl would retire the key that signed
// live access tokens: refused with a message saying when it is safe and
// how to force it, and nothing changes; --force rotates.
func TestRotateKey_SecondWithinAccessTTL_RefusedUnlessForced(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "Caddyfile")
	caddyfile := "{\n\tstorage file_system " + filepath.Join(dir, "storage") + "\n\totpgate {\n\t\taccess_ttl 30m\n\t}\n}\n"
	if err := os.WriteFile(cfgPath, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	current := filepath.Join(dir, "storage", "otpgate", "keys", "current.pem")
	if code, err := cmdRotateKey(flags(t, "--config", cfgPath, "--adapter", "caddyfile")); err != nil || code != 0 {
		t.Fatalf("first rotation: %d %v", code, err)
	}
	first, _ := os.ReadFile(current)
	code, err := cmdRotateKey(flags(t, "--config", cfgPath, "--adapter", "caddyfile"))
	if err == nil || code == 0 {
		t.Fatal("a second rotation within access_ttl went ahead")
	}
	for _, want := range []string{"refused, nothing was rotated", "access_ttl 30m0s", "--force"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if again, _ := os.ReadFile(current); !bytes.Equal(again, first) {
		t.Fatal("the refused rotation changed the key")
	}
	if code, err := cmdRotateKey(flags(t, "--config", cfgPath, "--adapter", "caddyfile", "--force")); err != nil || code != 0 {
		t.Fatalf("forced rotation: %d %v", code, err)
	}
	if again, _ := os.ReadFile(current); bytes.Equal(again, first) {
		t.Fatal("the forced rotation did not change the key")
	}
}

// With hmac_secret or signing_key_file there is no stored key to rotate:
// the command says so instead of claiming success, and writes nothing.
func TestRotateKey_HMACSecretOrKeyFile_Refused(t *testing.T) {
	for option, want := range map[string]string{
		"hmac_secret 0123456789abcdef0123456789abcdef": "hmac_secret",
		"signing_key_file /etc/otpgate/key.pem":        "signing_key_file /etc/otpgate/key.pem",
	} {
		dir := t.TempDir()
		cfgPath := filepath.Join(dir, "Caddyfile")
		storage := filepath.Join(dir, "storage")
		caddyfile := "{\n\tstorage file_system " + storage + "\n\totpgate {\n\t\t" + option + "\n\t}\n}\n"
		if err := os.WriteFile(cfgPath, []byte(caddyfile), 0o600); err != nil {
			t.Fatal(err)
		}
		code, err := cmdRotateKey(flags(t, "--config", cfgPath, "--adapter", "caddyfile"))
		if err == nil || code == 0 || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "nothing was rotated") {
			t.Errorf("%s: %d %v", option, code, err)
		}
		if _, err := os.Stat(storage); !os.IsNotExist(err) {
			t.Errorf("%s: the refused rotation wrote to storage", option)
		}
	}
}
