package otpgate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/adapt")

const adaptDir = "../testdata/adapt"

// adapt runs the Caddyfile adapter exactly as `caddy adapt` does.
func adapt(t testing.TB, name string, body []byte) ([]byte, []caddyconfig.Warning, error) {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("caddyfile adapter not registered")
	}
	return adapter.Adapt(body, map[string]any{"filename": name})
}

func TestAdapt_Golden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(adaptDir, "*.caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("found %d golden Caddyfiles in %s, want at least 5", len(files), adaptDir)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".caddyfile")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			out, warnings, err := adapt(t, filepath.Base(file), body)
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			for _, w := range warnings {
				t.Errorf("adapt warning: %s", w)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')

			golden := strings.TrimSuffix(file, ".caddyfile") + ".json"
			if *update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./module/ -run TestAdapt_Golden -update)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("adapted JSON differs from %s (rerun with -update if intended)\ngot:\n%s", golden, pretty.Bytes())
			}
		})
	}
}

// TestAdapt_FullConfig_RoundTrips checks that every key the adapter writes
// is a field of App or Handler, and that nothing is lost on the way back.
func TestAdapt_FullConfig_RoundTrips(t *testing.T) {
	body, err := os.ReadFile(filepath.Join(adaptDir, "full_global.caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := adapt(t, "full_global.caddyfile", body)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}

	var app App
	strictUnmarshal(t, cfg.Apps["otpgate"], &app)
	want := App{
		Store: &StoreConfig{Type: "memory"},
		SMS: smsJSON("plivo", &PlivoConfig{
			AuthID:              "{env.PLIVO_AUTH_ID}",
			AuthToken:           "{env.PLIVO_AUTH_TOKEN}",
			From:                "+14155550100",
			APIURL:              "https://api.plivo.com/",
			StatusURL:           "https://app.example.com/auth/v1/plivo/status",
			Timeout:             caddy.Duration(10e9),
			WhatsAppTemplate:    &WhatsAppTemplate{Name: "otp_login", Language: "en_US"},
			VoiceFrom:           "+14155550111",
			DLTEntityID:         "1201159100000000001",
			DLTTemplateID:       "1207161500000000001",
			DLTTemplateCategory: "service_implicit",
		}),
		OTP:        &OTPConfig{Length: 8, TTL: caddy.Duration(300e9), MaxAttempts: 5, ResendAfter: new(caddy.Duration(0))},
		PhoneLimit: &LimitConfig{Events: 3, Window: caddy.Duration(300e9)},
		IPLimit:    &LimitConfig{Events: 10, Window: caddy.Duration(600e9)},
		Countries:  []string{"US", "GB", "CA", "AU", "DE"},
		TestPhones: map[string]string{"+12015550100": "12345678", "+442071838750": "87654321"},
		CreateUser: true,
		Captcha: &CaptchaConfig{Provider: "turnstile", Secret: "{env.TURNSTILE_SECRET}",
			VerifyURL: "https://captcha.example.com/siteverify"},
		SigningKeyFile:       "/etc/otpgate/signing.pem",
		SigningAlg:           "EdDSA",
		AccessTTL:            caddy.Duration(3600e9),
		RefreshTTL:           caddy.Duration(720 * 3600e9),
		RefreshReuseInterval: new(caddy.Duration(0)),
		CookieDomain:         "example.com",
		AppName:              "Example App",
		MessageTemplate:      "{code} is your {app} code",
		Issuer:               "https://auth.example.com",
		Audience:             "example-api",
		PublicURL:            "https://app.example.com",
		Signup:               "open",
		Users: &UsersConfig{
			Phones: map[string][]string{"+14155550123": {"admin", "billing", "ops"}, "+447400123456": {}},
			File:   "/etc/otpgate/users.txt",
		},
		InactivityTimeout: caddy.Duration(30 * 60e9),
		ServiceKey:        "{env.OTPGATE_SERVICE_KEY}",
	}
	if !reflect.DeepEqual(app, want) {
		t.Errorf("app:\n got %+v\nwant %+v", app, want)
	}
	if err := app.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	again, err := json.Marshal(app)
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, again, cfg.Apps["otpgate"]) {
		t.Errorf("app JSON changed on round trip:\n got %s\nwant %s", again, cfg.Apps["otpgate"])
	}

	raw := findHandlers(t, out, "otpgate")
	if len(raw) != 1 {
		t.Fatalf("found %d otpgate handlers, want 1", len(raw))
	}
	var h Handler
	strictUnmarshal(t, raw[0], &h)
	wantH := Handler{
		APIPrefix:     "/api/auth",
		LoginPath:     "/signin",
		Public:        []string{"/healthz", "/assets/*", "/favicon.ico"},
		Gate:          new(true),
		AppName:       "Example Site",
		AccentColor:   "#4f46e5",
		LoginTemplate: "/etc/otpgate/login.html",
		Roles:         []string{"admin", "ops", "billing"},
	}
	if !reflect.DeepEqual(h, wantH) {
		t.Errorf("handler:\n got %+v\nwant %+v", h, wantH)
	}
	if err := h.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// strictUnmarshal decodes like Caddy would, but refuses unknown fields.
func strictUnmarshal(t *testing.T, raw []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, raw, err)
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

// findHandlers returns every handler object named name in the adapted
// config, without its "handler" key, in document order.
func findHandlers(t *testing.T, config []byte, name string) []json.RawMessage {
	t.Helper()
	var root any
	if err := json.Unmarshal(config, &root); err != nil {
		t.Fatal(err)
	}
	var found []json.RawMessage
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == name {
				delete(v, "handler")
				b, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				found = append(found, b)
				return
			}
			for _, k := range slices.Sorted(maps.Keys(v)) {
				walk(v[k])
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(root)
	return found
}

// handlerNames lists the handlers of the adapted config in the order a
// request meets them.
func handlerNames(t *testing.T, config []byte) []string {
	t.Helper()
	var names []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if h, ok := v["handler"].(string); ok {
				names = append(names, h)
			}
			// "routes" holds a subroute's handlers; "handle" a route's.
			for _, k := range []string{"routes", "handle"} {
				walk(v[k])
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	var root struct {
		Apps struct {
			HTTP struct {
				Servers map[string]any `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(config, &root); err != nil {
		t.Fatal(err)
	}
	for _, srv := range root.Apps.HTTP.Servers {
		walk(srv)
	}
	return names
}

func TestDirective_OrderedWithoutOrderOption(t *testing.T) {
	// Written in the reverse of the order a request must meet them.
	caddyfile := `:8080 {
	reverse_proxy localhost:3000
	encode gzip
	request_header X-User-Id {http.auth.user.id}
	otpgate
	basic_auth {
		admin $2a$14$Zkx19XLiW6VYouLHR5NmfOFU0z2GTNmpkT/5qqR7hx4IjWJPDhjvG
	}
	rewrite /old /new
}
`
	out, _, err := adapt(t, "Caddyfile", []byte(caddyfile))
	if err != nil {
		t.Fatal(err)
	}
	got := handlerNames(t, out)
	want := []string{"rewrite", "authentication", "otpgate", "headers", "encode", "reverse_proxy"}
	if !slices.Equal(got, want) {
		t.Errorf("handler order = %v, want %v", got, want)
	}
}

func TestAdapt_BadCaddyfile_NamesTheOption(t *testing.T) {
	global := func(lines string) string {
		return "{\n\totpgate {\n" + lines + "\n\t}\n}\n\n:8080 {\n\totpgate\n}\n"
	}
	site := func(lines string) string {
		return ":8080 {\n\totpgate {\n" + lines + "\n\t}\n}\n"
	}
	tests := []struct {
		name, caddyfile, want string
	}{
		{"global argument", "{\n\totpgate memory\n}\n", `otpgate: unexpected argument "memory"`},
		{"unknown option", global("frobnicate 1"), `otpgate: unknown option "frobnicate"`},
		{"duplicate option", global("app_name a\napp_name b"), "app_name: already specified"},
		{"store without type", global("store"), "store: wrong argument count"},
		{"store unknown type", global("store mongo mongodb://x"), `store: unknown type "mongo"`},
		{"store redis without url", global("store redis"), "store redis: wrong argument count"},
		{"store memory with url", global("store memory redis://x"), `store memory: unexpected argument "redis://x"`},
		{"store redis bad scheme", global("store redis http://x"), "store redis: url scheme must be"},
		{"sms without type", global("sms"), "sms: wrong argument count"},
		{"sms unknown sender", global("sms pigeon"), `sms: unknown sender "pigeon"`},
		{"sms console with block", global("sms console {\nfrom x\n}"), "sms console: unexpected block"},
		{"sms plivo unknown option", global("sms plivo {\nbogus 1\n}"), `sms plivo: unknown option "bogus"`},
		{"sms plivo timeout", global("sms plivo {\ntimeout soon\n}"), `sms plivo timeout: invalid duration "soon"`},
		{"sms plivo whatsapp args", global("sms plivo {\nwhatsapp_template otp\n}"), "sms plivo whatsapp_template: want 2 arguments, got 1"},
		{"sms plivo from twice", global("sms plivo {\nfrom a\nfrom b\n}"), "sms plivo from: already specified"},
		{"sms plivo both senders", global("sms plivo {\nauth_id a\nauth_token b\nfrom +14155550100\npowerpack_uuid u\n}"), "sms plivo: exactly one of from and powerpack_uuid"},
		{"otp argument", global("otp 6"), `otp: unexpected argument "6"`},
		{"otp unknown option", global("otp {\ncolour blue\n}"), `otp: unknown option "colour"`},
		{"otp length not a number", global("otp {\nlength six\n}"), `otp length: invalid integer "six"`},
		{"otp length range", global("otp {\nlength 4\n}"), "otp length: must be 6..10"},
		{"otp ttl duration", global("otp {\nttl 5\n}"), `otp ttl: invalid duration "5"`},
		{"otp resend_after missing", global("otp {\nresend_after\n}"), "otp resend_after: wrong argument count"},
		{"limit arg count", global("limit phone 3"), "limit: want `limit phone|ip <events> <window>`, got 2 arguments"},
		{"limit unknown key", global("limit email 3 5m"), `limit: unknown key "email"`},
		{"limit events", global("limit phone three 5m"), `limit phone: invalid events "three"`},
		{"limit window", global("limit ip 3 soon"), `limit ip: invalid window "soon"`},
		{"limit zero", global("limit phone 0 5m"), "limit phone: events must be > 0"},
		{"limit twice", global("limit ip 1 1m\nlimit ip 2 2m"), "limit ip: already specified"},
		{"countries empty", global("countries"), "countries: wrong argument count"},
		{"countries unknown", global("countries US XX"), `countries: unknown region "XX"`},
		{"test_phone args", global("test_phone +12015550100"), "test_phone: want 2 arguments, got 1"},
		{"test_phone twice", global("test_phone +12015550100 123456\ntest_phone +12015550100 654321"), "test_phone: +12015550100 already specified"},
		{"test_phone not e164", global("test_phone 2015550100 123456"), `test_phone: "2015550100" is not an E.164 number`},
		{"create_user value", global("create_user maybe"), `create_user: want true or false, got "maybe"`},
		{"create_user missing", global("create_user"), "create_user: wrong argument count"},
		{"captcha arg count", global("captcha turnstile"), "captcha: want `captcha turnstile|hcaptcha|recaptcha <secret> [verify_url <url>]`"},
		{"captcha provider", global("captcha friendly s3cret"), `captcha: unknown provider "friendly"`},
		{"captcha verify_url keyword", global("captcha hcaptcha s3cret url https://x"), "captcha: want"},
		{"hmac short", global("hmac_secret tooshort"), "hmac_secret: must be at least 32 bytes (got 8)"},
		{"hmac with alg", global("hmac_secret {env.S}\nsigning_alg ES256"), "hmac_secret: cannot be combined with signing_key_file or signing_alg"},
		{"signing_alg", global("signing_alg HS512"), `signing_alg: unknown algorithm "HS512"`},
		{"access_ttl extra arg", global("access_ttl 1 hour"), `access_ttl: unexpected argument "hour"`},
		{"refresh_ttl duration", global("refresh_ttl forever"), `refresh_ttl: invalid duration "forever"`},
		{"refresh_reuse_interval missing", global("refresh_reuse_interval"), "refresh_reuse_interval: wrong argument count"},
		{"public_url", global("public_url app.example.com"), "public_url: must be an absolute http or https URL"},
		{"signup value", global("signup maybe"), `signup: want open or closed, got "maybe"`},
		{"signup missing", global("signup"), "signup: wrong argument count"},
		{"signup twice", global("signup open\nsignup closed"), "signup: already specified"},
		{"users argument", global("users +14155550123"), `users: unexpected argument "+14155550123"`},
		{"users bad phone", global("users {\n+1415555\n}"), `users: "+1415555" is not a phone number in E.164 form`},
		{"users phone without plus", global("users {\n14155550123 admin\n}"), `users: "14155550123" is not a phone number in E.164 form`},
		{"users bad role", global("users {\n+14155550123 admin ops,dev\n}"), `users: +14155550123: role "ops,dev": want 1 to 32 ASCII letters`},
		{"users file missing", global("users {\nfile\n}"), "users file: wrong argument count"},
		{"users file twice", global("users {\nfile /a\nfile /b\n}"), "users file: already specified"},
		{"inactivity_timeout", global("inactivity_timeout soon"), `inactivity_timeout: invalid duration "soon"`},
		{"inactivity_timeout negative", global("inactivity_timeout -1m"), "inactivity_timeout: must not be negative"},
		{"service_key short", global("service_key tooshort"), "service_key: must be at least 32 bytes (got 8)"},
		{"service_key missing", global("service_key"), "service_key: wrong argument count"},
		{"handler argument", ":8080 {\n\totpgate on\n}\n", `otpgate: unexpected argument "on"`},
		{"handler unknown option", site("colour red"), `otpgate: unknown option "colour"`},
		{"handler duplicate", site("login_path /a\nlogin_path /b"), "login_path: already specified"},
		{"api_prefix missing", site("api_prefix"), "api_prefix: wrong argument count"},
		{"api_prefix relative", site("api_prefix auth"), `api_prefix: must start with '/' (got "auth")`},
		{"login_path under api", site("api_prefix /auth\nlogin_path /auth/login"), "login_path: \"/auth/login\" must not be under api_prefix"},
		{"public empty", site("public"), "public: wrong argument count"},
		{"gate value", site("gate maybe"), `gate: want on or off, got "maybe"`},
		{"gate missing", site("gate"), "gate: wrong argument count"},
		{"accent_color", site("accent_color red"), "accent_color: must be a CSS hex colour"},
		{"accent_color unquoted", site("accent_color #4f46e5"), `quote it, as in accent_color "#4f46e5"`},
		{"login_template args", site("login_template a b"), `login_template: unexpected argument "b"`},
		{"roles empty", site("roles"), "roles: wrong argument count"},
		{"roles bad name", site("roles admin ops,dev"), `roles: "ops,dev" is not a role name`},
		{"roles non-ASCII", site("roles аdmin"), `roles: "аdmin" is not a role name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := adapt(t, "Caddyfile", []byte(tt.caddyfile))
			if err == nil {
				t.Fatalf("adapt succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q\nwant it to contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "Caddyfile:") {
				t.Errorf("error = %q, want the file and line", err)
			}
			// at the line of the mistake, never at a block's closing brace
			if line := errorLine(t, err); strings.TrimSpace(strings.Split(tt.caddyfile, "\n")[line-1]) == "}" {
				t.Errorf("error = %q, reported at a closing brace", err)
			}
		})
	}
}

// errorLine is the line number of the first "Caddyfile:N" in err.
func errorLine(t *testing.T, err error) int {
	t.Helper()
	m := regexp.MustCompile(`Caddyfile:(\d+)`).FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("error %q has no line", err)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// An error in a users line points at that line, not at the block's end.
func TestAdapt_UsersErrorPointsAtItsLine(t *testing.T) {
	caddyfile := `{
	otpgate {
		users {
			+14155550123 admin
			+447400123456
			+1415555 ops
			+14155550124
		}
	}
}
`
	_, _, err := adapt(t, "Caddyfile", []byte(caddyfile))
	if err == nil || !strings.Contains(err.Error(), "Caddyfile:6") || !strings.Contains(err.Error(), `"+1415555"`) {
		t.Fatalf("error = %v, want it at Caddyfile:6", err)
	}
	_, _, err = adapt(t, "Caddyfile", []byte(strings.Replace(caddyfile, "+1415555 ops", "+14155550125 ops!", 1)))
	if err == nil || !strings.Contains(err.Error(), "Caddyfile:6") || !strings.Contains(err.Error(), `role "ops!"`) {
		t.Fatalf("error = %v, want it at Caddyfile:6", err)
	}
	_, _, err = adapt(t, "Caddyfile", []byte(":8080 {\n\totpgate {\n\t\tpublic /x\n\t\troles admin bad!\n\t}\n}\n"))
	if err == nil || !strings.Contains(err.Error(), "Caddyfile:4") {
		t.Fatalf("error = %v, want it at Caddyfile:4", err)
	}
}

// A users block may be written in several global blocks; its phones add up.
func TestAdapt_UsersMergeAcrossBlocks(t *testing.T) {
	caddyfile := "{\n\totpgate {\n\t\tusers {\n\t\t\t+14155550123 admin\n\t\t}\n\t}\n\totpgate {\n\t\tusers {\n\t\t\t+14155550123 ops\n\t\t\t+447400123456\n\t\t}\n\t}\n}\n"
	out, _, err := adapt(t, "Caddyfile", []byte(caddyfile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"users":{"phones":{"+14155550123":["admin","ops"],"+447400123456":[]}}`)) {
		t.Errorf("merged users: %s", out)
	}
}

// TestAdapt_ExampleCaddyfiles keeps the shipped examples, the quick start
// among them, in step with the grammar.
func TestAdapt_ExampleCaddyfiles(t *testing.T) {
	files, err := filepath.Glob("../caddyfile/*Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no example Caddyfiles in ../caddyfile")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := adapt(t, filepath.Base(file), body)
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			if !bytes.Contains(out, []byte(`"handler":"otpgate"`)) {
				t.Errorf("%s has no otpgate handler", file)
			}
		})
	}
}

func TestAdapt_EnvPlaceholders(t *testing.T) {
	t.Setenv("OTPGATE_TEST_SECRET", strings.Repeat("s", 32))
	caddyfile := "{\n\totpgate {\n\t\thmac_secret {$OTPGATE_TEST_SECRET}\n\t\tstore redis {env.REDIS_URL}\n\t}\n}\n"
	out, _, err := adapt(t, "Caddyfile", []byte(caddyfile))
	if err != nil {
		t.Fatal(err)
	}
	// {$VAR} is the Caddyfile's own, expanded while parsing; {env.VAR} is a
	// runtime placeholder and stays for the app to expand at provision.
	for _, want := range []string{`"hmac_secret":"` + strings.Repeat("s", 32) + `"`, `"url":"{env.REDIS_URL}"`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("adapted config lacks %s:\n%s", want, out)
		}
	}
}

func TestAdapt_GlobalOptionRepeated_Merges(t *testing.T) {
	caddyfile := "{\n\totpgate {\n\t\tcountries US\n\t\tapp_name One\n\t}\n\totpgate {\n\t\tcountries GB\n\t\tstore memory\n\t}\n}\n"
	out, _, err := adapt(t, "Caddyfile", []byte(caddyfile))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			Otpgate App `json:"otpgate"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	got := cfg.Apps.Otpgate
	if !slices.Equal(got.Countries, []string{"US", "GB"}) || got.AppName != "One" || got.Store == nil {
		t.Errorf("merged app = %+v", got)
	}
}

func TestAdapt_HandlerWithMatcher(t *testing.T) {
	out, _, err := adapt(t, "Caddyfile", []byte(":8080 {\n\totpgate /app/* {\n\t\tgate off\n\t}\n\trespond ok\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if h := findHandlers(t, out, "otpgate"); len(h) != 1 || string(h[0]) != `{"gate":false}` {
		t.Errorf("handlers = %s", h)
	}
	if !bytes.Contains(out, []byte(`"path":["/app/*"]`)) {
		t.Errorf("matcher missing from %s", out)
	}
}

func FuzzCaddyfile(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(adaptDir, "*.caddyfile"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(string(b))
		}
	}
	for _, s := range []string{
		"{\n\totpgate\n}\n",
		"{\n\totpgate {\n\t\tsms plivo {\n\t\t}\n\t}\n}\n",
		"{\n\totpgate {\n\t\totp {\n\t\t\tlength\n\t\t}\n\t}\n}\n",
		"{\n\totpgate {\n\t\tlimit ip 1 1s {\n\t\t}\n\t}\n}\n",
		":80 {\n\totpgate {\n\t\tpublic\n\t}\n}\n",
		":80 {\n\totpgate {\n",
		"{\n\totpgate {\n\t\tcaptcha {\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		// Only the absence of panics matters; most inputs are errors.
		_, _, _ = adapt(t, "Caddyfile", []byte(body))
		_, _, _ = adapt(t, "Caddyfile", []byte("{\n\totpgate {\n"+body+"\n}\n}\n"))
		_, _, _ = adapt(t, "Caddyfile", []byte(":80 {\n\totpgate {\n"+body+"\n}\n}\n"))
	})
}

// manifest is xcaddy.json at the repository root.
type manifest struct {
	Name         string `json:"name"`
	ModulePath   string `json:"module_path"`
	ImportPath   string `json:"import_path"`
	CaddyVersion string `json:"caddy_version"`
	Modules      []struct {
		ID        string `json:"id"`
		Kind      string `json:"kind"`
		Directive string `json:"directive,omitempty"`
	} `json:"modules"`
	GlobalOptions []string `json:"global_options"`
	Build         string   `json:"build"`
}

func TestManifest_MatchesRegisteredModulesAndGoMod(t *testing.T) {
	raw, err := os.ReadFile("../xcaddy.json")
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("xcaddy.json: %v", err)
	}

	modulePath, caddyVersion := readGoMod(t, "../go.mod")
	if m.ModulePath != modulePath {
		t.Errorf("module_path = %q, go.mod says %q", m.ModulePath, modulePath)
	}
	if m.CaddyVersion != caddyVersion {
		t.Errorf("caddy_version = %q, go.mod requires caddy %q", m.CaddyVersion, caddyVersion)
	}
	importPath := reflect.TypeFor[App]().PkgPath()
	if m.ImportPath != importPath {
		t.Errorf("import_path = %q, the module package is %q", m.ImportPath, importPath)
	}
	if want := "xcaddy build " + caddyVersion + " --with " + importPath; m.Build != want {
		t.Errorf("build = %q, want %q", m.Build, want)
	}

	// Every module registered from this repository, and only those.
	var registered []string
	for _, id := range caddy.Modules() {
		info, err := caddy.GetModule(id)
		if err != nil {
			t.Fatal(err)
		}
		typ := reflect.TypeOf(info.New())
		if typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		pkg := typ.PkgPath()
		if pkg == modulePath || strings.HasPrefix(pkg, modulePath+"/") {
			registered = append(registered, id)
		}
	}
	var listed []string
	for _, mod := range m.Modules {
		listed = append(listed, mod.ID)
		info, err := caddy.GetModule(mod.ID)
		if err != nil {
			t.Errorf("xcaddy.json lists %s: %v", mod.ID, err)
			continue
		}
		switch mod.Kind {
		case "app":
			if _, ok := info.New().(caddy.App); !ok {
				t.Errorf("%s: kind app, but it is not a caddy.App", mod.ID)
			}
		default:
			if ns := info.ID.Namespace(); ns != mod.Kind {
				t.Errorf("%s: kind %q, want its namespace %q", mod.ID, mod.Kind, ns)
			}
		}
		if mod.Directive != "" {
			// A registered directive adapts; an unknown one is refused.
			if _, _, err := adapt(t, "Caddyfile", []byte(":8080 {\n\t"+mod.Directive+"\n}\n")); err != nil {
				t.Errorf("%s: directive %q: %v", mod.ID, mod.Directive, err)
			}
		}
	}
	slices.Sort(registered)
	slices.Sort(listed)
	if !slices.Equal(registered, listed) {
		t.Errorf("xcaddy.json modules = %v, registered = %v", listed, registered)
	}

	for _, opt := range m.GlobalOptions {
		if _, _, err := adapt(t, "Caddyfile", []byte("{\n\t"+opt+"\n}\n")); err != nil {
			t.Errorf("global option %q: %v", opt, err)
		}
	}
	if !slices.Equal(m.GlobalOptions, []string{"otpgate"}) {
		t.Errorf("global_options = %v, want [otpgate]", m.GlobalOptions)
	}
}

// readGoMod returns the module path and the required caddy version.
func readGoMod(t *testing.T, path string) (module, caddyVersion string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "module" {
			module = fields[1]
		}
		if fields = slices.DeleteFunc(fields, func(s string) bool { return s == "require" }); len(fields) >= 2 && fields[0] == "github.com/caddyserver/caddy/v2" {
			caddyVersion = fields[1]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if module == "" || caddyVersion == "" {
		t.Fatalf("%s: module %q, caddy %q", path, module, caddyVersion)
	}
	return module, caddyVersion
}

// TestREADME_CaddyfileExamplesAdapt keeps the README's complete Caddyfile
// examples (those that start with the global block) in step with the
// grammar.
func TestREADME_CaddyfileExamplesAdapt(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, block := range strings.Split(string(raw), "```caddyfile\n")[1:] {
		body, _, _ := strings.Cut(block, "```")
		var lines []string
		for _, l := range strings.Split(body, "\n") {
			lines = append(lines, strings.TrimPrefix(l, "   "))
		}
		body = strings.Join(lines, "\n")
		if !strings.HasPrefix(strings.TrimSpace(body), "{") {
			continue
		}
		n++
		if _, _, err := adapt(t, "README.md", []byte(body)); err != nil {
			t.Errorf("README example %d does not adapt: %v\n%s", n, err, body)
		}
	}
	if n < 4 {
		t.Fatalf("found %d complete Caddyfile examples in the README, want at least 4", n)
	}
}
