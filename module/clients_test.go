package otpgate

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// supabaseClient is how one Supabase client library writes each phone
// call: the exact JSON bodies (key order, nulls and extras included) and
// headers, read from its sources:
//
//   - auth-js 2.109.0 (testdata/authjs, used by supabase-js):
//     GoTrueClient.signInWithOtp, verifyOtp, resend, _refreshAccessToken,
//     _updateUser, GoTrueAdminApi.signOut; JSON.stringify drops undefined.
//   - gotrue-dart 2.22.0 (supabase-flutter's auth client until mid-2026,
//     still in most shipped apps): json.encode keeps nulls, verifyOTP sends
//     gotrue_meta_security.captchaToken; signOut POSTs "{}".
//   - gotrue-dart 2.27 / supabase_auth (supabase-flutter now): the same,
//     with captcha_token in verifyOTP.
//   - supabase-swift 2.55.1: Codable with convertToSnakeCase, nil fields
//     left out; signOut sends no body.
type supabaseClient struct {
	name    string
	headers []string // sent with every request
	// the phone as the app passes it (Flutter apps often drop the '+')
	phone  func(e164 string) string
	otp    func(phone string) string
	verify func(phone, token, typ string) string
	resend func(phone, typ string) string
	// update wraps the members of UserAttributes as the client sends them
	update func(members string) string
	logout struct {
		scope, body, contentType string
	}
}

func supabaseClients() []supabaseClient {
	plus := func(e164 string) string { return e164 }
	authjs := supabaseClient{
		name: "auth-js 2.109.0",
		headers: []string{"Content-Type", "application/json;charset=UTF-8", "X-Client-Info", "gotrue-js/2.109.0",
			"X-Supabase-Api-Version", "2024-01-01", "apikey", "anon-key"},
		phone: plus,
		otp: func(p string) string {
			return `{"phone":"` + p + `","data":{},"create_user":true,"gotrue_meta_security":{},"channel":"sms"}`
		},
		verify: func(p, tok, typ string) string {
			return `{"phone":"` + p + `","token":"` + tok + `","type":"` + typ + `","gotrue_meta_security":{}}`
		},
		resend: func(p, typ string) string {
			return `{"phone":"` + p + `","type":"` + typ + `","gotrue_meta_security":{}}`
		},
		update: func(m string) string { return `{` + m + `,"code_challenge":null,"code_challenge_method":null}` },
	}
	authjs.logout.scope = "global"

	dart := func(name, captchaKey string, phone func(string) string) supabaseClient {
		c := supabaseClient{
			name: name,
			headers: []string{"Content-Type", "application/json", "X-Client-Info", "supabase-flutter/2.9.0",
				"X-Supabase-Api-Version", "2024-01-01", "apikey", "anon-key"},
			phone: phone,
			otp: func(p string) string {
				return `{"phone":"` + p + `","data":{},"create_user":true,"gotrue_meta_security":{"captcha_token":null},"channel":"sms"}`
			},
			verify: func(p, tok, typ string) string {
				return `{"phone":"` + p + `","token":"` + tok + `","type":"` + typ + `","redirect_to":null,"gotrue_meta_security":{"` + captchaKey + `":null}}`
			},
			resend: func(p, typ string) string {
				return `{"phone":"` + p + `","type":"` + typ + `","gotrue_meta_security":{"captcha_token":null}}`
			},
			update: func(m string) string { return `{` + m + `}` },
		}
		c.logout.scope, c.logout.body, c.logout.contentType = "local", "{}", "application/json"
		return c
	}
	swift := supabaseClient{
		name: "supabase-swift 2.55.1",
		headers: []string{"Content-Type", "application/json", "X-Client-Info", "supabase-swift/2.55.1",
			"X-Supabase-Api-Version", "2024-01-01", "apikey", "anon-key"},
		phone: plus,
		otp:   func(p string) string { return `{"phone":"` + p + `","create_user":true,"channel":"sms"}` },
		verify: func(p, tok, typ string) string {
			return `{"phone":"` + p + `","token":"` + tok + `","type":"` + typ + `"}`
		},
		resend: func(p, typ string) string { return `{"type":"` + typ + `","phone":"` + p + `"}` },
		update: func(m string) string { return `{` + m + `}` },
	}
	swift.logout.scope = "global"
	return []supabaseClient{
		authjs,
		dart("gotrue-dart 2.22.0", "captchaToken", plus),
		dart("supabase_auth (gotrue-dart 2.27), phone without +", "captcha_token", func(e164 string) string { return strings.TrimPrefix(e164, "+") }),
		swift,
	}
}

// Every phone call of supabase-js, supabase-flutter and supabase-swift,
// replayed with the clients' exact bodies and headers against real Caddy,
// Redis and the fake Plivo: signInWithOtp (with its channel), resend,
// verifyOtp, getUser, refreshSession, updateUser({data}),
// updateUser({phone}) with a resend and verifyOtp of type phone_change,
// the session from before the change refreshed, and signOut.
func TestCaddy_SupabaseClients_RequestBodiesReplayed(t *testing.T) {
	g := startGateway(t, "otp {\n\t\t\tresend_after 0s\n\t\t}\n\t\tlimit phone 10 5m\n\t\tlimit ip 100 10m", "")
	c := http.DefaultClient
	api := g.base + "/auth/v1"
	lastCode := func(t *testing.T, e164 string) string {
		t.Helper()
		if code := g.plivo.LastCode(strings.TrimPrefix(e164, "+")); code != "" {
			return code
		}
		if code := g.plivo.LastCode(e164); code != "" {
			return code
		}
		t.Fatalf("no code was sent to %s", e164)
		return ""
	}
	for i, cl := range supabaseClients() {
		t.Run(cl.name, func(t *testing.T) {
			old, moved := fmt.Sprintf("+141555501%d0", 5+i), fmt.Sprintf("+141555501%d1", 5+i)
			p, q := cl.phone(old), cl.phone(moved)
			do := func(method, path, body string, extra ...string) (int, map[string]any) {
				t.Helper()
				st, _, b := call(t, c, method, api+path, body, append(append([]string{}, cl.headers...), extra...)...)
				return st, b
			}
			want := func(what string, st, code int, b map[string]any) {
				t.Helper()
				if st != code {
					t.Fatalf("%s: %d %v, want %d", what, st, b, code)
				}
			}

			st, b := do("POST", "/otp", cl.otp(p))
			want("signInWithOtp", st, 200, b)
			if b["channel"] != "sms" || b["masked_phone"] == nil {
				t.Fatalf("signInWithOtp answered %v", b)
			}
			first := lastCode(t, old)
			st, b = do("POST", "/resend", cl.resend(p, "sms"))
			want("resend", st, 200, b)
			code := lastCode(t, old)
			if code != first {
				st, b = do("POST", "/verify", cl.verify(p, first, "sms"))
				want("verifyOtp with the code a resend replaced", st, 403, b)
			}
			st, b = do("POST", "/verify", cl.verify(p, code, "sms"))
			want("verifyOtp", st, 200, b)
			user := b["user"].(map[string]any)
			id := user["id"]
			if user["phone"] != old[1:] || b["token_type"] != "bearer" {
				t.Fatalf("verifyOtp answered %v", b)
			}
			auth := "Bearer " + b["access_token"].(string)
			refresh := b["refresh_token"].(string)

			st, b = do("GET", "/user", "", "Authorization", auth)
			want("getUser", st, 200, b)
			st, b = do("POST", "/token?grant_type=refresh_token", `{"refresh_token":"`+refresh+`"}`)
			want("refreshSession", st, 200, b)
			auth, refresh = "Bearer "+b["access_token"].(string), b["refresh_token"].(string)

			st, b = do("PUT", "/user", cl.update(`"data":{"name":"Ada","client":"`+cl.name+`"}`), "Authorization", auth)
			want("updateUser data", st, 200, b)
			if meta := b["user_metadata"].(map[string]any); meta["name"] != "Ada" || meta["client"] != cl.name {
				t.Fatalf("updateUser data answered %v", b)
			}
			st, b = do("PUT", "/user", cl.update(`"data":{"name":null}`), "Authorization", auth)
			want("updateUser data null", st, 200, b)
			if meta := b["user_metadata"].(map[string]any); meta["name"] != nil || meta["client"] != cl.name {
				t.Fatalf("updateUser with a null key answered %v", b)
			}

			st, b = do("PUT", "/user", cl.update(`"phone":"`+q+`"`), "Authorization", auth)
			want("updateUser phone", st, 200, b)
			if b["new_phone"] != moved[1:] || b["phone"] != old[1:] {
				t.Fatalf("updateUser phone answered %v", b)
			}
			st, b = do("POST", "/resend", cl.resend(q, "phone_change"))
			want("resend phone_change", st, 200, b)
			st, b = do("POST", "/verify", cl.verify(q, lastCode(t, moved), "phone_change"))
			want("verifyOtp phone_change", st, 200, b)
			if u := b["user"].(map[string]any); u["id"] != id || u["phone"] != moved[1:] {
				t.Fatalf("verifyOtp phone_change answered %v", b)
			}
			changed := "Bearer " + b["access_token"].(string)

			// the session from before the change goes on, with the new phone
			st, b = do("POST", "/token?grant_type=refresh_token", `{"refresh_token":"`+refresh+`"}`)
			want("refreshSession after the change", st, 200, b)
			if u := b["user"].(map[string]any); u["id"] != id || u["phone"] != moved[1:] {
				t.Fatalf("refresh after the change answered %v", b)
			}
			st, _, echo := call(t, c, "GET", g.base+"/app", "", "Authorization", "Bearer "+b["access_token"].(string))
			if h, _ := echo["headers"].(map[string]any); st != 200 || fmt.Sprint(h["X-Auth-Phone"]) != "["+moved+"]" || fmt.Sprint(h["X-Placeholder-Phone"]) != "["+moved+"]" {
				t.Fatalf("upstream after the refresh: %d %v", st, echo)
			}

			extra := []string{"Authorization", changed}
			if cl.logout.contentType != "" {
				extra = append(extra, "Content-Type", cl.logout.contentType)
			}
			st, _, b = call(t, c, "POST", api+"/logout?scope="+cl.logout.scope, cl.logout.body, append(append([]string{}, cl.headers...), extra...)...)
			want("signOut", st, 204, b)
			st, b = do("GET", "/user", "", "Authorization", changed)
			want("getUser after signOut", st, 401, b)
		})
	}
}
