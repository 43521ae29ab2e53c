package gateway

import (
	"testing"
)

// encoding/json matches keys to fields with Unicode simple folding ("ſ"
// is "s", the Kelvin sign "K" is "k"): a second key that folds onto a
// field smuggles a value past a proxy that reads the first. Such a body
// is refused, and nothing is sent.
func TestDecodeBody_KeyFoldingOntoAField_Refused(t *testing.T) {
	e := newEnv(t, openMemory(t), func(c *Config) { c.OpenSignup = true; c.CreateUser = false })
	for _, body := range []string{
		`{"phone":"` + alice + `","create_user":false,"create_uſer":true}`,
		`{"phone":"` + alice + `","create_user":false,"create_u\u017fer":true}`,
		`{"create_uſer":true,"phone":"` + alice + `"}`,
		`{"phone":"` + alice + `","Create_User":true}`,
		`{"PHONE":"` + alice + `"}`,
		`{"phone":"` + alice + `","gotrue_meta_security":{"Captcha_Token":"x"}}`,
		`{"phone":"` + alice + `","data":{"name":"a","NAME":"b"}}`,
	} {
		wantError(t, e.do("POST", "/auth/v1/otp", body), 400, "bad_json")
	}
	wantError(t, e.do("POST", "/auth/v1/verify", `{"type":"sms","phone":"`+alice+`","token":"123456","to\u212aen":"654321"}`), 400, "bad_json")
	if e.sender.count() != 0 {
		t.Fatal("a refused body reached the sender")
	}
	// exact spellings, and keys of user metadata that differ only in case
	// from a field name, are fine
	if r := e.do("POST", "/auth/v1/otp", `{"phone":"`+alice+`","create_user":true,"data":{"Phone":"x"}}`); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

func TestFoldName_AsEncodingJSON(t *testing.T) {
	for _, same := range [][2]string{{"create_user", "CREATE_USER"}, {"create_user", "create_uſer"}, {"token", "to\u212aen"}, {"phone", "PhOnE"}} {
		if string(foldName([]byte(same[0]))) != string(foldName([]byte(same[1]))) {
			t.Errorf("%q and %q fold apart", same[0], same[1])
		}
	}
	if string(foldName([]byte("create_user"))) == string(foldName([]byte("createuser"))) {
		t.Error("different keys fold together")
	}
}

// Duplicate keys are refused so that a proxy and the gateway cannot read
// different values; encoding/json matches keys case-insensitively, so
// "phone" and "PHONE" are the same field to it.
func TestDecodeBody_DuplicateKeysDifferingInCase_RefusedNothingSent(t *testing.T) {
	e := newEnv(t, openMemory(t))
	for _, body := range []string{
		`{"phone":"+14155550123","PHONE":"+14155550124"}`,
		`{"phone":"+14155550123","Phone":"+14155550124"}`,
	} {
		r := e.do("POST", "/auth/v1/otp", body)
		if r.status != 400 || r.body["error_code"] != "bad_json" {
			t.Errorf("%s: got %d %s, want 400 bad_json", body, r.status, r.raw)
		}
	}
	if e.sender.count() != 0 {
		t.Fatalf("ambiguous body reached the provider (%d SMS)", e.sender.count())
	}
}
