package otpgate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// With Redis down, everything the process writes to stderr is Caddy's
// JSON log: go-redis's own complaints included (its default logger
// prints plain text). Lines about a request come from the handler's
// logger namespace and carry the site's host.
//
// Caddy logs to stderr, so the check runs in a child process (this test
// binary again) whose stderr is a pipe, as under systemd or Docker.
func TestCaddy_RedisDown_LogIsJSONOnly(t *testing.T) {
	if os.Getenv("OTPGATE_REDIS_DOWN_CHILD") == "1" {
		redisDownChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCaddy_RedisDown_LogIsJSONOnly$", "-test.count=1")
	cmd.Env = append(os.Environ(), "OTPGATE_REDIS_DOWN_CHILD=1")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	// read the child's stderr until both kinds of line have come, then
	// let it finish (it waits for its stdin to close)
	var (
		lines                  [][]byte
		fromRedis, requestLine bool
		seen                   = make(chan struct{})
		done                   = make(chan struct{})
	)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		signalled := false
		for sc.Scan() {
			line := bytes.Clone(sc.Bytes())
			lines = append(lines, line)
			var entry map[string]any
			if json.Unmarshal(line, &entry) != nil {
				continue
			}
			logger, _ := entry["logger"].(string)
			fromRedis = fromRedis || logger == "otpgate.redis"
			if logger == "http.handlers.otpgate" && entry["msg"] == "auth route failed" {
				if h, _ := entry["host"].(string); strings.HasPrefix(h, "127.0.0.1:") {
					requestLine = true
				}
			}
			if fromRedis && requestLine && !signalled {
				signalled = true
				close(seen)
			}
		}
	}()
	select {
	case <-seen:
	case <-time.After(20 * time.Second):
	}
	_ = stdin.Close()
	<-done
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\nstdout:\n%s", err, stdout.String())
	}

	all := string(bytes.Join(lines, []byte("\n")))
	for n, line := range lines {
		if !json.Valid(line) {
			t.Errorf("stderr line %d is not JSON: %s", n+1, line)
		}
	}
	if !fromRedis {
		t.Errorf("no go-redis line came through Caddy's log (logger otpgate.redis):\n%s", all)
	}
	if !requestLine {
		t.Errorf("no request line with the site host from the handler's logger (http.handlers.otpgate):\n%s", all)
	}
}

// redisDownChild runs Caddy against a Redis that is not there, asks for a
// code (503), and gives the revocation feed time to retry.
func redisDownChild(t *testing.T) {
	port := testenv.FreePort(t)
	down := testenv.FreePort(t) // nothing listens there
	testenv.LoadCaddyfile(t, fmt.Sprintf(`{
	admin off
	auto_https off
	otpgate {
		store redis redis://127.0.0.1:%d/0
	}
}

http://127.0.0.1:%d {
	otpgate
	respond "app"
}
`, down, port))
	res, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/auth/v1/otp", port), "application/json", strings.NewReader(`{"phone":"+14155550123"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("send with Redis down: %d, want 503", res.StatusCode)
	}
	// the revocation feed keeps retrying, and go-redis logs its failed
	// dials, until the parent has seen enough and closes stdin
	_, _ = io.Copy(io.Discard, os.Stdin)
}
