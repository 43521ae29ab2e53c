package gateway

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseUsers_LinesCommentsAndUnion(t *testing.T) {
	got, err := ParseUsers(strings.NewReader(`
# the team
+14155550123 admin ops   # lead
+447400123456
+14155550123 ops billing
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"+14155550123":  {"admin", "billing", "ops"},
		"+447400123456": {},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestParseUsers_BadLinesNamed(t *testing.T) {
	for in, want := range map[string]string{
		"+14155550123\n4155550124 admin\n": "line 2",
		"+1 415 555 0123\n":                "line 1",
		"+14155550123 ad/min\n":            "line 1",
		"+14155550123 аdmin\n":             "line 1", // Cyrillic а
	} {
		_, err := ParseUsers(strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want one naming %s", in, err, want)
		}
	}
}

// A users file that becomes unreadable or invalid leaves the last good
// list in force; a good file replaces it and reports who lost access.
func TestRoster_ReloadKeepsLastGoodListAndReportsLoss(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users.txt")
	writeFile(t, file, "+14155550123 admin ops\n+14155550124\n")
	r, err := NewRoster(map[string][]string{"+14155550125": {"ops"}}, file)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, file, "+14155550123 admin ops\nnot a phone\n")
	if _, err := r.Reload(); err == nil {
		t.Fatal("an invalid file was accepted")
	}
	if roles, ok := r.Lookup("+14155550123"); !ok || len(roles) != 2 {
		t.Fatal("the last good list was not kept")
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reload(); err == nil {
		t.Fatal("a missing file was accepted")
	}
	writeFile(t, file, "+14155550123 ops\n")
	lost, err := r.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lost, []string{"+14155550123", "+14155550124"}) {
		t.Fatalf("lost %v", lost)
	}
	if _, ok := r.Lookup("+14155550125"); !ok {
		t.Fatal("an inline entry was dropped by a file reload")
	}
	if lost, _ := r.Reload(); lost != nil {
		t.Fatalf("an unchanged file reported %v", lost)
	}
}

func TestValidRole(t *testing.T) {
	for _, ok := range []string{"admin", "ops-team", "billing.read", "org:acme", "A_1"} {
		if !ValidRole(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", "a b", "a,b", "аdmin", "admin\n", strings.Repeat("x", 33), "ad/min"} {
		if ValidRole(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
