package otpgate

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// gatewayUnderTest is real Caddy with otpgate, a real redis-server, the
// fake Plivo and an upstream that echoes what it received.
type gatewayUnderTest struct {
	base      string
	metrics   string // Caddy's Prometheus metrics
	caddyfile string
	redis     *testenv.Redis
	plivo     *testenv.FakePlivo
	upstream  *httptest.Server
}

func startGateway(t *testing.T, extraGlobal, extraSite string) *gatewayUnderTest {
	t.Helper()
	redis := testenv.StartRedis(t)
	plivo := testenv.NewFakePlivo(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "headers": r.Header})
	}))
	t.Cleanup(up.Close)
	port, metricsPort := testenv.FreePort(t), testenv.FreePort(t)
	cfg := fmt.Sprintf(`{
	storage file_system %s
	admin off
	auto_https off
	otpgate {
		store redis %s
		sms plivo {
			auth_id %s
			auth_token %s
			from +14155550100
			api_url %s
			timeout 2s
		}
		create_user true
		# these tests sign up new phones; the default is signup closed
		signup open
		%s
	}
}

http://127.0.0.1:%d {
	route {
		otpgate {
			public /healthz
			%s
		}
		request_header X-Placeholder-Phone {http.auth.user.phone}
		reverse_proxy %s
	}
}

http://127.0.0.1:%d {
	metrics
}
`, t.TempDir(), redis.URL(), plivo.AuthID, plivo.AuthToken, plivo.URL(), extraGlobal, port, extraSite, strings.TrimPrefix(up.URL, "http://"), metricsPort)
	testenv.LoadCaddyfile(t, cfg)
	return &gatewayUnderTest{base: fmt.Sprintf("http://127.0.0.1:%d", port), metrics: fmt.Sprintf("http://127.0.0.1:%d/", metricsPort), caddyfile: cfg, redis: redis, plivo: plivo, upstream: up}
}

func call(t *testing.T, c *http.Client, method, u, body string, hdr ...string) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	var res *http.Response
	var err error
	// Right after a reload Caddy may reset a connection while it swaps
	// listeners (plain reverse_proxy does too); a refused dial never
	// reached the server, so it is safe to try again, and so is a GET or
	// HEAD whose connection was reset or closed.
	for attempt := 0; attempt < 3; attempt++ {
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, u, rd)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err = c.Do(req)
		if err == nil {
			break
		}
		msg := err.Error()
		idempotent := method == http.MethodGet || method == http.MethodHead
		if !strings.Contains(msg, "dial tcp") &&
			!(idempotent && (strings.Contains(msg, "connection reset") || strings.HasSuffix(msg, "EOF"))) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &m)
	return res.StatusCode, res.Header, m
}

func TestCaddy_PhoneLoginThroughPlivoAndRedis_GatesUpstream(t *testing.T) {
	g := startGateway(t, "", "")
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	phone := "+14155550123"

	st, h, _ := call(t, c, "GET", g.base+"/dashboard", "", "Accept", "text/html")
	if st != 302 || !strings.HasPrefix(h.Get("Location"), "/auth/login?return_to=%2Fdashboard") {
		t.Fatalf("unauthenticated browser: %d %s", st, h.Get("Location"))
	}
	st, _, body := call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"`+phone+`"}`)
	if st != 200 || body["masked_phone"] != "+1***-***-0123" {
		t.Fatalf("send: %d %v", st, body)
	}
	msgs := g.plivo.Messages()
	if len(msgs) != 1 || body["message_id"] == "" {
		t.Fatalf("plivo got %d messages", len(msgs))
	}
	m := msgs[0]
	if m.Src != "+14155550100" || !strings.HasSuffix(m.Dst, "14155550123") || m.MessageExpiry != 300 || m.Log != false {
		t.Fatalf("plivo request %+v", m)
	}
	code := g.plivo.LastCode(m.Dst)
	if m.Text != "Your otpgate code is "+code {
		t.Fatalf("text %q", m.Text)
	}
	st, _, tok := call(t, c, "POST", g.base+"/auth/v1/verify", `{"type":"sms","phone":"`+phone+`","token":"`+code+`"}`)
	if st != 200 {
		t.Fatalf("verify %d %v", st, tok)
	}
	access := tok["access_token"].(string)
	st, _, echo := call(t, c, "GET", g.base+"/dashboard", "", "Authorization", "Bearer "+access, "X-Auth-Phone", "+19995550000")
	if st != 200 {
		t.Fatalf("gated request %d %v", st, echo)
	}
	hdrs := echo["headers"].(map[string]any)
	if fmt.Sprint(hdrs["X-Auth-Phone"]) != "[+14155550123]" || fmt.Sprint(hdrs["X-Placeholder-Phone"]) != "[+14155550123]" {
		t.Fatalf("identity headers at the upstream: %v", hdrs)
	}
	if fmt.Sprint(hdrs["X-Auth-User-Id"]) != fmt.Sprint([]any{tok["user"].(map[string]any)["id"]}) {
		t.Fatalf("user id header %v", hdrs["X-Auth-User-Id"])
	}
	if st, _, _ := call(t, c, "GET", g.base+"/healthz", ""); st != 200 {
		t.Fatalf("public path %d", st)
	}
	st, _, jwks := call(t, c, "GET", g.base+"/auth/v1/.well-known/jwks.json", "")
	if st != 200 || len(jwks["keys"].([]any)) == 0 {
		t.Fatalf("jwks %d %v", st, jwks)
	}
}

func TestCaddy_PlivoFailures_502And504(t *testing.T) {
	g := startGateway(t, "", "")
	c := http.DefaultClient
	g.plivo.Fail(testenv.Plivo500Empty)
	st, h, body := call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550123"}`)
	if st != 502 || body["error_code"] != "sms_send_failed" || h.Get("x-sb-error-code") != "sms_send_failed" {
		t.Fatalf("500 empty: %d %v", st, body)
	}
	g.plivo.Fail(testenv.PlivoNoUUID)
	if st, _, body := call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550123"}`); st != 502 {
		t.Fatalf("no uuid: %d %v", st, body)
	}
	// refusals gave the quota and cooldown back: the provider recovered,
	// the same phone may try again at once
	g.plivo.Fail(testenv.PlivoOK)
	if st, _, body := call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550123"}`); st != 200 {
		t.Fatalf("recovered: %d %v", st, body)
	}
	g.plivo.Fail(testenv.PlivoHang)
	if st, _, body := call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550124"}`); st != 504 || body["error_code"] != "provider_timeout" {
		t.Fatalf("hang: %d %v", st, body)
	}
	// after a timeout the message may still arrive, so it keeps counting
	g.plivo.Fail(testenv.PlivoOK)
	if st, _, body := call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550124"}`); st != 429 {
		t.Fatalf("send right after a timeout: %d %v", st, body)
	}
}

func TestCaddy_InboundSTOP_OptsOutUntilSTART(t *testing.T) {
	g := startGateway(t, "otp {\n\t\t\tresend_after 0s\n\t\t}", "")
	c := http.DefaultClient
	inbound := g.base + "/auth/v1/plivo/inbound"
	post := func(text, nonce string, sign bool) int {
		form := url.Values{"From": {"14155550123"}, "To": {"14155550100"}, "Text": {text}, "Type": {"sms"}, "MessageUUID": {nonce}}
		req, _ := http.NewRequest("POST", inbound, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Plivo-Signature-V3-Nonce", nonce)
		sig := g.plivo.SignV3(inbound, nonce, form)
		if !sign {
			sig = "bm90IGEgc2lnbmF0dXJl"
		}
		req.Header.Set("X-Plivo-Signature-V3", sig)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if st := post("STOP", "n-bad", false); st != 403 {
		t.Fatalf("unsigned STOP: %d", st)
	}
	if st, _, _ := call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550123"}`); st != 200 {
		t.Fatalf("a bad signature must change nothing: %d", st)
	}
	if st := post("Stop", "n-1", true); st != 200 {
		t.Fatalf("STOP: %d", st)
	}
	if st := post("Stop", "n-1", true); st != 403 {
		t.Fatalf("replayed nonce: %d", st)
	}
	st, _, body := call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550123"}`)
	if st != 403 || body["error_code"] != "phone_opted_out" {
		t.Fatalf("after STOP: %d %v", st, body)
	}
	if st := post("START", "n-2", true); st != 200 {
		t.Fatalf("START: %d", st)
	}
	if st, _, body := call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550123"}`); st != 200 {
		t.Fatalf("after START: %d %v", st, body)
	}
}

func TestCaddy_CookieSessionInBrowserFlow(t *testing.T) {
	g := startGateway(t, "", "")
	// Go's cookie jar keeps Secure cookies away from http://, as browsers
	// do except on localhost; so the cookies are carried by hand here.
	c := http.DefaultClient
	phone := "+447400123456"
	if st, _, b := call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"`+phone+`"}`, "Origin", g.base, "Sec-Fetch-Site", "same-origin"); st != 200 {
		t.Fatalf("send %d %v", st, b)
	}
	code := g.plivo.LastCode(g.plivo.Messages()[0].Dst)
	req, _ := http.NewRequest("POST", g.base+"/auth/v1/verify", strings.NewReader(`{"type":"sms","phone":"`+phone+`","token":"`+code+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", g.base)
	res, err := c.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("verify %v %v", res, err)
	}
	res.Body.Close()
	var cookies []string
	for _, ck := range res.Cookies() {
		if !ck.Secure || !ck.HttpOnly || !strings.HasPrefix(ck.Name, "__Host-") {
			t.Fatalf("cookie attributes %+v", ck)
		}
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	st, _, echo := call(t, c, "GET", g.base+"/app", "", "Accept", "text/html", "Cookie", strings.Join(cookies, "; "))
	if st != 200 || fmt.Sprint(echo["headers"].(map[string]any)["X-Auth-Phone"]) != "["+phone+"]" {
		t.Fatalf("cookie session: %d %v", st, echo)
	}
}

// The IP limit counts Caddy's client_ip: without trusted_proxies, spoofed
// X-Forwarded-For and X-Real-IP headers do not buy a fresh per-IP budget.
func TestCaddy_IPLimit_IgnoresForwardedHeadersOfUntrustedClients(t *testing.T) {
	g := startGateway(t, "limit ip 2 10m", "")
	c := http.DefaultClient
	for i := 0; i < 3; i++ {
		st, _, b := call(t, c, "POST", g.base+"/auth/v1/otp", fmt.Sprintf(`{"phone":"+1415555012%d"}`, i),
			"X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1), "X-Real-IP", fmt.Sprintf("198.51.100.%d", i+1))
		want := 200
		if i == 2 {
			want = 429
		}
		if st != want {
			t.Fatalf("send %d: %d %v, want %d", i, st, b, want)
		}
	}
}
