package otpgate

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// cors_origins on the handler: a list of origins, repeatable, each checked
// where it is written.
func TestAdapt_CORSOrigins(t *testing.T) {
	out, _, err := adapt(t, "Caddyfile", []byte(`:8080 {
	otpgate {
		cors_origins https://app.example.com http://127.0.0.1:5173
		cors_origins https://admin.example.com
	}
}
`))
	if err != nil {
		t.Fatal(err)
	}
	raw := findHandlers(t, out, "otpgate")
	var h Handler
	strictUnmarshal(t, raw[0], &h)
	if strings.Join(h.CORSOrigins, " ") != "https://app.example.com http://127.0.0.1:5173 https://admin.example.com" {
		t.Fatalf("cors_origins = %q", h.CORSOrigins)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	for body, want := range map[string]string{
		":8080 {\n\totpgate {\n\t\tcors_origins\n\t}\n}\n":                                                                "cors_origins: wrong argument count",
		":8080 {\n\totpgate {\n\t\tapp_name x\n\t\tcors_origins https://app.example.com/spa\n\t}\n}\n":                    `cors_origins: "https://app.example.com/spa" is not an origin such as https://app.example.com (no path, query or fragment allowed), at Caddyfile:4`,
		":8080 {\n\totpgate {\n\t\tcors_origins https://ok.example.com *\n\t\tapp_name x\n\t}\n}\n":                       `cors_origins: "*" is not an origin such as https://app.example.com (scheme must be http or https), at Caddyfile:3`,
		":8080 {\n\totpgate {\n\t\tcors_origins https://ok.example.com\n\t\tcors_origins https://*.example.com\n\t}\n}\n": `cors_origins: "https://*.example.com" is not an origin such as https://app.example.com (no wildcards: list each origin), at Caddyfile:4`,
	} {
		_, _, err := adapt(t, "Caddyfile", []byte(body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", body, err, want)
		}
	}
}

// A single-page app served from another origin (another port of
// 127.0.0.1) signs in through the API with credentials in real Chromium:
// the preflights are answered, the answers readable (an error code
// included), and PUT /user works. A page on an origin that is not listed
// cannot make those calls, and its request that needs no preflight is
// refused before it can send a code.
func TestBrowser_CORS_ListedOriginCallsTheAPI(t *testing.T) {
	plivo := testenv.NewFakePlivo(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path})
	}))
	t.Cleanup(up.Close)
	pages := t.TempDir()
	if err := os.WriteFile(filepath.Join(pages, "index.html"), []byte("<!doctype html><title>spa</title><p>single-page app</p>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	api, spa, other := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	spaOrigin := fmt.Sprintf("http://127.0.0.1:%d", spa)
	otherOrigin := fmt.Sprintf("http://127.0.0.1:%d", other)
	testenv.LoadCaddyfile(t, fmt.Sprintf(`{
	admin off
	auto_https off
	otpgate {
		store memory
		sms plivo {
			auth_id %s
			auth_token %s
			from +14155550100
			api_url %s
			timeout 2s
		}
		signup open
		create_user true
	}
}

http://127.0.0.1:%d {
	otpgate {
		cors_origins %s
	}
	reverse_proxy %s
}

http://127.0.0.1:%d, http://127.0.0.1:%d {
	root * %s
	file_server
}
`, plivo.AuthID, plivo.AuthToken, plivo.URL(), api, spaOrigin, strings.TrimPrefix(up.URL, "http://"), spa, other, pages))
	base := fmt.Sprintf("http://127.0.0.1:%d/auth/v1", api)
	const phone = "+14155550123"
	headers := `{"content-type":"application/json","apikey":"anon-key","x-client-info":"supabase-js-web/2.50.0","x-supabase-api-version":"2024-01-01"}`

	browser := testenv.Chromium(t)
	ctx, cancel := chromedp.NewContext(browser)
	defer cancel()
	log := testenv.RecordPage(t, ctx)
	run(t, ctx, chromedp.Navigate(spaOrigin+"/"), chromedp.WaitVisible(chromedp.CSS("p")))

	call := func(js string) map[string]any {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("page script: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			t.Fatalf("page script answered %q", v)
		}
		return m
	}
	sent := call(fmt.Sprintf(`(async () => {
		const base = %q, h = %s, out = {};
		const body = JSON.stringify({phone: %q, data: {}, create_user: true, channel: "sms", gotrue_meta_security: {}});
		let r = await fetch(base + "/otp", {method: "POST", credentials: "include", headers: h, body});
		out.otp = r.status;
		out.masked = (await r.json()).masked_phone;
		r = await fetch(base + "/otp", {method: "POST", credentials: "include", headers: h, body});
		out.again = r.status;
		out.againCode = r.headers.get("x-sb-error-code");
		out.againRetry = r.headers.get("retry-after");
		out.againBody = (await r.json()).code;
		return JSON.stringify(out);
	})()`, base, headers, phone))
	if sent["otp"] != float64(200) || sent["masked"] != "+1***-***-0123" || sent["again"] != float64(429) ||
		sent["againCode"] != "over_sms_send_rate_limit" || sent["againRetry"] == nil || sent["againBody"] != "over_sms_send_rate_limit" {
		t.Fatalf("sends from the listed origin: %v", sent)
	}
	msgs := plivo.Messages()
	if len(msgs) != 1 {
		t.Fatalf("plivo got %d messages, want 1", len(msgs))
	}
	code := plivo.LastCode(msgs[0].Dst)

	signedIn := call(fmt.Sprintf(`(async () => {
		const base = %q, h = %s, out = {};
		let r = await fetch(base + "/verify", {method: "POST", credentials: "include", headers: h,
			body: JSON.stringify({phone: %q, token: %q, type: "sms", gotrue_meta_security: {}})});
		out.verify = r.status;
		const s = await r.json();
		const auth = Object.assign({}, h, {authorization: "Bearer " + s.access_token});
		r = await fetch(base + "/user", {method: "PUT", credentials: "include", headers: auth,
			body: JSON.stringify({data: {from: "spa"}, code_challenge: null, code_challenge_method: null})});
		out.put = r.status;
		out.meta = (await r.json()).user_metadata;
		r = await fetch(base + "/user", {credentials: "include", headers: auth});
		out.get = r.status;
		out.phone = (await r.json()).phone;
		r = await fetch(base + "/token?grant_type=refresh_token", {method: "POST", credentials: "include", headers: h,
			body: JSON.stringify({refresh_token: s.refresh_token})});
		out.refresh = r.status;
		const s2 = await r.json();
		r = await fetch(base + "/logout?scope=local", {method: "POST", credentials: "include",
			headers: Object.assign({}, h, {authorization: "Bearer " + s2.access_token})});
		out.logout = r.status;
		return JSON.stringify(out);
	})()`, base, headers, phone, code))
	if signedIn["verify"] != float64(200) || signedIn["put"] != float64(200) || fmt.Sprint(signedIn["meta"]) != "map[from:spa]" ||
		signedIn["get"] != float64(200) || signedIn["phone"] != phone[1:] || signedIn["refresh"] != float64(200) || signedIn["logout"] != float64(204) {
		t.Fatalf("signed-in calls from the listed origin: %v", signedIn)
	}
	log.AssertNoErrors(t)

	// a page on an origin that is not listed
	run(t, ctx, chromedp.Navigate(otherOrigin+"/"), chromedp.WaitVisible(chromedp.CSS("p")))
	refused := call(fmt.Sprintf(`(async () => {
		const base = %q, h = %s, out = {};
		try {
			await fetch(base + "/otp", {method: "POST", credentials: "include", headers: h, body: JSON.stringify({phone: "+14155550124"})});
			out.preflighted = "reached";
		} catch (e) {
			out.preflighted = "blocked: " + e.name;
		}
		// a "simple" request needs no preflight: the browser sends it, and
		// the server refuses it as cross-site
		await fetch(base + "/otp", {method: "POST", mode: "no-cors", credentials: "include",
			headers: {"content-type": "text/plain"}, body: JSON.stringify({phone: "+14155550125"})});
		out.simple = "sent";
		return JSON.stringify(out);
	})()`, base, headers))
	if refused["preflighted"] != "blocked: TypeError" || refused["simple"] != "sent" {
		t.Fatalf("calls from an origin that is not listed: %v", refused)
	}
	if n := len(plivo.Messages()); n != 1 {
		t.Fatalf("a page on another origin had %d more codes sent", n-1)
	}
}
