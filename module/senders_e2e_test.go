package otpgate

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// senderGateway is real Caddy with otpgate on a real redis-server, with
// the sms option given by the test.
type senderGateway struct {
	base  string
	redis *testenv.Redis
}

func startSenderGateway(t *testing.T, sms, extraGlobal string) *senderGateway {
	t.Helper()
	redis := testenv.StartRedis(t)
	port := testenv.FreePort(t)
	testenv.LoadCaddyfile(t, fmt.Sprintf(`{
	storage file_system %s
	admin off
	auto_https off
	otpgate {
		store redis %s
		%s
		create_user true
		signup open
		%s
	}
}

http://127.0.0.1:%d {
	otpgate
	respond "upstream"
}
`, t.TempDir(), redis.URL(), sms, extraGlobal, port))
	return &senderGateway{base: fmt.Sprintf("http://127.0.0.1:%d", port), redis: redis}
}

func plivoVoiceBlock(f *testenv.FakePlivo, extra string) string {
	return fmt.Sprintf(`sms plivo {
			auth_id %s
			auth_token %s
			from +14155550100
			voice_from +14155550111
			api_url %s
			timeout 1s
			%s
		}`, f.AuthID, f.AuthToken, f.URL(), extra)
}

// Voice end to end: /otp with channel voice makes Plivo call the phone;
// Plivo's (signed) fetch of the answer URL gets XML that says the code
// twice, digit by digit, in the request's language; the code verifies
// with type voice; the answer URL works once and a replayed or forged one
// is refused.
func TestCaddy_Voice_CallSpeaksCodeOnce_ReplayAndForgeryRefused(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	g := startSenderGateway(t, plivoVoiceBlock(f, ""), "app_name Acme")
	c := http.DefaultClient
	const phone = "+14155550123"

	st, _, body := call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"`+phone+`","channel":"voice"}`, "Accept-Language", "de-DE,de;q=0.9,en;q=0.5")
	if st != 200 || body["channel"] != "voice" || body["masked_phone"] != "+1***-***-0123" {
		t.Fatalf("send: %d %v", st, body)
	}
	calls := f.Calls()
	if len(calls) != 1 || len(f.Messages()) != 0 {
		t.Fatalf("plivo got %d calls and %d messages", len(calls), len(f.Messages()))
	}
	pc := calls[0]
	if body["message_id"] != pc.RequestUUID || pc.From != "14155550111" || pc.To != "14155550123" ||
		!strings.HasPrefix(pc.AnswerURL, g.base+"/auth/v1/plivo/voice?t=") {
		t.Fatalf("call %+v, answer %v", pc, body)
	}

	// Plivo fetches the answer URL once the phone picks up
	st, doc, err := f.Callback(pc.AnswerURL, pc.AnswerParams(), "nonce-first")
	if err != nil || st != 200 {
		t.Fatalf("answer: %d %s %v", st, doc, err)
	}
	speech, ok := testenv.ParsePlivoXML(doc)
	if !ok || len(speech) != 2 {
		t.Fatalf("answer XML %s", doc)
	}
	code := testenv.SpokenDigits(speech[0].Text)
	if len(code) != 6 || testenv.SpokenDigits(speech[1].Text) != code || speech[0].Language != "de-DE" || !strings.Contains(speech[0].Text, "Acme") {
		t.Fatalf("answer XML %s", doc)
	}
	if strings.Contains(pc.AnswerURL, code) || strings.Contains(string(pc.Raw), code) {
		t.Fatalf("the code travels in clear to Plivo: %s", pc.Raw)
	}

	u, _ := url.Parse(pc.AnswerURL)
	tampered := []byte(u.Query().Get("t"))
	tampered[len(tampered)/3] ^= 'A' ^ 'B'
	forgedURL := g.base + "/auth/v1/plivo/voice?t=" + string(tampered)
	for name, status := range map[string]func() int{
		"replayed nonce":          func() int { s, _, _ := f.Callback(pc.AnswerURL, pc.AnswerParams(), "nonce-first"); return s },
		"replayed URL, new nonce": func() int { s, _, _ := f.Answer(pc); return s },
		"forged token, signed":    func() int { s, _, _ := f.Callback(forgedURL, pc.AnswerParams(), ""); return s },
		"unsigned":                func() int { s, _, _ := call(t, c, "POST", pc.AnswerURL, ""); return s },
		"signed for another phone": func() int {
			p := pc.AnswerParams()
			p.Set("To", "14155550100")
			s, _, _ := f.Callback(pc.AnswerURL, p, "")
			return s
		},
	} {
		if got := status(); got != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, got)
		}
	}

	st, _, tok := call(t, c, "POST", g.base+"/auth/v1/verify", `{"type":"voice","phone":"`+phone+`","token":"`+code+`"}`)
	if st != 200 || tok["access_token"] == nil {
		t.Fatalf("verify: %d %v", st, tok)
	}
}

// Limits, opt-out and provider failures hold for voice as for SMS, and a
// resend with type voice turns a pending SMS code into a call.
func TestCaddy_Voice_LimitsOptOutAndFailuresLikeSMS(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	g := startSenderGateway(t, plivoVoiceBlock(f, ""), "limit phone 2 5m\n\t\totp {\n\t\t\tresend_after 0s\n\t\t}")
	c := http.DefaultClient
	send := func(phone, channel string) (int, map[string]any) {
		st, _, body := call(t, c, "POST", g.base+"/auth/v1/otp", `{"phone":"`+phone+`","channel":"`+channel+`"}`)
		return st, body
	}
	for i := 0; i < 2; i++ {
		if st, body := send("+14155550123", "voice"); st != 200 {
			t.Fatalf("send %d: %d %v", i, st, body)
		}
	}
	if st, body := send("+14155550123", "voice"); st != 429 || body["error_code"] != "over_sms_send_rate_limit" {
		t.Fatalf("phone limit: %d %v", st, body)
	}

	// STOP by SMS stops calls too
	inbound := g.base + "/auth/v1/plivo/inbound"
	stop := url.Values{"From": {"14155550124"}, "To": {"14155550100"}, "Text": {"STOP"}, "Type": {"sms"}}
	if st, _, _ := f.Callback(inbound, stop, ""); st != 200 {
		t.Fatalf("STOP: %d", st)
	}
	calls := len(f.Calls())
	if st, body := send("+14155550124", "voice"); st != 403 || body["error_code"] != "phone_opted_out" || len(f.Calls()) != calls {
		t.Fatalf("opted out: %d %v", st, body)
	}

	f.Fail(testenv.Plivo500)
	if st, body := send("+14155550125", "voice"); st != 502 || body["error_code"] != "sms_send_failed" {
		t.Fatalf("500: %d %v", st, body)
	}
	f.Fail(testenv.PlivoHang)
	if st, body := send("+14155550126", "voice"); st != 504 || body["error_code"] != "provider_timeout" {
		t.Fatalf("hang: %d %v", st, body)
	}
	f.Fail(testenv.PlivoOK)

	// the failed call gave the quota back: an SMS, then a call instead
	if st, body := send("+14155550125", "sms"); st != 200 || body["channel"] != "sms" {
		t.Fatalf("sms after a failed call: %d %v", st, body)
	}
	smsCode := f.LastCode("+14155550125")
	st, _, body := call(t, c, "POST", g.base+"/auth/v1/resend", `{"type":"voice","phone":"+14155550125"}`)
	if st != 200 || body["channel"] != "voice" {
		t.Fatalf("resend by voice: %d %v", st, body)
	}
	all := f.Calls()
	last := all[len(all)-1]
	if last.To != "14155550125" || last.RequestUUID != body["message_id"] {
		t.Fatalf("call %+v for %v", last, body)
	}
	_, doc, _ := f.Answer(last)
	code := testenv.SpokenDigits(doc)
	if len(code) != 12 {
		t.Fatalf("answer %s", doc)
	}
	code = code[:6]
	if code != smsCode {
		// the resend replaced the SMS code
		if st, _, _ := call(t, c, "POST", g.base+"/auth/v1/verify", `{"type":"sms","phone":"+14155550125","token":"`+smsCode+`"}`); st != 403 {
			t.Fatalf("the SMS code still verifies after a resend: %d", st)
		}
	}
	if st, _, tok := call(t, c, "POST", g.base+"/auth/v1/verify", `{"type":"voice","phone":"+14155550125","token":"`+code+`"}`); st != 200 {
		t.Fatalf("verify the spoken code: %d %v", st, tok)
	}
}

func TestCaddy_Voice_NotConfigured_RefusedBeforeAnyQuota(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	g := startSenderGateway(t, fmt.Sprintf("sms plivo {\n\t\t\tauth_id %s\n\t\t\tauth_token %s\n\t\t\tfrom +14155550100\n\t\t\tapi_url %s\n\t\t}",
		f.AuthID, f.AuthToken, f.URL()), "limit ip 1 5m")
	st, _, body := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550123","channel":"voice"}`)
	if st != 400 || body["error_code"] != "validation_failed" || f.Requests() != 0 {
		t.Fatalf("voice without voice_from: %d %v, %d requests", st, body, f.Requests())
	}
	// the refused request used no quota: the one send the IP has is there
	if st, _, body := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550123"}`); st != 200 {
		t.Fatalf("sms: %d %v", st, body)
	}
}

// India DLT: the entity, template and category go with every SMS, and the
// text is the app's message_template, which must match the template
// registered on DLT.
func TestCaddy_DLT_SentWithEverySMS(t *testing.T) {
	f := testenv.NewFakePlivo(t)
	g := startSenderGateway(t, fmt.Sprintf(`sms plivo {
			auth_id %s
			auth_token %s
			from ACMEOT
			api_url %s
			dlt_entity_id 1201159100000000001
			dlt_template_id 1207161500000000001
			dlt_template_category service_implicit
		}`, f.AuthID, f.AuthToken, f.URL()),
		"app_name Acme\n\t\tmessage_template \"{code} is your OTP to sign in to {app}. Do not share it with anyone.\"\n\t\totp {\n\t\t\tresend_after 0s\n\t\t}")
	for _, phone := range []string{"+919812345678", "+919812345678", "+14155550123"} {
		if st, _, body := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/otp", `{"phone":"`+phone+`"}`); st != 200 {
			t.Fatalf("send to %s: %d %v", phone, st, body)
		}
	}
	msgs := f.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages", len(msgs))
	}
	for _, m := range msgs {
		code, rest, _ := strings.Cut(m.Text, " ")
		if m.DLTEntityID != "1201159100000000001" || m.DLTTemplateID != "1207161500000000001" || m.DLTCategory != "service_implicit" ||
			len(code) != 6 || rest != "is your OTP to sign in to Acme. Do not share it with anyone." {
			t.Fatalf("message %s", m.Raw)
		}
	}
}

const webhookDir = "../testdata/webhook"

const webhookFix = "run `npm ci --prefix testdata/webhook` (Node.js 20+) from the repository root"

// webhookReceiver runs testdata/webhook/receiver.mjs: a receiver that
// checks signatures with the standardwebhooks package from npm, not with
// otpgate's code. Its events arrive on the channel.
func webhookReceiver(t *testing.T, secret string) (string, <-chan map[string]any) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found on PATH: install Node.js 20+, then %s", webhookFix)
	}
	installed := filepath.Join(webhookDir, "node_modules", "standardwebhooks", "package.json")
	if _, err := os.Stat(installed); err != nil {
		npm, lerr := exec.LookPath("npm")
		if lerr != nil {
			t.Fatalf("standardwebhooks is not installed and npm is missing: %s", webhookFix)
		}
		if out, err := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--prefix", webhookDir).CombinedOutput(); err != nil {
			t.Fatalf("npm ci in testdata/webhook failed: %v\n%s\n%s", err, out, webhookFix)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, "receiver.mjs", secret)
	cmd.Dir = webhookDir
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	events := make(chan map[string]any, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				events <- ev
			}
		}
		close(events)
	}()
	select {
	case ev, ok := <-events:
		if !ok || ev["listening"] == nil {
			t.Fatalf("receiver did not start: %v", ev)
		}
		return fmt.Sprintf("http://127.0.0.1:%v/send-sms", ev["listening"]), events
	case <-time.After(20 * time.Second):
		t.Fatal("receiver did not start in 20s")
	}
	return "", nil
}

func nextEvent(t *testing.T, events <-chan map[string]any) map[string]any {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver saw no request")
	}
	return nil
}

const hookSecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"

// The webhook sender end to end: the independent verifier accepts the
// signature and gets Supabase's Send SMS hook payload; the code in it
// signs in.
func TestCaddy_Webhook_VerifiedByStandardWebhooksPackage(t *testing.T) {
	hook, events := webhookReceiver(t, hookSecret)
	t.Setenv("OTPGATE_TEST_HOOK_SECRET", hookSecret)
	g := startSenderGateway(t, fmt.Sprintf(`sms webhook {
			url %s
			secret {env.OTPGATE_TEST_HOOK_SECRET}
			timeout 5s
		}`, hook), "")
	const phone = "+14155550123"
	st, _, body := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/otp", `{"phone":"`+phone+`"}`)
	if st != 200 || body["channel"] != "sms" {
		t.Fatalf("send: %d %v", st, body)
	}
	ev := nextEvent(t, events)
	if ev["ok"] != true || ev["method"] != "POST" || ev["id"] != body["message_id"] {
		t.Fatalf("receiver: %v (answer %v)", ev, body)
	}
	payload, _ := ev["payload"].(map[string]any)
	user, _ := payload["user"].(map[string]any)
	smsPart, _ := payload["sms"].(map[string]any)
	code, _ := smsPart["otp"].(string)
	if user["phone"] != "14155550123" || payload["channel"] != "sms" || len(code) != 6 {
		t.Fatalf("payload %v", payload)
	}
	st, _, tok := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/verify", `{"type":"sms","phone":"`+phone+`","token":"`+code+`"}`)
	if st != 200 || tok["access_token"] == nil {
		t.Fatalf("verify: %d %v", st, tok)
	}
	// a channel the webhook does not deliver is refused before anything
	if st, _, body := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550124","channel":"voice"}`); st != 400 {
		t.Fatalf("voice: %d %v", st, body)
	}
}

// A receiver that refuses the signature (here: it holds another secret)
// answers 401: sms_send_failed, and nothing is counted against the phone.
func TestCaddy_Webhook_SignatureRefused_SMSSendFailed(t *testing.T) {
	hook, events := webhookReceiver(t, "whsec_"+strings.Repeat("A", 32))
	g := startSenderGateway(t, fmt.Sprintf("sms webhook {\n\t\t\turl %s\n\t\t\tsecret %s\n\t\t}", hook, hookSecret), "")
	st, _, body := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550123"}`)
	if st != 502 || body["error_code"] != "sms_send_failed" {
		t.Fatalf("send: %d %v", st, body)
	}
	if ev := nextEvent(t, events); ev["ok"] != false {
		t.Fatalf("receiver accepted a signature made with another secret: %v", ev)
	}
}

func TestCaddy_Webhook_FailureAndTimeout(t *testing.T) {
	release := make(chan struct{})
	var mode atomic.Value
	mode.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case "hang":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "500":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	defer srv.Close()
	defer close(release)
	g := startSenderGateway(t, fmt.Sprintf("sms webhook {\n\t\t\turl %s\n\t\t\tsecret %s\n\t\t\ttimeout 500ms\n\t\t}", srv.URL, hookSecret), "")
	mode.Store("500")
	if st, _, body := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550123"}`); st != 502 || body["error_code"] != "sms_send_failed" {
		t.Fatalf("500: %d %v", st, body)
	}
	mode.Store("hang")
	if st, _, body := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550124"}`); st != 504 || body["error_code"] != "provider_timeout" {
		t.Fatalf("hang: %d %v", st, body)
	}
	mode.Store("ok")
	if st, _, body := call(t, http.DefaultClient, "POST", g.base+"/auth/v1/otp", `{"phone":"+14155550123"}`); st != 200 {
		t.Fatalf("202: %d %v", st, body)
	}
}
