package gateway

import (
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otpgate/otpgate/module/store"
	"github.com/otpgate/otpgate/module/store/memstore"
)

// The admin routes do every operation of SPEC §6 on both stores.
func TestAdmin_EveryOperation(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		e := newEnv(t, open(t), closedSignup)
		r := e.admin("POST", "/users", `{"phone":"`+bob+`","roles":["ops","admin"],"user_metadata":{"name":"Bob"}}`)
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
		id := r.body["id"].(string)
		roles := r.body["app_metadata"].(map[string]any)["roles"].([]any)
		if len(roles) != 2 || roles[0] != "admin" || r.body["phone_confirmed_at"] != nil {
			t.Fatalf("created user: %s", r.raw)
		}
		wantError(t, e.admin("POST", "/users", `{"phone":"`+bob+`"}`), 422, "phone_exists")

		// an invitation lets the phone in under closed sign-up
		s := e.login(bob)
		if got := strings.Join(tokenRoles(t, accessToken(t, s)), ","); got != "admin,ops" {
			t.Fatalf("invited user's token roles %q", got)
		}

		if r := e.admin("GET", "/users/"+id, ""); r.status != 200 || r.body["phone_confirmed_at"] == nil || r.body["user_metadata"].(map[string]any)["name"] != "Bob" {
			t.Fatalf("show: %d %s", r.status, r.raw)
		}
		e.admin("POST", "/users", `{"phone":"`+carol+`"}`)
		list := e.admin("GET", "/users?per_page=1&page=2", "")
		if list.status != 200 || list.body["total"] != float64(2) || len(list.body["users"].([]any)) != 1 {
			t.Fatalf("list: %d %s", list.status, list.raw)
		}
		if r := e.admin("GET", "/users?phone=%2B14155550125", ""); len(r.body["users"].([]any)) != 1 {
			t.Fatalf("list by phone: %s", r.raw)
		}

		r = e.admin("PATCH", "/users/"+id, `{"user_metadata":{"name":null,"team":"red"},"roles":[]}`)
		if r.status != 200 || len(r.body["app_metadata"].(map[string]any)["roles"].([]any)) != 0 {
			t.Fatalf("patch: %d %s", r.status, r.raw)
		}
		if m := r.body["user_metadata"].(map[string]any); m["team"] != "red" || m["name"] != nil {
			t.Fatalf("metadata merge: %v", m)
		}

		sess := e.admin("GET", "/users/"+id+"/sessions", "")
		list2 := sess.body["sessions"].([]any)
		if sess.status != 200 || len(list2) != 1 || list2[0].(map[string]any)["ip"] != e.ip {
			t.Fatalf("sessions: %d %s", sess.status, sess.raw)
		}
		if r := e.admin("DELETE", "/users/"+id+"/sessions", ""); r.status != 204 {
			t.Fatalf("end sessions: %d %s", r.status, r.raw)
		}
		wantError(t, e.do("GET", "/app", "", bearer(s)...), 401, "no_authorization")
		if r := e.admin("GET", "/users/"+id+"/sessions", ""); len(r.body["sessions"].([]any)) != 0 {
			t.Fatalf("sessions after logout: %s", r.raw)
		}

		if r := e.admin("DELETE", "/users/"+id, ""); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.raw)
		}
		wantError(t, e.admin("GET", "/users/"+id, ""), 404, "user_not_found")
		if r := e.admin("GET", "/users", ""); r.body["total"] != float64(1) {
			t.Fatalf("list after delete: %s", r.raw)
		}
	})
}

// Admin input is input: bad phones, ids, roles and metadata get a clear
// 4xx and change nothing.
func TestAdmin_BadInputChangesNothing(t *testing.T) {
	e := newEnv(t, memstore.New(), closedSignup)
	r := e.admin("POST", "/users", `{"phone":"`+alice+`","roles":["admin"]}`)
	id := r.body["id"].(string)
	before := e.admin("GET", "/users/"+id, "").raw
	big := `{"user_metadata":{"x":"` + strings.Repeat("a", 5000) + `"}}`
	for _, tc := range []struct {
		method, route, body string
		status              int
		code                string
	}{
		{"POST", "/users", `{"phone":"+1415"}`, 400, "validation_failed"},
		{"POST", "/users", `{"phone":"+1415555012x"}`, 400, "validation_failed"},
		{"POST", "/users", `{"phone":"+19005550100"}`, 403, "phone_not_allowed"},
		{"POST", "/users", `{"phone":"` + bob + `","roles":["ad min"]}`, 400, "validation_failed"},
		{"POST", "/users", `{"phone":"` + bob + `","roles":["аdmin"]}`, 400, "validation_failed"}, // Cyrillic а
		{"POST", "/users", `{"phone":"` + bob + `","roles":["` + strings.Repeat("r", 33) + `"]}`, 400, "validation_failed"},
		{"POST", "/users", `{"phone":"` + bob + `","Phone_Confirm":true}`, 400, "bad_json"}, // a look-alike of a field
		{"PATCH", "/users/" + id, big, 400, "validation_failed"},
		{"PATCH", "/users/" + id, `{"user_metadata":[1]}`, 400, "validation_failed"},
		{"PATCH", "/users/" + id, `{"roles":["ok","bad,comma"]}`, 400, "validation_failed"},
		{"PATCH", "/users/" + id, `{"banned":true,"ban_duration":"1h"}`, 400, "validation_failed"},
		{"PATCH", "/users/" + id, `{"ban_duration":"-1h"}`, 400, "validation_failed"},
		{"PATCH", "/users/00000000-0000-7000-8000-000000000000", `{"roles":[]}`, 404, "user_not_found"},
		{"GET", "/users/not-a-uuid", "", 400, "validation_failed"},
		{"GET", "/users/" + strings.ToUpper(id), "", 400, "validation_failed"},
		{"DELETE", "/users/00000000-0000-7000-8000-000000000000", "", 404, "user_not_found"},
		{"GET", "/users?page=0", "", 400, "validation_failed"},
		{"GET", "/users?per_page=5000", "", 400, "validation_failed"},
		{"GET", "/nothing", "", 404, "not_found"},
	} {
		r := e.admin(tc.method, tc.route, tc.body)
		if r.status != tc.status || r.body["error_code"] != tc.code {
			t.Errorf("%s %s %.40s: got %d %s, want %d %s", tc.method, tc.route, tc.body, r.status, r.raw, tc.status, tc.code)
		}
	}
	if after := e.admin("GET", "/users/"+id, "").raw; after != before {
		t.Fatalf("a refused request changed the user:\n%s\n%s", before, after)
	}
	if r := e.admin("GET", "/users", ""); r.body["total"] != float64(1) {
		t.Fatalf("a refused request created a user: %s", r.raw)
	}
}

// The Supabase admin routes exist only with a service key, and only for
// requests that carry it.
func TestSupabaseAdmin_OnlyWithTheServiceKey(t *testing.T) {
	const key = "service-key-0123456789abcdef0123456789"
	none := newEnv(t, memstore.New())
	wantError(t, none.do("GET", "/auth/v1/admin/users", "", "Authorization", "Bearer "+key), 404, "not_found")

	e := newEnv(t, memstore.New(), func(c *Config) { c.ServiceKey = key })
	wantError(t, e.do("GET", "/auth/v1/admin/users", ""), 401, "no_authorization")
	wantError(t, e.do("GET", "/auth/v1/admin/users", "", "Authorization", "Bearer "+key+"x"), 403, "not_admin")
	s := e.login(alice)
	wantError(t, e.do("GET", "/auth/v1/admin/users", "", bearer(s)...), 403, "not_admin")

	auth := []string{"Authorization", "Bearer " + key}
	r := e.do("POST", "/auth/v1/admin/users", `{"phone":"14155550124","phone_confirm":true,"app_metadata":{"roles":["ops"]}}`, auth...)
	if r.status != 201 || r.body["phone_confirmed_at"] == nil {
		t.Fatalf("createUser: %d %s", r.status, r.raw)
	}
	id := r.body["id"].(string)
	r = e.do("PUT", "/auth/v1/admin/users/"+id, `{"ban_duration":"24h"}`, auth...)
	if r.status != 200 || r.body["banned_until"] == nil {
		t.Fatalf("updateUserById ban: %d %s", r.status, r.raw)
	}
	r = e.do("GET", "/auth/v1/admin/users?page=1&per_page=1", "", auth...)
	if r.status != 200 || r.header.Get("X-Total-Count") != "2" || !strings.Contains(r.header.Get("Link"), `rel="next"`) {
		t.Fatalf("listUsers: %d %v %s", r.status, r.header, r.raw)
	}
	r = e.do("DELETE", "/auth/v1/admin/users/"+id, `{"should_soft_delete":false}`, auth...)
	if r.status != 200 || r.body["id"] != id {
		t.Fatalf("deleteUser: %d %s", r.status, r.raw)
	}
}

// One audit line per security event, carrying user and session ids.
func TestAudit_OneLinePerSecurityEvent(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	e := newEnv(t, memstore.New(), func(c *Config) { c.Logger = zap.New(core) })
	s := e.login(alice)
	id := e.userIDOf(alice)
	e.do("POST", "/auth/v1/logout", "", bearer(s)...)
	e.admin("PATCH", "/users/"+id, `{"roles":["ops"]}`)
	e.admin("PATCH", "/users/"+id, `{"banned":true}`)
	e.admin("DELETE", "/users/"+id, "")
	want := []string{"sign_in", "sign_out", "role_change", "ban", "user_deleted"}
	var got []string
	for _, entry := range logs.FilterLoggerName("audit").All() {
		got = append(got, entry.Message)
		f := entry.ContextMap()
		if f["user_id"] != id {
			t.Errorf("%s: user_id %v", entry.Message, f["user_id"])
		}
		if entry.Message == "sign_in" || entry.Message == "sign_out" {
			if f["session_id"] == "" || f["client_ip"] != e.ip || f["phone"] != "+1***-***-0123" {
				t.Errorf("%s: %v", entry.Message, f)
			}
		}
		for _, v := range f {
			if s, ok := v.(string); ok && strings.Contains(s, "4155550123") {
				t.Errorf("%s: full phone in the audit line", entry.Message)
			}
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("audit lines %v, want %v", got, want)
	}
}
