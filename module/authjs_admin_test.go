package otpgate

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestAuthJS_GoTrueAdminApiManagesUsers drives the Supabase admin routes
// (enabled by service_key) with the unmodified GoTrueAdminApi of the pinned
// @supabase/auth-js: createUser with phone_confirm and app_metadata.roles,
// listUsers, getUserById, updateUserById (roles, ban_duration, unban),
// deleteUser.
func TestAuthJS_GoTrueAdminApiManagesUsers(t *testing.T) {
	node := authjsInstalled(t)
	const key = "otpgate-test-service-key-0123456789abcdef"
	g := startGateway(t, "service_key "+key, "")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "admin.mjs", g.base+"/auth/v1", key, "+14155550177")
	cmd.Dir = authjsDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("GoTrueAdminApi against otpgate failed: %v\n%s\n%s", err, stderr.String(), stdout.String())
	}
	var res struct {
		OK        bool   `json:"ok"`
		CreatedID string `json:"createdId"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout.String())), &res); err != nil || !res.OK || res.CreatedID == "" {
		t.Fatalf("unexpected admin.mjs result: %v %s", err, stdout.String())
	}
}
