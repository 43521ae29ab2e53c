package otpgate

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// A person signs in with a phone number in real Chromium against real
// Caddy, Redis and the fake Plivo, and lands on the page they asked for
// with the app seeing who they are.
func TestBrowser_PhoneLogin_EndToEnd(t *testing.T) {
	g := startGateway(t, "app_name \"Acme\"", "")
	browser := testenv.Chromium(t)
	dir := testenv.ScreenshotDir(t)

	t.Run("SignInThenLandOnReturnTo", func(t *testing.T) {
		ctx, cancel := chromedp.NewContext(browser)
		defer cancel()
		log := testenv.RecordPage(t, ctx)
		phone := "+14155550123"

		run(t, ctx, chromedp.Navigate(g.base+"/dashboard?tab=2"), chromedp.WaitVisible(chromedp.ID("phone")))
		loc := location(t, ctx)
		if !strings.HasPrefix(loc, g.base+"/auth/login?return_to=%2Fdashboard%3Ftab%3D2") {
			t.Fatalf("not sent to the login page: %s", loc)
		}
		testenv.Screenshot(t, ctx, dir, "e2e-1-phone")

		run(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), "+1 415 555 0123"), chromedp.Click(chromedp.ID("send")),
			chromedp.WaitVisible(chromedp.ID("code-0")))
		if got := eval[string](t, ctx, `document.getElementById("masked-phone").textContent`); !strings.Contains(got, "+1***-***-0123") {
			t.Fatalf("masked phone shown: %q", got)
		}
		msgs := g.plivo.Messages()
		if len(msgs) != 1 {
			t.Fatalf("plivo got %d messages", len(msgs))
		}
		code := g.plivo.LastCode(msgs[0].Dst)
		testenv.Screenshot(t, ctx, dir, "e2e-2-code")

		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		typeDigits(t, ctx, wrong)
		waitJS(t, ctx, `document.getElementById("error").textContent.includes("wrong or has expired")`)
		testenv.Screenshot(t, ctx, dir, "e2e-3-wrong-code")

		typeDigits(t, ctx, code)
		waitJS(t, ctx, fmt.Sprintf(`location.href === %q`, g.base+"/dashboard?tab=2"))
		body := eval[string](t, ctx, `document.body.innerText`)
		if !strings.Contains(body, `"X-Auth-Phone":["`+phone+`"]`) || !strings.Contains(body, `"X-Auth-User-Id":["`) {
			t.Fatalf("the app did not see the identity headers: %s", body)
		}
		testenv.Screenshot(t, ctx, dir, "e2e-4-signed-in")
		if n := eval[int](t, ctx, `localStorage.length + sessionStorage.length`); n != 0 {
			t.Errorf("the page kept %d items in web storage", n)
		}
		log.AssertSameOrigin(t, g.base)
		for _, u := range log.Requests() {
			if strings.Contains(u, "token=") || strings.Contains(u, "access_token") {
				t.Errorf("a token travelled in a URL: %s", u)
			}
		}
	})

	t.Run("OffSiteReturnToIsIgnored", func(t *testing.T) {
		ctx, cancel := chromedp.NewContext(testenv.Chromium(t))
		defer cancel()
		log := testenv.RecordPage(t, ctx)
		phone := "+14155550124"
		run(t, ctx, chromedp.Navigate(g.base+"/auth/login?return_to=https%3A%2F%2Fevil.example%2Fsteal"), chromedp.WaitVisible(chromedp.ID("phone")))
		run(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), phone), chromedp.Click(chromedp.ID("send")), chromedp.WaitVisible(chromedp.ID("code-0")))
		code := g.plivo.LastCode(strings.TrimPrefix(phone, "+"))
		if code == "" {
			code = g.plivo.LastCode(phone)
		}
		typeDigits(t, ctx, code)
		waitJS(t, ctx, fmt.Sprintf(`location.href === %q`, g.base+"/"))
		log.AssertSameOrigin(t, g.base)
	})
}

// People sign in with their number written as at home, in their own
// language, in real Chromium against real Caddy, Redis and the fake
// Plivo: the page picks the country of their language, composes E.164,
// and the app sees who they are. The numbers are test phones (fixed
// codes, nothing sent) except the French one, whose SMS carries the
// French message_template.
func TestBrowser_LoginForEveryone_EndToEnd(t *testing.T) {
	g := startGateway(t, `app_name "Acme"
		test_phone +447400123456 123456
		test_phone +12015550123 234567
		test_phone +201001234567 456789
		message_template fr "Votre code {app} : {code}"`, "")
	browser := testenv.Chromium(t)
	dir := testenv.ScreenshotDir(t)

	for _, tc := range []struct {
		name, accept  string
		typed, paste  string // what the person types, or pastes
		phone, code   string
		lang, heading string
		shown         string // the number on the code step
	}{
		{"GB", "en-GB,en;q=0.9", "07400 123456", "", "+447400123456", "123456", "en", "Sign in to Acme", "+44 7400 123456"},
		{"US", "en-US,en;q=0.9", "(201) 555-0123", "", "+12015550123", "234567", "en", "Sign in to Acme", "+1 201-555-0123"},
		{"French", "fr-FR,fr;q=0.9", "06 12 34 56 78", "", "+33612345678", "", "fr", "Connexion à Acme", "+33 6 12 34 56 78"},
		{"Arabic", "ar-EG,ar;q=0.9", "0100 123 4567", "", "+201001234567", "456789", "ar", "تسجيل الدخول إلى Acme", "+20 10 01234567"},
		{"PasteSwitchesCountry", "en-US,en;q=0.9", "", "+44 7400 123456", "+447400123456", "123456", "en", "Sign in to Acme", "+44 7400 123456"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A browser of its own: no session from the previous person.
			ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
			defer cancel()
			log := testenv.RecordPage(t, ctx)
			ua := eval[string](t, ctx, `navigator.userAgent`)
			if _, err := chromedp.Call(ctx, emulation.SetUserAgentOverride,
				emulation.SetUserAgentOverrideParams{UserAgent: ua, AcceptLanguage: tc.accept}); err != nil {
				t.Fatal(err)
			}
			run(t, ctx, chromedp.Navigate(g.base+"/dashboard"), chromedp.WaitVisible(chromedp.ID("phone")))
			wantDir := "ltr"
			if tc.lang == "ar" {
				wantDir = "rtl"
			}
			if got := eval[string](t, ctx, `document.documentElement.lang + " " + document.documentElement.dir + " " + document.getElementById("title").textContent`); got != tc.lang+" "+wantDir+" "+tc.heading {
				t.Errorf("page = %q, want %s %s %s", got, tc.lang, wantDir, tc.heading)
			}
			if tc.paste != "" {
				eval[bool](t, ctx, fmt.Sprintf(`(() => { const p = document.getElementById("phone"); p.focus(); p.value = %q;
					return p.dispatchEvent(new InputEvent("input", {inputType: "insertFromPaste", bubbles: true})); })()`, tc.paste))
				waitJS(t, ctx, `document.getElementById("country-code").textContent === "+44"`)
			} else {
				run(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), tc.typed))
			}
			testenv.Screenshot(t, ctx, dir, "e2e-"+tc.name+"-phone")
			run(t, ctx, chromedp.Click(chromedp.ID("send")), chromedp.WaitVisible(chromedp.ID("code-0")))
			if got := eval[string](t, ctx, `document.getElementById("entered-phone").textContent`); !strings.Contains(got, tc.shown) {
				t.Errorf("code step shows %q, want %q", got, tc.shown)
			}
			code := tc.code
			if code == "" {
				msgs := g.plivo.Messages()
				if len(msgs) == 0 {
					t.Fatal("no message reached Plivo")
				}
				last := msgs[len(msgs)-1]
				if last.Dst != strings.TrimPrefix(tc.phone, "+") || !strings.HasPrefix(last.Text, "Votre code Acme : ") {
					t.Errorf("Plivo got %+v, want the French text to %s", last, tc.phone)
				}
				code = g.plivo.LastCode(last.Dst)
			}
			testenv.Screenshot(t, ctx, dir, "e2e-"+tc.name+"-code")
			typeDigits(t, ctx, code)
			waitJS(t, ctx, fmt.Sprintf(`location.href === %q`, g.base+"/dashboard"))
			if body := eval[string](t, ctx, `document.body.innerText`); !strings.Contains(body, `"X-Auth-Phone":["`+tc.phone+`"]`) {
				t.Fatalf("the app did not see %s: %s", tc.phone, body)
			}
			log.AssertSameOrigin(t, g.base)
		})
	}
}

// The handler's default_country and language (SPEC §7): an en-US browser
// gets the page in French with the UK chosen, and signs in with a number
// written as in the UK.
func TestBrowser_HandlerCountryAndLanguage_EndToEnd(t *testing.T) {
	g := startGateway(t, "test_phone +447400123456 123456", "default_country GB\n\t\t\tlanguage fr")
	ctx, cancel := chromedp.NewContext(testenv.Chromium(t))
	defer cancel()
	run(t, ctx, chromedp.Navigate(g.base+"/auth/login?return_to=%2Finbox"), chromedp.WaitVisible(chromedp.ID("phone")))
	if got := eval[string](t, ctx, `document.documentElement.lang + " " + document.getElementById("country-code").textContent + " " + document.getElementById("send").textContent`); got != "fr +44 Envoyer le code" {
		t.Errorf("page = %q, want fr +44 Envoyer le code", got)
	}
	run(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), "07400 123456"), chromedp.Click(chromedp.ID("send")), chromedp.WaitVisible(chromedp.ID("code-0")))
	typeDigits(t, ctx, "123456")
	waitJS(t, ctx, fmt.Sprintf(`location.href === %q`, g.base+"/inbox"))
}

func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// waitJS waits for a page condition (not for time). Navigations in between
// interrupt evaluation, so it keeps asking until the deadline.
func waitJS(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " | " + ((document.getElementById("error")||{}).textContent || "")`))
			t.Fatalf("waiting for %s: %v (%s)", expr, err, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// typeDigits types a code one key at a time, as a person would; the page
// advances through the boxes and submits on the last digit.
func typeDigits(t *testing.T, ctx context.Context, code string) {
	t.Helper()
	run(t, ctx, chromedp.Focus(chromedp.ID("code-0")))
	for _, d := range code {
		run(t, ctx, chromedp.KeyEvent(string(d)))
	}
}
