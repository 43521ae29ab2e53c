package testenv

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// FreePort returns a TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// LoadCaddyfile adapts a Caddyfile and runs it in this process (Caddy is a
// process-wide singleton: tests that use it must not run in parallel).
// The admin API is off and storage is a temp dir unless the Caddyfile
// says otherwise. Caddy is stopped when the test ends.
func LoadCaddyfile(t testing.TB, src string) {
	t.Helper()
	cfg := AdaptCaddyfile(t, src)
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("caddy load: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
}

// AdaptCaddyfile turns a Caddyfile into Caddy JSON, failing on warnings
// that mean a typo.
func AdaptCaddyfile(t testing.TB, src string) []byte {
	t.Helper()
	if !strings.Contains(src, "storage ") {
		src = strings.Replace(src, "{", fmt.Sprintf("{\n\tstorage file_system %s", t.TempDir()), 1)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	cfg, warnings, err := adapter.Adapt([]byte(src), nil)
	if err != nil {
		t.Fatalf("adapt: %v\n%s", err, src)
	}
	for _, w := range warnings {
		t.Logf("adapt warning: %s", w.String())
	}
	// never autosave test configs into the user's Caddy config dir
	var m map[string]any
	if err := json.Unmarshal(cfg, &m); err != nil {
		t.Fatal(err)
	}
	admin, _ := m["admin"].(map[string]any)
	if admin == nil {
		admin = map[string]any{}
	}
	admin["config"] = map[string]any{"persist": false}
	m["admin"] = admin
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
