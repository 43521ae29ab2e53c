// Package thirdparty_test shows a sender written outside otpgate: a Caddy
// module in the otpgate.senders namespace that implements sender.Sender
// and caddyfile.Unmarshaler, used from a Caddyfile as `sms pigeon {…}`.
package thirdparty_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/otpgate/otpgate/module"
	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/sender"
)

func init() { caddy.RegisterModule(new(Pigeon)) }

// Pigeon delivers codes by carrier pigeon (into a slice, for the test).
type Pigeon struct {
	// Loft is where the pigeons fly from.
	Loft string `json:"loft"`
	// Birds may fly at once; default 1.
	Birds int `json:"birds,omitempty"`
}

// flights records every delivery, across module instances (each config
// load makes a new one).
var flights struct {
	sync.Mutex
	sent []flight
}

type flight struct {
	loft string
	msg  sender.Message
}

// CaddyModule returns the Caddy module information.
func (*Pigeon) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "otpgate.senders.pigeon", New: func() caddy.Module { return new(Pigeon) }}
}

// Provision applies defaults.
func (p *Pigeon) Provision(caddy.Context) error {
	if p.Birds == 0 {
		p.Birds = 1
	}
	return nil
}

// Validate implements caddy.Validator.
func (p *Pigeon) Validate() error {
	if p.Loft == "" {
		return fmt.Errorf("pigeon: loft is required")
	}
	return nil
}

// Send delivers m.
func (p *Pigeon) Send(_ context.Context, m sender.Message) (sender.Result, error) {
	flights.Lock()
	defer flights.Unlock()
	flights.sent = append(flights.sent, flight{p.Loft, m})
	return sender.Result{MessageID: fmt.Sprintf("pigeon-%d", len(flights.sent))}, nil
}

// Supports reports SMS only.
func (p *Pigeon) Supports(ch string) bool { return ch == sender.SMS }

// UnmarshalCaddyfile reads `sms pigeon { loft <name>; birds <n> }`.
func (p *Pigeon) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // pigeon
	for d.NextBlock(0) {
		switch d.Val() {
		case "loft":
			if !d.Args(&p.Loft) {
				return d.ArgErr()
			}
		case "birds":
			var n string
			if !d.Args(&n) {
				return d.ArgErr()
			}
			if _, err := fmt.Sscanf(n, "%d", &p.Birds); err != nil {
				return d.Errf("pigeon: birds: %v", err)
			}
		default:
			return d.Errf("pigeon: unknown option %q", d.Val())
		}
	}
	return nil
}

var (
	_ sender.Sender         = (*Pigeon)(nil)
	_ caddyfile.Unmarshaler = (*Pigeon)(nil)
)

func adapt(t *testing.T, src string) ([]byte, error) {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	return out, err
}

func TestThirdPartySender_CaddyfileToJSON(t *testing.T) {
	out, err := adapt(t, "{\n\totpgate {\n\t\tsms pigeon {\n\t\t\tloft north\n\t\t\tbirds 3\n\t\t}\n\t}\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			Otpgate struct {
				SMS json.RawMessage `json:"sms"`
			} `json:"otpgate"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if got := string(cfg.Apps.Otpgate.SMS); got != `{"birds":3,"loft":"north","type":"pigeon"}` {
		t.Fatalf("sms = %s", got)
	}
}

func TestThirdPartySender_ItsErrorsPointAtTheLine(t *testing.T) {
	_, err := adapt(t, "{\n\totpgate {\n\t\tsms pigeon {\n\t\t\tloft north\n\t\t\tperch 3\n\t\t}\n\t}\n}\n")
	if err == nil || !strings.Contains(err.Error(), `pigeon: unknown option "perch"`) || !strings.Contains(err.Error(), "Caddyfile:5") {
		t.Fatalf("error = %v", err)
	}
}

// The module's own Validate runs when Caddy loads it (after Provision), as
// for any guest module.
func TestThirdPartySender_ValidatedWhenLoaded(t *testing.T) {
	cfg := testenv.AdaptCaddyfile(t, "{\n\tadmin off\n\totpgate {\n\t\tsms pigeon {\n\t\t\tbirds 2\n\t\t}\n\t}\n}\n")
	var c caddy.Config
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&c); err == nil || !strings.Contains(err.Error(), "pigeon: loft is required") {
		t.Fatalf("validate = %v", err)
	}
}

// Through real Caddy: the code a person signs in with was delivered by
// the third-party module, with the app's message template rendered.
func TestThirdPartySender_DeliversThroughCaddy(t *testing.T) {
	port := testenv.FreePort(t)
	testenv.LoadCaddyfile(t, fmt.Sprintf(`{
	admin off
	auto_https off
	otpgate {
		sms pigeon {
			loft north
		}
		app_name Acme
		signup open
		create_user true
	}
}

http://127.0.0.1:%d {
	otpgate
	respond "upstream"
}
`, port))
	base := fmt.Sprintf("http://127.0.0.1:%d/auth/v1", port)
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		res, err := http.Post(base+path, "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return res.StatusCode, m
	}
	st, body := post("/otp", `{"phone":"+14155550123"}`)
	if st != 200 {
		t.Fatalf("send: %d %v", st, body)
	}
	flights.Lock()
	last := flights.sent[len(flights.sent)-1]
	n := len(flights.sent)
	flights.Unlock()
	if body["message_id"] != fmt.Sprintf("pigeon-%d", n) || last.loft != "north" || last.msg.To != "+14155550123" ||
		last.msg.Channel != sender.SMS || last.msg.Text != "Your Acme code is "+last.msg.Code {
		t.Fatalf("flight %+v, answer %v", last, body)
	}
	if st, body := post("/otp", `{"phone":"+14155550124","channel":"whatsapp"}`); st != 400 {
		t.Fatalf("a channel the module does not support: %d %v", st, body)
	}
	if st, body := post("/verify", `{"type":"sms","phone":"+14155550123","token":"`+last.msg.Code+`"}`); st != 200 || body["access_token"] == nil {
		t.Fatalf("verify: %d %v", st, body)
	}
}
