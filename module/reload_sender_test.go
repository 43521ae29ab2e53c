package otpgate

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// connCounter answers Plivo's message API and counts the connections its
// clients keep open.
type connCounter struct {
	mu   sync.Mutex
	open map[net.Conn]bool
}

func (c *connCounter) state(conn net.Conn, s http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch s {
	case http.StateNew:
		c.open[conn] = true
	case http.StateClosed, http.StateHijacked:
		delete(c.open, conn)
	}
}

func (c *connCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.open)
}

// Every reload replaces the Plivo sender; the old one must let go of its
// connection to Plivo (an idle keep-alive connection and two goroutines
// until Go's 90 s idle timeout, per reload, before this was fixed: the
// sender's Close was never called).
func TestCaddy_Reload_OldPlivoSendersCloseTheirConnections(t *testing.T) {
	cc := &connCounter{open: map[net.Conn]bool{}}
	plivo := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"api_id":"a","message":"message(s) queued","message_uuid":["m-1"]}`)
	}))
	plivo.Config.ConnState = cc.state
	plivo.Start()
	t.Cleanup(plivo.Close)

	port, storage := testenv.FreePort(t), t.TempDir()
	config := func(i int) string {
		return fmt.Sprintf(`{
	storage file_system %s
	admin off
	auto_https off
	otpgate {
		sms plivo {
			auth_id MAXXXXXXXXXXXXXXXXXX
			auth_token secret-token
			from +14155550100
			api_url %s
		}
		signup open
		create_user true
		limit ip 1000 10m
		app_name reload%d
	}
}

http://127.0.0.1:%d {
	otpgate
	respond "app"
}
`, storage, plivo.URL, i, port)
	}
	testenv.LoadCaddyfile(t, config(0))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	const reloads = 8
	// a connection per request: a reload closes the old server's
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 1; i <= reloads; i++ {
		if err := caddy.Load(testenv.AdaptCaddyfile(t, config(i)), true); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		// one code through each config's sender opens its connection
		if st, err := sendAfterReload(fresh, base, i); err != nil || st != 200 {
			t.Fatalf("send after reload %d: %d %v", i, st, err)
		}
	}
	if err := caddy.Load(testenv.AdaptCaddyfile(t, config(reloads+1)), true); err != nil {
		t.Fatal(err)
	}
	// every sender that sent is now replaced: none may hold a connection
	deadline := time.Now().Add(3 * time.Second)
	for cc.count() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to Plivo still open after %d reloads, want 0 (the old senders were not closed)", cc.count(), reloads)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendAfterReload sends one code through the config that reload i loaded.
// Right after a reload Caddy may reset or close a connection it accepted
// on the old server while swapping listeners; the request may or may not have run,
// so a retry uses another phone rather than meet that phone's cooldown.
func sendAfterReload(c *http.Client, base string, i int) (int, error) {
	var err error
	for attempt := range 3 {
		phone := fmt.Sprintf("+1415555%04d", 200+10*i+attempt)
		var res *http.Response
		res, err = c.Post(base+"/auth/v1/otp", "application/json", strings.NewReader(`{"phone":"`+phone+`"}`))
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "connection reset") || strings.Contains(msg, "dial tcp") || strings.HasSuffix(msg, "EOF") {
				continue
			}
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	return 0, err
}
