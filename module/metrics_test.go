package otpgate

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// Sends, verifies, refusals, provider latency, gate decisions and Plivo
// delivery reports show up in Caddy's Prometheus metrics, with the
// `server` label of Caddy's own HTTP metrics.
func TestCaddy_MetricsThroughCaddysRegistry(t *testing.T) {
	g := startGateway(t, "", "")
	c := http.DefaultClient
	srv := gatewayServer(t, g)
	series := []string{
		`otpgate_sends_total{channel="sms",country="US",outcome="sent",server="` + srv + `"}`,
		`otpgate_verifies_total{outcome="wrong_code",server="` + srv + `"}`,
		`otpgate_refusals_total{reason="otp_expired",server="` + srv + `"}`,
		`otpgate_provider_latency_seconds_count{channel="sms",server="` + srv + `"}`,
		`otpgate_gate_decisions_total{decision="denied_no_token",server="` + srv + `"}`,
		`otpgate_delivery_reports_total{server="` + srv + `",status="delivered"}`,
	}
	before := scrape(t, g.metrics)

	call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550123"}`)
	call(t, c, "POST", g.base+"/auth/v1/verify", `{"type":"sms","phone":"+14155550123","token":"000000"}`)
	call(t, c, "GET", g.base+"/app", "")
	status := g.base + "/auth/v1/plivo/status"
	form := url.Values{"MessageUUID": {"m-1"}, "Status": {"delivered"}, "To": {"14155550123"}, "ErrorCode": {"000"}}
	req, _ := http.NewRequest("POST", status, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Plivo-Signature-V3-Nonce", "nonce-1")
	req.Header.Set("X-Plivo-Signature-V3", g.plivo.SignV3(status, "nonce-1", form))
	res, err := c.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("status callback: %v %v", res, err)
	}
	res.Body.Close()

	after := scrape(t, g.metrics)
	for _, s := range series {
		if d := after[s] - before[s]; d != 1 {
			t.Errorf("%s went up by %v, want 1", s, d)
		}
	}
	if after["otpgate_revocation_feed_healthy"] != 1 {
		t.Error("otpgate_revocation_feed_healthy is not 1")
	}
}

// Refusals are counted under the README's reason names, the error codes
// of the answers: a body that is not JSON is bad_json, a bad phone
// validation_failed.
func TestCaddy_Metrics_RefusalReasonsAreErrorCodes(t *testing.T) {
	g := startGateway(t, "", "")
	c := http.DefaultClient
	before := scrape(t, g.metrics)
	call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":`)
	call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+1"}`)
	after := scrape(t, g.metrics)
	for _, reason := range []string{"bad_json", "validation_failed"} {
		s := `otpgate_refusals_total{reason="` + reason + `",server="` + gatewayServer(t, g) + `"}`
		if d := after[s] - before[s]; d != 1 {
			t.Errorf("%s went up by %v, want 1", s, d)
		}
	}
	for s := range after {
		if strings.Contains(s, `reason="bad_request"`) {
			t.Errorf("a reason that is no error code: %s", s)
		}
	}
}

// `caddy reload` keeps the counters: a counter that restarted at zero
// would read to Prometheus as a counter reset and lose the sends in
// between.
func TestCaddy_Metrics_SurviveReload(t *testing.T) {
	g := startGateway(t, "", "")
	c := http.DefaultClient
	sent := `otpgate_sends_total{channel="sms",country="US",outcome="sent",server="` + gatewayServer(t, g) + `"}`
	call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550123"}`)
	before := scrape(t, g.metrics)[sent]
	if before < 1 {
		t.Fatalf("%s = %v before the reload", sent, before)
	}
	reload(t, g)
	if got := scrape(t, g.metrics)[sent]; got != before {
		t.Fatalf("%s = %v after the reload, want %v (kept)", sent, got, before)
	}
	call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550124"}`)
	if got := scrape(t, g.metrics)[sent]; got != before+1 {
		t.Fatalf("%s = %v after a send following the reload, want %v", sent, got, before+1)
	}
}

// gatewayServer is the name Caddy gives the server of the gateway's site
// (srv0, srv1, ...: the adapter numbers servers by listener address), the
// value of the server label of its metrics.
func gatewayServer(t *testing.T, g *gatewayUnderTest) string {
	t.Helper()
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string `json:"listen"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(testenv.AdaptCaddyfile(t, g.caddyfile), &cfg); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(g.base, "http://"), ":")
	for name, srv := range cfg.Apps.HTTP.Servers {
		for _, l := range srv.Listen {
			if strings.HasSuffix(l, ":"+port) {
				return name
			}
		}
	}
	t.Fatalf("no server listens on %s", port)
	return ""
}

// scrape reads the metrics endpoint into series -> value.
func scrape(t *testing.T, u string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(scrapeText(t, u)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out
}

func scrapeText(t *testing.T, u string) string {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
