package otpgate

import (
	"encoding/json"
	"testing"
)

// TestAuthJS_UpdateUserAndPhoneChange drives PUT /user with the unmodified
// @supabase/auth-js client: updateUser({data}) (a merge: null removes a
// key), updateUser({phone}), resend and verifyOtp of type phone_change,
// and a refresh of the session from before the change, which then carries
// the new phone. Both phones are test phones (fixed codes, nothing sent).
func TestAuthJS_UpdateUserAndPhoneChange(t *testing.T) {
	const phone, code, newPhone, newCode = "+12015550100", "123456", "+12015550101", "654321"
	g := startGateway(t, "test_phone "+phone+" "+code+"\n\t\ttest_phone "+newPhone+" "+newCode, "")
	line := runAuthJS(t, "user.mjs", g.base+"/auth/v1", phone, code, newPhone, newCode)
	var res struct {
		OK     bool   `json:"ok"`
		UserID string `json:"userId"`
		Phone  string `json:"phone"`
	}
	if err := json.Unmarshal([]byte(line), &res); err != nil || !res.OK || res.UserID == "" || res.Phone != newPhone[1:] {
		t.Fatalf("unexpected user.mjs result: %v %s", err, line)
	}
}
