package otpgate

import (
	"encoding/json"
	"testing"
)

// TestAuthJS_GoTrueAdminApiManagesUsers drives the Supabase admin routes
// (enabled by service_key) with the unmodified GoTrueAdminApi of the pinned
// @supabase/auth-js: createUser with phone_confirm and app_metadata.roles,
// listUsers, getUserById, updateUserById (roles, ban_duration, unban),
// deleteUser.
func TestAuthJS_GoTrueAdminApiManagesUsers(t *testing.T) {
	const key = "otpgate-test-service-key-0123456789abcdef"
	g := startGateway(t, "service_key "+key, "")
	line := runAuthJS(t, "admin.mjs", g.base+"/auth/v1", key, "+14155550177")
	var res struct {
		OK        bool   `json:"ok"`
		CreatedID string `json:"createdId"`
	}
	if err := json.Unmarshal([]byte(line), &res); err != nil || !res.OK || res.CreatedID == "" {
		t.Fatalf("unexpected admin.mjs result: %v %s", err, line)
	}
}
