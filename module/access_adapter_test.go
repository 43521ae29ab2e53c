package otpgate

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

const (
	listedAdmin   = "+14155550123" // inline: admin ops
	listedNoRoles = "+447400123456"
	fileAdmin     = "+14155550126" // in the users file: admin
	unlisted      = "+14155550130"
)

// Under the default `signup closed` only listed phones sign in: inline and
// from the users file, with their roles at the upstream (X-Auth-Roles and
// {http.auth.user.roles}); a `roles admin` site refuses the others with
// 403 no_access; an unlisted phone asking to be created gets the answer of
// a real send, no SMS, and no code ever verifies.
func TestCaddy_SignupClosed_ListedPhonesAndRoles(t *testing.T) {
	forEachStoreKind(t, func(t *testing.T, storeLine string) {
		global := `users {
			` + listedAdmin + ` admin ops
			` + listedNoRoles + `
			file {env.OTPGATE_TEST_USERS}
		}
		inactivity_timeout 30m`
		g := startAccessGateway(t, storeLine, global, "# the team\n"+fileAdmin+" admin\n")

		// inline, with roles
		tok := g.signIn(t, listedAdmin)
		if tok["expires_in"] != float64(180) {
			t.Errorf("with inactivity_timeout 30m access tokens live a tenth of it: expires_in %v", tok["expires_in"])
		}
		access := tok["access_token"].(string)
		st, _, hdr := gatedGet(t, g.base, "/app", access)
		if st != 200 || hdr.Get("X-Auth-Roles") != "admin,ops" || hdr.Get("X-Placeholder-Roles") != "roles=admin,ops" {
			t.Fatalf("listed admin at the upstream: %d %v", st, hdr)
		}
		// a client cannot claim roles
		_, _, echo := call(t, http.DefaultClient, "GET", g.base+"/app", "", "Authorization", "Bearer "+access, "X-Auth-Roles", "root", "X_Auth_Roles", "root")
		if got := echo["headers"].(map[string]any)["X-Auth-Roles"]; !slices.Equal(anyStrings(got), []string{"admin,ops"}) {
			t.Fatalf("incoming X-Auth-Roles not replaced: %v", got)
		}
		if st, body, _ := gatedGet(t, g.admins, "/app", access); st != 200 {
			t.Fatalf("admin on the roles admin site: %d %v", st, body)
		}

		// inline, without roles: signs in, but not into the admins' site
		access = g.signIn(t, listedNoRoles)["access_token"].(string)
		if st, body, _ := gatedGet(t, g.base, "/app", access); st != 200 {
			t.Fatalf("listed phone without roles: %d %v", st, body)
		}
		st, body, hdr := gatedGet(t, g.admins, "/app", access)
		if st != 403 || body["error_code"] != "no_access" || len(hdr) != 0 {
			t.Fatalf("no admin role on the roles admin site: %d %v (upstream saw %v)", st, body, hdr)
		}

		// from the users file
		access = g.signIn(t, fileAdmin)["access_token"].(string)
		st, _, hdr = gatedGet(t, g.admins, "/app", access)
		if st != 200 || hdr.Get("X-Auth-Roles") != "admin" {
			t.Fatalf("admin from the users file: %d %v", st, hdr)
		}

		// unlisted: create_user true changes nothing
		sent := len(g.plivo.Messages())
		st, _, real := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/otp", `{"phone":"`+listedNoRoles+`"}`)
		if st != 200 {
			t.Fatalf("send to a listed phone: %d %v", st, real)
		}
		sent++
		st, _, fake := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/otp", `{"phone":"`+unlisted+`","create_user":true}`)
		if st != 200 || fake["message_id"] == "" || fake["masked_phone"] != "+1***-***-0130" {
			t.Fatalf("unlisted phone with create_user: %d %v", st, fake)
		}
		if k1, k2 := slices.Sorted(maps.Keys(real)), slices.Sorted(maps.Keys(fake)); !slices.Equal(k1, k2) {
			t.Fatalf("answer shapes differ: %v vs %v", k1, k2)
		}
		if n := len(g.plivo.Messages()); n != sent {
			t.Fatalf("an SMS went to an unlisted phone under signup closed (%d messages, want %d)", n, sent)
		}
		for _, code := range []string{"000000", "123456"} {
			st, _, b := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/verify", `{"type":"sms","phone":"`+unlisted+`","token":"`+code+`"}`)
			if st != 403 || b["error_code"] != "otp_expired" {
				t.Fatalf("verify of an unlisted phone: %d %v", st, b)
			}
		}
		if st, _, b := g.adminCall(t, "GET", "/otpgate/users?phone="+strings.TrimPrefix(unlisted, "+"), ""); st != 200 || b["total"] != float64(0) {
			t.Fatalf("an unlisted phone became a user: %d %v", st, b)
		}
	})
}

func anyStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

// A reload that removes a phone from the inline users list refuses its
// existing session at once, and one that takes a role away refuses the
// sites that need it while the session goes on. `caddy validate` of that
// config beforehand changes nothing: the reload still applies the loss.
func TestCaddy_ReloadRemovingListedPhone_RefusesItsSession(t *testing.T) {
	forEachStoreKind(t, func(t *testing.T, storeLine string) {
		const other = "+14155550124"
		g := startAccessGateway(t, storeLine, "users {\n\t\t\t"+listedAdmin+" admin\n\t\t\t"+other+" admin\n\t\t}", "")
		removed := g.signIn(t, listedAdmin)["access_token"].(string)
		demoted := g.signIn(t, other)["access_token"].(string)
		g.waitFeed(t)
		for _, tok := range []string{removed, demoted} {
			if st, body, _ := gatedGet(t, g.admins, "/app", tok); st != 200 {
				t.Fatalf("before the reload: %d %v", st, body)
			}
		}

		// the new list: listedAdmin gone, other without admin
		oldList := "\t\t\t" + listedAdmin + " admin\n\t\t\t" + other + " admin\n"
		newList := "\t\t\t" + other + "\n"
		next := strings.Replace(g.caddyfile, oldList, newList, 1)
		var cfg caddy.Config
		if err := json.Unmarshal(testenv.AdaptCaddyfile(t, next), &cfg); err != nil {
			t.Fatal(err)
		}
		if err := caddy.Validate(&cfg); err != nil {
			t.Fatalf("validate: %v", err)
		}
		// validating changed nothing that runs
		if st, body, _ := gatedGet(t, g.admins, "/app", removed); st != 200 {
			t.Fatalf("after validate: %d %v", st, body)
		}

		g.reloadWith(t, oldList, newList)
		if st, body, _ := gatedGet(t, g.base, "/app", removed); st != 401 {
			t.Fatalf("session of a phone removed from users: %d %v", st, body)
		}
		st, body, _ := gatedGet(t, g.admins, "/app", demoted)
		if st != 403 || body["error_code"] != "no_access" {
			t.Fatalf("session whose admin role was taken away, on the admins' site: %d %v", st, body)
		}
		st, _, hdr := gatedGet(t, g.base, "/app", demoted)
		if st != 200 || hdr.Get("X-Auth-Roles") != "" {
			t.Fatalf("session whose role was taken away, on the open site: %d %v", st, hdr)
		}
		// and it cannot sign in again
		st, _, _ = call(t, http.DefaultClient, "POST", g.base+"/auth/v1/otp", `{"phone":"`+listedAdmin+`"}`)
		code := g.plivo.LastCode(listedAdmin)
		st2, _, b := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/verify", `{"type":"sms","phone":"`+listedAdmin+`","token":"`+code+`"}`)
		if st != 200 || st2 != 403 {
			t.Fatalf("unlisted phone signing in again: send %d, verify %d %v", st, st2, b)
		}
	})
}

// The list a reload compares against is the one the running config
// applied: a validation in between changes nothing, and a config that is
// stopped because it failed to start gives the running list back.
func TestAppliedList_OnlyStartChangesIt(t *testing.T) {
	var l appliedList
	one := map[string][]string{"+14155550123": {"admin"}, "+14155550124": {}}
	two := map[string][]string{"+14155550124": {}}
	if lost, gen, first := l.apply(one); len(lost) != 0 || gen == 0 || !first {
		t.Fatalf("first apply: %v %d %v", lost, gen, first)
	}
	lost, gen, first := l.apply(two)
	if !slices.Equal(lost, []string{"+14155550123"}) || first {
		t.Fatalf("lost %v, first %v", lost, first)
	}
	// the config that applied two failed to start: one is in force again
	l.unapply(gen)
	if lost, _, _ := l.apply(two); !slices.Equal(lost, []string{"+14155550123"}) {
		t.Fatalf("after a failed start the running list must be compared: %v", lost)
	}
	// a config stopped after its successor started changes nothing
	_, g3, _ := l.apply(one)
	_, _, _ = l.apply(two)
	l.unapply(g3)
	if lost, _, _ := l.apply(two); len(lost) != 0 {
		t.Fatalf("a stale unapply changed the list: %v", lost)
	}
}

// `caddy validate` refuses bad access options with a message naming the
// field: in the JSON itself (phone, role, signup, service key) and once
// placeholders are expanded and the users file is read.
func TestCaddyValidate_AccessOptionsNameTheField(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "users.txt")
	bad := filepath.Join(dir, "bad-users.txt")
	if err := os.WriteFile(good, []byte("+14155550123 admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("# team\n+14155550123 admin\n0044 7400 123456\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OTPGATE_TEST_SHORT_KEY", "short")
	t.Setenv("OTPGATE_TEST_USERS_FILE", good)
	for _, tt := range []struct{ name, app, want string }{
		{"bad phone", `{"users":{"phones":{"4155550123":[]}}}`, `users: "4155550123" is not a phone number in E.164 form`},
		{"bad role", `{"users":{"phones":{"+14155550123":["admin","ops dev"]}}}`, `users: +14155550123: role "ops dev"`},
		{"bad signup", `{"signup":"sometimes"}`, `signup: want open or closed (got "sometimes")`},
		{"short service key", `{"service_key":"0123456789"}`, "service_key: must be at least 32 bytes (got 10)"},
		{"service key expands short", `{"service_key":"{env.OTPGATE_TEST_SHORT_KEY}"}`, "service_key: must be at least 32 bytes (got 5)"},
		{"service key expands to nothing", `{"service_key":"{env.OTPGATE_TEST_SURELY_UNSET}"}`, `service_key: "{env.OTPGATE_TEST_SURELY_UNSET}" expands to nothing`},
		{"negative inactivity", `{"inactivity_timeout":-1}`, "inactivity_timeout: must not be negative"},
		{"users file missing", fmt.Sprintf(`{"users":{"file":%q}}`, filepath.Join(dir, "nope.txt")), "users file: open "},
		{"users file bad line", fmt.Sprintf(`{"users":{"file":%q}}`, bad), "users file " + bad + ": line 3:"},
		{"users file expands to nothing", `{"users":{"file":"{env.OTPGATE_TEST_SURELY_UNSET}"}}`, "users file: \"{env.OTPGATE_TEST_SURELY_UNSET}\" expands to nothing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := validateApp(t, tt.app)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("validate %s: %v\nwant an error containing %q", tt.app, err, tt.want)
			}
		})
	}
	if err := validateApp(t, `{"signup":"closed","users":{"phones":{"+447400123456":[]},"file":"{env.OTPGATE_TEST_USERS_FILE}"},"inactivity_timeout":"30m","service_key":"`+strings.Repeat("k", 32)+`"}`); err != nil {
		t.Fatalf("a good config: %v", err)
	}
	if _, ok := appliedLists.References(appliedListKey); ok {
		t.Fatal("validation left the applied users list held")
	}
}
