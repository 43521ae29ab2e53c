package otpgate

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// authjsDir holds testdata/authjs/compat.mjs and its pinned
// @supabase/auth-js dependency (package.json + package-lock.json).
const authjsDir = "../testdata/authjs"

const authjsFix = "run `npm ci --prefix testdata/authjs` (Node.js 20+) from the repository root"

// TestAuthJS_SupabaseClientWorksUnchanged drives the real gateway with the
// unmodified @supabase/auth-js client from npm: signInWithOtp, verifyOtp
// (a wrong code first, which must be an AuthApiError otp_expired/403),
// getUser, getClaims (checked against the JWKS), refreshSession, signOut,
// and getUser with the signed-out access tokens.
func TestAuthJS_SupabaseClientWorksUnchanged(t *testing.T) {
	const phone, code = "+12015550100", "123456"
	g := startGateway(t, "test_phone "+phone+" "+code, "")
	line := runAuthJS(t, "compat.mjs", g.base+"/auth/v1", phone, code)
	var res struct {
		OK     bool   `json:"ok"`
		AuthJS string `json:"authjs"`
		Verify struct {
			UserID string `json:"userId"`
		} `json:"verifyOtp"`
		Claims struct {
			Sub       string `json:"sub"`
			SessionID string `json:"session_id"`
		} `json:"getClaims"`
		WrongCode struct {
			Code   string `json:"code"`
			Status int    `json:"status"`
		} `json:"wrongCode"`
	}
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatalf("compat.mjs output is not one JSON line: %v\n%s", err, line)
	}
	if !res.OK || res.Verify.UserID == "" || res.Claims.Sub != res.Verify.UserID || res.Claims.SessionID == "" ||
		res.WrongCode.Code != "otp_expired" || res.WrongCode.Status != 403 {
		t.Fatalf("unexpected compat.mjs result: %s", line)
	}
	t.Logf("@supabase/auth-js %s works against otpgate: %s", res.AuthJS, line)
}

// authjsInstalled returns the node binary, installing the pinned client
// from its lock file when it is missing, so the README's one test command
// is enough on a fresh clone.
func authjsInstalled(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found on PATH: install Node.js 20+, then %s", authjsFix)
	}
	installed := filepath.Join(authjsDir, "node_modules", "@supabase", "auth-js", "package.json")
	if _, err := os.Stat(installed); err != nil {
		// install the pinned client from the lock file, so the README's one
		// test command is enough on a fresh clone
		npm, lerr := exec.LookPath("npm")
		if lerr != nil {
			t.Fatalf("@supabase/auth-js is not installed and npm is missing: %s", authjsFix)
		}
		out, err := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--prefix", authjsDir).CombinedOutput()
		if err != nil {
			t.Fatalf("npm ci in testdata/authjs failed: %v\n%s\n%s", err, out, authjsFix)
		}
	}
	if _, err := os.Stat(installed); err != nil {
		t.Fatalf("@supabase/auth-js is not installed in testdata/authjs: %s (%v)", authjsFix, err)
	}

	return node
}

// runAuthJS runs one script of testdata/authjs with node (installing the
// pinned client first) and returns the last line it printed, failing the
// test with everything it wrote when it fails or hangs.
func runAuthJS(t *testing.T, script string, args ...string) string {
	t.Helper()
	node := authjsInstalled(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = authjsDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s timed out\nstdout: %s\nstderr: %s", script, stdout.String(), stderr.String())
	}
	if err != nil {
		t.Fatalf("%s against otpgate failed: %v\n%s\n%s", script, err, stderr.String(), stdout.String())
	}
	line := strings.TrimSpace(stdout.String())
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	return line
}
