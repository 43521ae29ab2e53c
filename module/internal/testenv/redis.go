package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// redisMissing tells how to get the one prerequisite the Redis tests need;
// they fail instead of skipping so that nothing passes untested.
const redisMissing = "redis-server not found on PATH: install it with `apt-get install redis-server` (Debian/Ubuntu) or `brew install redis`"

// redisStartBudget bounds how long a redis-server may take to answer.
const redisStartBudget = 10 * time.Second

// Redis is a private redis-server for one test: its own port and directory,
// nothing saved to disk, never the machine's own Redis on 6379.
type Redis struct {
	t    testing.TB
	bin  string
	port int
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *redisLog
}

// StartRedis starts a redis-server on a free port and stops it when the test
// ends. It fails the test when redis-server is not installed.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(redisMissing)
	}
	r := &Redis{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(r.Stop) // runs before TempDir's removal: cleanups run last first
	var lastErr error
	for range 3 { // a free port can be taken before redis-server binds it
		r.port = FreePort(t)
		if r.port == 6379 {
			continue
		}
		if lastErr = r.start(); lastErr == nil {
			return r
		}
	}
	t.Fatalf("start redis-server: %v", lastErr)
	return nil
}

// Addr is host:port of the server.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// URL is the server's database 0 as a store URL.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// Stop kills the server (as a crash would: clients see their connections
// drop). It is safe to call more than once.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// Restart stops the server if it runs and starts an empty one on the same
// port.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Stop()
	var err error
	deadline := time.Now().Add(redisStartBudget)
	for time.Now().Before(deadline) {
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond) // the old socket may linger a moment
	}
	r.t.Fatalf("restart redis-server on port %d: %v", r.port, err)
}

func (r *Redis) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := exec.Command(r.bin,
		"--port", strconv.Itoa(r.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", r.dir,
		"--daemonize", "no",
	)
	log := &redisLog{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()

	deadline := time.Now().Add(redisStartBudget)
	for {
		if pingRedis(r.Addr()) == nil {
			r.cmd, r.done, r.log = cmd, done, log
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited: %s", log.tail())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server did not answer within %v: %s", redisStartBudget, log.tail())
		}
	}
}

// pingRedis speaks just enough RESP to know the server answers.
func pingRedis(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("ping answered %q", line)
	}
	return nil
}

// redisLog keeps the server's output for the failure message.
type redisLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *redisLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *redisLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf.Bytes()
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
