package otpgate

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// Instances that share Redis but not Caddy's storage would each generate
// their own server secret, and their limits and sessions would silently
// not be shared: such an instance refuses to start, saying why.
func TestCaddy_SharedRedisWithoutSharedStorage_Refused(t *testing.T) {
	g := startGateway(t, "", "")
	other := regexp.MustCompile(`storage file_system \S+`).ReplaceAllString(g.caddyfile, "storage file_system "+t.TempDir())
	err := caddy.Load(testenv.AdaptCaddyfile(t, other), true)
	if err == nil || !strings.Contains(err.Error(), "must share Caddy's storage") {
		t.Fatalf("an instance with its own secret on a shared Redis started: %v", err)
	}
	// the running config is untouched
	if st, _, _ := call(t, http.DefaultClient, "GET", g.base+"/auth/v1/health", ""); st != 200 {
		t.Fatalf("health after the refused load: %d", st)
	}
}
