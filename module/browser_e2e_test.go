package otpgate

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

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
