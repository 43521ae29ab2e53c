package otpgate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// runUsers runs `caddy otpgate users <args>` in-process and returns what
// it printed, or its error (which makes caddy exit non-zero).
func runUsers(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := usersCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func mustRunUsers(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runUsers(t, args...)
	if err != nil {
		t.Fatalf("caddy otpgate users %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func decodeOut(t *testing.T, out string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return m
}

func rolesOf(t *testing.T, user map[string]any) string {
	t.Helper()
	return fmt.Sprint(user["app_metadata"].(map[string]any)["roles"])
}

// Every subcommand of `caddy otpgate users` against the admin endpoint of
// a running Caddy, with both stores; a phone names its user, an error
// carries the endpoint's message.
func TestCLI_OtpgateUsers_EverySubcommand(t *testing.T) {
	forEachStoreKind(t, func(t *testing.T, storeLine string) {
		g := startAccessGateway(t, storeLine, "", "")
		const ada, bob = "+14155550150", "+14155550151"
		at := "--address=" + g.admin

		user := decodeOut(t, mustRunUsers(t, "add", ada, "--role", "ops", "--role", "admin", "--confirm", "--metadata", `{"name":"Ada"}`, at))
		id, _ := user["id"].(string)
		if len(id) != 36 || rolesOf(t, user) != "[admin ops]" || user["phone_confirmed_at"] == nil || fmt.Sprint(user["user_metadata"]) != "map[name:Ada]" {
			t.Fatalf("add: %v", user)
		}
		if _, err := runUsers(t, "add", ada, at); err == nil || !strings.Contains(err.Error(), "HTTP 422 phone_exists: A user with this phone number has already been registered.") {
			t.Fatalf("add twice: %v", err)
		}
		if _, err := runUsers(t, "add", "+1415", at); err == nil || !strings.Contains(err.Error(), "HTTP 400 validation_failed") {
			t.Fatalf("add a bad phone: %v", err)
		}
		user = decodeOut(t, mustRunUsers(t, "add", bob, at))
		if rolesOf(t, user) != "[]" || user["phone_confirmed_at"] != nil {
			t.Fatalf("add without roles: %v", user)
		}

		list := decodeOut(t, mustRunUsers(t, "list", at))
		if list["total"] != float64(2) || len(list["users"].([]any)) != 2 {
			t.Fatalf("list: %v", list)
		}
		list = decodeOut(t, mustRunUsers(t, "list", "--page", "2", "--per-page", "1", at))
		if list["total"] != float64(2) || len(list["users"].([]any)) != 1 {
			t.Fatalf("list page 2: %v", list)
		}
		list = decodeOut(t, mustRunUsers(t, "list", "--phone", ada, at))
		if list["total"] != float64(1) || list["users"].([]any)[0].(map[string]any)["id"] != id {
			t.Fatalf("list --phone: %v", list)
		}
		if _, err := runUsers(t, "list", "--per-page", "5000", at); err == nil || !strings.Contains(err.Error(), "per_page") {
			t.Fatalf("list --per-page 5000: %v", err)
		}

		for _, who := range []string{ada, id, strings.TrimPrefix(ada, "+")} {
			if u := decodeOut(t, mustRunUsers(t, "show", who, at)); u["id"] != id {
				t.Fatalf("show %s: %v", who, u)
			}
		}
		if _, err := runUsers(t, "show", "+14155550159", at); err == nil || !strings.Contains(err.Error(), "no user has the phone +14155550159") {
			t.Fatalf("show an unknown phone: %v", err)
		}
		if _, err := runUsers(t, "show", "not-a-uuid", at); err == nil || !strings.Contains(err.Error(), "HTTP 400 validation_failed: The user id must be a UUID.") {
			t.Fatalf("show a bad id: %v", err)
		}

		if u := decodeOut(t, mustRunUsers(t, "set", ada, "--role", "ops", at)); rolesOf(t, u) != "[ops]" {
			t.Fatalf("set --role ops: %v", u)
		}
		if _, err := runUsers(t, "set", ada, "--role", "bad role", at); err == nil || !strings.Contains(err.Error(), "HTTP 400 validation_failed") {
			t.Fatalf("set a bad role: %v", err)
		}
		if _, err := runUsers(t, "set", ada, at); err == nil || !strings.Contains(err.Error(), "--no-roles") {
			t.Fatalf("set without roles: %v", err)
		}
		if u := decodeOut(t, mustRunUsers(t, "show", ada, at)); rolesOf(t, u) != "[ops]" {
			t.Fatalf("refused sets changed the roles: %v", u)
		}
		if u := decodeOut(t, mustRunUsers(t, "set", ada, "--no-roles", at)); rolesOf(t, u) != "[]" {
			t.Fatalf("set --no-roles: %v", u)
		}

		// sessions and logout
		access := g.signIn(t, ada)["access_token"].(string)
		sessions := decodeOut(t, mustRunUsers(t, "sessions", ada, at))["sessions"].([]any)
		if len(sessions) != 1 || sessions[0].(map[string]any)["ip"] != "127.0.0.1" {
			t.Fatalf("sessions: %v", sessions)
		}
		if out := mustRunUsers(t, "logout", ada, at); out != "otpgate: every session of user "+id+" ended\n" {
			t.Fatalf("logout printed %q", out)
		}
		if st, _, _ := gatedGet(t, g.base, "/app", access); st != 401 {
			t.Fatalf("session after logout: %d", st)
		}

		// ban, unban
		access = g.signIn(t, ada)["access_token"].(string)
		if u := decodeOut(t, mustRunUsers(t, "ban", id, at)); u["banned_until"] == nil {
			t.Fatalf("ban: %v", u)
		}
		if st, _, _ := gatedGet(t, g.base, "/app", access); st != 401 {
			t.Fatalf("session after ban: %d", st)
		}
		if u := decodeOut(t, mustRunUsers(t, "unban", ada, at)); u["banned_until"] != nil {
			t.Fatalf("unban: %v", u)
		}

		// the admin address from --config, as caddy reload finds it
		cfgFile := filepath.Join(t.TempDir(), "Caddyfile")
		if err := os.WriteFile(cfgFile, []byte(g.caddyfile), 0o600); err != nil {
			t.Fatal(err)
		}
		if list := decodeOut(t, mustRunUsers(t, "list", "--config", cfgFile, "--adapter", "caddyfile")); list["total"] != float64(2) {
			t.Fatalf("list --config: %v", list)
		}

		// delete
		if out := mustRunUsers(t, "delete", ada, at); out != "otpgate: user "+id+" deleted\n" {
			t.Fatalf("delete printed %q", out)
		}
		if _, err := runUsers(t, "show", id, at); err == nil || !strings.Contains(err.Error(), "HTTP 404 user_not_found: User not found.") {
			t.Fatalf("show a deleted user: %v", err)
		}
		if _, err := runUsers(t, "delete", id, at); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
			t.Fatalf("delete twice: %v", err)
		}

		// no endpoint there
		if _, err := runUsers(t, "list", fmt.Sprintf("--address=127.0.0.1:%d", testenv.FreePort(t))); err == nil || !strings.Contains(err.Error(), "admin endpoint 127.0.0.1:") {
			t.Fatalf("list against nothing: %v", err)
		}
	})
}

// `caddy otpgate users ...` is registered beside otpgate-rotate-key.
func TestCLI_Registered(t *testing.T) {
	cmds := caddycmd.Commands()
	if _, ok := cmds["otpgate-rotate-key"]; !ok {
		t.Fatal("otpgate-rotate-key is not registered")
	}
	c, ok := cmds["otpgate"]
	if !ok {
		t.Fatal("otpgate is not registered")
	}
	root := &cobra.Command{Use: "otpgate"}
	c.CobraFunc(root)
	users, _, err := root.Find([]string{"users"})
	if err != nil || users.Name() != "users" {
		t.Fatalf("otpgate users: %v", err)
	}
	var names []string
	for _, sub := range users.Commands() {
		names = append(names, sub.Name())
	}
	for _, want := range []string{"list", "add", "show", "set", "ban", "unban", "delete", "logout"} {
		if !slices.Contains(names, want) {
			t.Errorf("caddy otpgate users %s is missing (have %v)", want, names)
		}
	}
}
