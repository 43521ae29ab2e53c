package otpgate

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Sends, verifies, refusals, provider latency, gate decisions and Plivo
// delivery reports show up in Caddy's Prometheus metrics.
func TestCaddy_MetricsThroughCaddysRegistry(t *testing.T) {
	g := startGateway(t, "", "")
	c := http.DefaultClient
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

	res, err = http.Get(g.metrics)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := string(b)
	for _, want := range []string{
		`otpgate_sends_total{channel="sms",country="US",outcome="sent"} 1`,
		`otpgate_verifies_total{outcome="wrong_code"} 1`,
		`otpgate_refusals_total{reason="otp_expired"}`,
		`otpgate_provider_latency_seconds_count{channel="sms"} 1`,
		`otpgate_gate_decisions_total{decision="denied_no_token"} 1`,
		`otpgate_delivery_reports_total{status="delivered"} 1`,
		`otpgate_revocation_feed_healthy 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
