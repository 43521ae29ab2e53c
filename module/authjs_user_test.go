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

// TestAuthJS_UpdateUserAndPhoneChange drives PUT /user with the unmodified
// @supabase/auth-js client: updateUser({data}) (a merge: null removes a
// key), updateUser({phone}), resend and verifyOtp of type phone_change,
// and a refresh of the session from before the change, which then carries
// the new phone. Both phones are test phones (fixed codes, nothing sent).
func TestAuthJS_UpdateUserAndPhoneChange(t *testing.T) {
	node := authjsInstalled(t)
	const phone, code, newPhone, newCode = "+12015550100", "123456", "+12015550101", "654321"
	g := startGateway(t, "test_phone "+phone+" "+code+"\n\t\ttest_phone "+newPhone+" "+newCode, "")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "user.mjs", g.base+"/auth/v1", phone, code, newPhone, newCode)
	cmd.Dir = authjsDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("auth-js updateUser against otpgate failed: %v\n%s\n%s", err, stderr.String(), stdout.String())
	}
	var res struct {
		OK     bool   `json:"ok"`
		UserID string `json:"userId"`
		Phone  string `json:"phone"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout.String())), &res); err != nil || !res.OK || res.UserID == "" || res.Phone != newPhone[1:] {
		t.Fatalf("unexpected user.mjs result: %v %s", err, stdout.String())
	}
}
