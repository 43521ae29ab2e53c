package otpgate

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// Every route of admin.api.otpgate on Caddy's admin endpoint, with both
// stores: the engine's status codes and JSON bodies reach the client as
// they are (201, 204, JSON errors), and bad input changes nothing.
func TestCaddy_AdminAPI_EveryUserOperation(t *testing.T) {
	forEachStoreKind(t, func(t *testing.T, storeLine string) {
		t.Setenv("OTPGATE_TEST_SERVICE_KEY", strings.Repeat("k", 40))
		g := startAccessGateway(t, storeLine, "service_key {env.OTPGATE_TEST_SERVICE_KEY}", "")
		const (
			ada   = "+14155550140"
			grace = "+14155550141"
			alan  = "+447400123457"
		)

		st, raw, body := g.adminCall(t, "GET", "/otpgate/users", "")
		if st != 200 || body["total"] != float64(0) || !strings.Contains(raw, `"users":[]`) {
			t.Fatalf("empty list: %d %s", st, raw)
		}

		// create: 201, the user with its roles and metadata
		st, raw, created := g.adminCall(t, "POST", "/otpgate/users", `{"phone":"`+ada+`","roles":["ops","admin"],"user_metadata":{"name":"Ada"}}`)
		if st != 201 {
			t.Fatalf("create: %d %s", st, raw)
		}
		id, _ := created["id"].(string)
		if len(id) != 36 || strings.TrimPrefix(created["phone"].(string), "+") != strings.TrimPrefix(ada, "+") ||
			fmt.Sprint(created["app_metadata"].(map[string]any)["roles"]) != "[admin ops]" ||
			created["user_metadata"].(map[string]any)["name"] != "Ada" {
			t.Fatalf("created user: %s", raw)
		}
		if st, raw, _ := g.adminCall(t, "POST", "/otpgate/users", `{"phone":"`+ada+`"}`); st != 422 || !strings.Contains(raw, `"phone_exists"`) {
			t.Fatalf("second user for one phone: %d %s", st, raw)
		}
		for _, p := range []string{grace, alan} {
			if st, raw, _ := g.adminCall(t, "POST", "/otpgate/users", `{"phone":"`+p+`"}`); st != 201 {
				t.Fatalf("create %s: %d %s", p, st, raw)
			}
		}

		// list: paging and the phone filter
		st, _, body = g.adminCall(t, "GET", "/otpgate/users?page=1&per_page=2", "")
		if st != 200 || body["total"] != float64(3) || len(body["users"].([]any)) != 2 {
			t.Fatalf("page 1: %d %v", st, body)
		}
		first := body["users"].([]any)
		st, _, body = g.adminCall(t, "GET", "/otpgate/users?page=2&per_page=2", "")
		if st != 200 || body["total"] != float64(3) || len(body["users"].([]any)) != 1 {
			t.Fatalf("page 2: %d %v", st, body)
		}
		seen := map[string]bool{}
		for _, u := range append(first, body["users"].([]any)...) {
			seen[u.(map[string]any)["id"].(string)] = true
		}
		if len(seen) != 3 || !seen[id] {
			t.Fatalf("pages do not cover the users once each: %v", seen)
		}
		st, _, body = g.adminCall(t, "GET", "/otpgate/users?phone=%2B"+strings.TrimPrefix(ada, "+"), "")
		if st != 200 || body["total"] != float64(1) || body["users"].([]any)[0].(map[string]any)["id"] != id {
			t.Fatalf("phone filter: %d %v", st, body)
		}
		if st, _, body := g.adminCall(t, "GET", "/otpgate/users?phone=14155550199", ""); st != 200 || body["total"] != float64(0) {
			t.Fatalf("phone filter without a user: %d %v", st, body)
		}

		// show
		st, raw, body = g.adminCall(t, "GET", "/otpgate/users/"+id, "")
		if st != 200 || body["id"] != id || body["banned_until"] != nil {
			t.Fatalf("show: %d %s", st, raw)
		}

		// bad input: refused, nothing changed
		_, before, _ := g.adminCall(t, "GET", "/otpgate/users?per_page=10", "")
		unknown := "00000000-0000-4000-8000-000000000000"
		for _, bad := range []struct {
			method, path, body string
			status             int
			code               string
		}{
			{"POST", "/otpgate/users", `{"phone":"4155550123"}`, 400, "validation_failed"},
			{"POST", "/otpgate/users", `{"phone":"+1415555"}`, 400, "validation_failed"},
			{"POST", "/otpgate/users", `{"phone":"+14155550142","roles":["ad min"]}`, 400, "validation_failed"},
			{"POST", "/otpgate/users", `{"phone":"+14155550142","user_metadata":{"x":"` + strings.Repeat("a", 5000) + `"}}`, 400, "validation_failed"},
			{"POST", "/otpgate/users", `{"phone":`, 400, "bad_json"},
			{"GET", "/otpgate/users?phone=not-a-phone", "", 400, "validation_failed"},
			{"GET", "/otpgate/users?per_page=0", "", 400, "validation_failed"},
			{"GET", "/otpgate/users/" + unknown, "", 404, "user_not_found"},
			{"GET", "/otpgate/users/not-a-uuid", "", 400, "validation_failed"},
			{"PATCH", "/otpgate/users/" + unknown, `{"roles":["ops"]}`, 404, "user_not_found"},
			{"PATCH", "/otpgate/users/not-a-uuid", `{"roles":["ops"]}`, 400, "validation_failed"},
			{"PATCH", "/otpgate/users/" + id, `{"roles":["ops","ad,min"]}`, 400, "validation_failed"},
			{"PATCH", "/otpgate/users/" + id, `{"user_metadata":{"x":"` + strings.Repeat("a", 5000) + `"}}`, 400, "validation_failed"},
			{"PATCH", "/otpgate/users/" + id, `{"banned":"yes"}`, 400, "bad_json"},
			{"DELETE", "/otpgate/users/" + unknown, "", 404, "user_not_found"},
			{"DELETE", "/otpgate/users/NOT-A-UUID", "", 400, "validation_failed"},
			{"GET", "/otpgate/users/" + unknown + "/sessions", "", 404, "user_not_found"},
			{"DELETE", "/otpgate/users/" + unknown + "/sessions", "", 404, "user_not_found"},
			{"GET", "/otpgate/groups", "", 404, "not_found"},
		} {
			st, raw, body := g.adminCall(t, bad.method, bad.path, bad.body)
			if st != bad.status || body["error_code"] != bad.code || body["code"] != float64(bad.status) || body["msg"] == "" {
				t.Errorf("%s %s %.60s: %d %s, want %d %s", bad.method, bad.path, bad.body, st, raw, bad.status, bad.code)
			}
		}
		if _, after, _ := g.adminCall(t, "GET", "/otpgate/users?per_page=10", ""); after != before {
			t.Fatalf("bad requests changed the users:\nbefore %s\nafter  %s", before, after)
		}

		// patch: roles, metadata (merged), ban and unban
		st, raw, body = g.adminCall(t, "PATCH", "/otpgate/users/"+id, `{"roles":["ops"],"user_metadata":{"team":"infra"}}`)
		if st != 200 || fmt.Sprint(body["app_metadata"].(map[string]any)["roles"]) != "[ops]" ||
			fmt.Sprint(body["user_metadata"]) != "map[name:Ada team:infra]" {
			t.Fatalf("patch roles and metadata: %d %s", st, raw)
		}

		// sessions: an invited user signs in under signup closed
		access := g.signIn(t, ada)["access_token"].(string)
		if st, _, hdr := gatedGet(t, g.base, "/app", access); st != 200 || hdr.Get("X-Auth-Roles") != "ops" {
			t.Fatalf("invited user at the upstream: %d %v", st, hdr)
		}
		st, raw, body = g.adminCall(t, "GET", "/otpgate/users/"+id+"/sessions", "")
		list, _ := body["sessions"].([]any)
		if st != 200 || len(list) != 1 {
			t.Fatalf("sessions: %d %s", st, raw)
		}
		s := list[0].(map[string]any)
		if s["id"] == "" || s["created_at"] == nil || s["ip"] != "127.0.0.1" || s["user_agent"] != "Go-http-client/1.1" {
			t.Fatalf("session: %v", s)
		}
		if _, ok := s["refreshed_at"]; !ok {
			t.Fatalf("session without refreshed_at: %v", s)
		}
		st, raw, _ = g.adminCall(t, "DELETE", "/otpgate/users/"+id+"/sessions", "")
		if st != 204 || raw != "" {
			t.Fatalf("end sessions: %d %q", st, raw)
		}
		if st, _, _ := gatedGet(t, g.base, "/app", access); st != 401 {
			t.Fatalf("session ended by the admin still passes: %d", st)
		}
		if st, raw, body := g.adminCall(t, "GET", "/otpgate/users/"+id+"/sessions", ""); st != 200 || len(body["sessions"].([]any)) != 0 {
			t.Fatalf("sessions after logout: %d %s", st, raw)
		}

		// ban ends sessions; unban lifts it
		access = g.signIn(t, ada)["access_token"].(string)
		st, raw, body = g.adminCall(t, "PATCH", "/otpgate/users/"+id, `{"banned":true}`)
		if st != 200 || body["banned_until"] == nil {
			t.Fatalf("ban: %d %s", st, raw)
		}
		if st, _, _ := gatedGet(t, g.base, "/app", access); st != 401 {
			t.Fatalf("session of a banned user passes: %d", st)
		}
		sent := len(g.plivo.Messages())
		if st, _, _ := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/otp", `{"phone":"`+ada+`"}`); st != 200 || len(g.plivo.Messages()) != sent {
			t.Fatalf("a banned user got an SMS (send %d)", st)
		}
		st, raw, body = g.adminCall(t, "PATCH", "/otpgate/users/"+id, `{"banned":false}`)
		if st != 200 || body["banned_until"] != nil {
			t.Fatalf("unban: %d %s", st, raw)
		}
		access = g.signIn(t, ada)["access_token"].(string)

		// the Supabase admin routes exist with the service key
		st, _, body = call(t, http.DefaultClient, "GET", g.base+"/auth/v1/admin/users/"+id, "", "Authorization", "Bearer "+strings.Repeat("k", 40))
		if st != 200 || body["id"] != id {
			t.Fatalf("GoTrue admin route with the service key: %d %v", st, body)
		}
		if st, _, _ := call(t, http.DefaultClient, "GET", g.base+"/auth/v1/admin/users/"+id, "", "Authorization", "Bearer "+strings.Repeat("x", 40)); st != 403 {
			t.Fatalf("GoTrue admin route with another key: %d", st)
		}

		// delete: 204, then 404; its session is refused
		st, raw, _ = g.adminCall(t, "DELETE", "/otpgate/users/"+id, "")
		if st != 204 || raw != "" {
			t.Fatalf("delete: %d %q", st, raw)
		}
		if st, _, body := g.adminCall(t, "GET", "/otpgate/users/"+id, ""); st != 404 || body["error_code"] != "user_not_found" {
			t.Fatalf("deleted user: %d %v", st, body)
		}
		if st, _, _ := g.adminCall(t, "DELETE", "/otpgate/users/"+id, ""); st != 404 {
			t.Fatalf("second delete: %d", st)
		}
		if st, _, _ := gatedGet(t, g.base, "/app", access); st != 401 {
			t.Fatalf("session of a deleted user passes: %d", st)
		}
		if st, _, body := g.adminCall(t, "GET", "/otpgate/users", ""); st != 200 || body["total"] != float64(2) {
			t.Fatalf("after delete: %d %v", st, body)
		}
	})
}

// Without an otpgate app in the running config the routes answer 404 JSON,
// and asking does not create one.
func TestCaddy_AdminAPI_NotConfigured(t *testing.T) {
	adminPort := testenv.FreePort(t)
	testenv.LoadCaddyfile(t, fmt.Sprintf(`{
	storage file_system %s
	admin 127.0.0.1:%d
	auto_https off
}

http://127.0.0.1:%d {
	respond "no otpgate here"
}
`, t.TempDir(), adminPort, testenv.FreePort(t)))
	g := &accessGateway{admin: fmt.Sprintf("127.0.0.1:%d", adminPort)}
	for range 2 {
		st, raw, body := g.adminCall(t, "GET", "/otpgate/users", "")
		if st != 404 || body["error_code"] != "not_found" || !strings.Contains(raw, "not configured") {
			t.Fatalf("otpgate not configured: %d %s", st, raw)
		}
	}
	if _, ok := appliedLists.References(appliedListKey); ok {
		t.Fatal("an admin request provisioned the otpgate app")
	}
}
