package otpgate

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The README documents one xcaddy command for a checkout; .ci/run builds
// with exactly that command, so the documented build is the tested one.
func TestREADME_XcaddyBuildIsTheOneCIRuns(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	cmd := regexp.MustCompile(`(?m)^go run (github\.com/caddyserver/xcaddy/cmd/xcaddy@\S+ build .*)$`).FindSubmatch(readme)
	if cmd == nil {
		t.Fatal("README shows no `go run …/xcaddy@… build` command")
	}
	joined := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(ci), "")
	if !strings.Contains(joined, "go run "+string(cmd[1])) {
		t.Errorf(".ci/run does not run the README's xcaddy command:\n  go run %s", cmd[1])
	}
	if strings.Contains(string(readme), "xcaddy reads xcaddy.json") {
		t.Error("README claims xcaddy reads xcaddy.json; it does not")
	}
}
