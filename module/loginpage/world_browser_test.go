package loginpage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/nyaruka/phonenumbers"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// This file drives the page for everyone: the country picker and numbers
// written as at home, the languages, the other channels, the honest
// failure over plain http, and an axe-core audit of every state.

// present makes the tab of ctx present itself as v, before it navigates.
func present(t *testing.T, ctx context.Context, v visitor) {
	t.Helper()
	if v.languages != "" {
		ua := js[string](t, ctx, `navigator.userAgent`)
		if _, err := chromedp.Call(ctx, emulation.SetUserAgentOverride,
			emulation.SetUserAgentOverrideParams{UserAgent: ua, AcceptLanguage: v.languages}); err != nil {
			t.Fatalf("accept-language %s: %v", v.languages, err)
		}
	}
	if v.dark {
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		}); err != nil {
			t.Fatalf("dark mode: %v", err)
		}
	}
}

// axeDir holds the pinned axe-core (package.json + package-lock.json);
// node_modules is installed from the lock file when missing.
const axeDir = "testdata/axe"

const axeFix = "run `npm ci --prefix module/loginpage/testdata/axe` from the repository root"

var axeSource = sync.OnceValues(func() (string, error) {
	file := filepath.Join(axeDir, "node_modules", "axe-core", "axe.min.js")
	if _, err := os.Stat(file); err != nil {
		npm, lerr := exec.LookPath("npm")
		if lerr != nil {
			return "", fmt.Errorf("axe-core is not installed and npm is missing: install Node.js and npm, then %s", axeFix)
		}
		if out, err := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--prefix", axeDir).CombinedOutput(); err != nil {
			return "", fmt.Errorf("npm ci in %s failed: %v\n%s\n%s", axeDir, err, out, axeFix)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("axe-core: %v (%s)", err, axeFix)
	}
	return string(b), nil
})

type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target         json.RawMessage `json:"target"`
		FailureSummary string          `json:"failureSummary"`
	} `json:"nodes"`
}

// audit runs axe-core on the page of ctx as it is now and fails the test
// for every serious or critical violation.
func audit(t *testing.T, ctx context.Context, state string) {
	t.Helper()
	src, err := axeSource()
	if err != nil {
		t.Fatal(err)
	}
	if !js[bool](t, ctx, `typeof window.axe === "object"`) {
		js[bool](t, ctx, src+"\n;true")
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe on %s: %v", state, err)
	}
	var violations []axeViolation
	if err := json.Unmarshal([]byte(out), &violations); err != nil {
		t.Fatalf("axe result: %v", err)
	}
	for _, v := range violations {
		var where []string
		for _, n := range v.Nodes {
			where = append(where, string(n.Target)+": "+strings.ReplaceAll(n.FailureSummary, "\n", " "))
		}
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Errorf("%s: axe %s (%s): %s\n  %s", state, v.ID, v.Impact, v.Help, strings.Join(where, "\n  "))
		} else {
			t.Logf("%s: axe %s (%s): %s", state, v.ID, v.Impact, v.Help)
		}
	}
}

// docsShot refreshes docs/<name>.png, the README's pictures, when
// $OTPGATE_SCREENSHOTS is set: the page at a phone-like width.
func docsShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv(testenv.ScreenshotsEnv) == "" {
		return
	}
	// The viewport only: a full-page capture of a right-to-left page
	// starts left of its content.
	do(t, ctx, chromedp.EmulateViewport(480, 680))
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	file := filepath.Join("..", "..", "docs", name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	t.Logf("docs screenshot: %s", file)
}

func challengeVia(resendAfter int, channel string) stubReply {
	return stubReply{status: 200, body: fmt.Sprintf(
		`{"message_id":"msg-1","masked_phone":%q,"channel":%q,"expires_in":300,"resend_after":%d}`,
		testMasked, channel, resendAfter)}
}

// sendNumber types a number as written and sends it; it returns the
// number the page sent.
func sendNumber(t *testing.T, ctx context.Context, f *fixture, typed string) string {
	t.Helper()
	do(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), typed), chromedp.Click(chromedp.ID("send")),
		chromedp.WaitVisible(chromedp.ID("code-0")))
	calls := f.api.callsTo("/otp")
	if len(calls) != 1 {
		t.Fatalf("/otp calls: %+v", calls)
	}
	p, _ := calls[0].body["phone"].(string)
	return p
}

func pasteInto(t *testing.T, ctx context.Context, id, value string) {
	t.Helper()
	// What a paste does to a text field: its value changes, then input.
	js[bool](t, ctx, fmt.Sprintf(`(() => {
		const el = document.getElementById(%q);
		el.focus();
		el.value = %q;
		return el.dispatchEvent(new InputEvent("input", {inputType: "insertFromPaste", bubbles: true}));
	})()`, id, value))
}

func e164(t *testing.T, number, region string) string {
	t.Helper()
	n, err := phonenumbers.Parse(number, region)
	if err != nil || !phonenumbers.IsValidNumber(n) {
		t.Fatalf("libphonenumber: %q in %s is not a valid number (%v)", number, region, err)
	}
	return phonenumbers.Format(n, phonenumbers.E164)
}

func TestLoginPage_Countries_Browser(t *testing.T) {
	f := newFixture(t)

	t.Run("GB_NumberAsWrittenAtHome", func(t *testing.T) {
		ctx := f.tabAs(t, "", visitor{languages: "en-GB,en"})
		if got := text(t, ctx, "country-code"); got != "+44" {
			t.Errorf("country for en-GB: %q, want +44", got)
		}
		if got := text(t, ctx, "phone-hint"); !strings.Contains(got, "07400 123456") {
			t.Errorf("hint %q lacks GB's example", got)
		}
		if got := text(t, ctx, "country"); !strings.Contains(got, "Country: United Kingdom") || !strings.Contains(got, "+44") {
			t.Errorf("country button's text = %q", got)
		}
		f.api.queue("/otp", challenge(30))
		if got := sendNumber(t, ctx, f, "07400 123456"); got != "+447400123456" {
			t.Errorf("sent %q, want +447400123456", got)
		}
		if got := text(t, ctx, "entered-phone"); !strings.Contains(got, "+44 7400 123456") {
			t.Errorf("code step shows %q, want the number formatted", got)
		}
		docsShot(t, ctx, "login-code")
	})

	t.Run("US_NumberAsWrittenAtHome", func(t *testing.T) {
		ctx := f.tabAs(t, "", visitor{languages: "en-US,en"})
		if got := text(t, ctx, "country-code"); got != "+1" {
			t.Errorf("country for en-US: %q, want +1", got)
		}
		f.api.queue("/otp", challenge(30))
		if got := sendNumber(t, ctx, f, "(201) 555-0123"); got != "+12015550123" {
			t.Errorf("sent %q, want +12015550123", got)
		}
		if got := text(t, ctx, "entered-phone"); !strings.Contains(got, "+1 201-555-0123") {
			t.Errorf("code step shows %q", got)
		}
	})

	t.Run("PasteOfAFullNumberSwitchesCountry", func(t *testing.T) {
		ctx := f.tabAs(t, "", visitor{languages: "en-US,en"})
		pasteInto(t, ctx, "phone", "+44 7400 123456")
		waitFor(t, ctx, "the country to become GB", `document.getElementById("country-code").textContent === "+44"`)
		if got := text(t, ctx, "country-name"); !strings.Contains(got, "United Kingdom") {
			t.Errorf("button name %q", got)
		}
		// +1 is shared: a Canadian number picks Canada, not the US.
		pasteInto(t, ctx, "phone", "+1 416 555 0123")
		waitFor(t, ctx, "the country to become CA", `document.getElementById("country-name").textContent.includes("Canada")`)
		pasteInto(t, ctx, "phone", "0044 (0)7400 123456")
		waitFor(t, ctx, "GB again", `document.getElementById("country-code").textContent === "+44"`)
		f.api.queue("/otp", challenge(30))
		do(t, ctx, chromedp.Click(chromedp.ID("send")), chromedp.WaitVisible(chromedp.ID("code-0")))
		if calls := f.api.callsTo("/otp"); len(calls) != 1 || calls[0].body["phone"] != "+447400123456" {
			t.Errorf("/otp calls %+v, want +447400123456 (trunk 0 after the country code dropped)", calls)
		}
	})

	t.Run("Picker_SearchByNameAndCode_Keyboard", func(t *testing.T) {
		ctx := f.tabAs(t, "", visitor{languages: "en-US,en"})
		do(t, ctx, chromedp.Click(chromedp.ID("country")))
		waitFor(t, ctx, "the picker open, search focused",
			`!document.getElementById("country-picker").hidden && document.activeElement.id === "country-search"`)
		if got := js[string](t, ctx, `document.getElementById("country").getAttribute("aria-expanded")`); got != "true" {
			t.Errorf("aria-expanded = %q", got)
		}
		if got := js[string](t, ctx, `document.querySelector('#country-list [aria-selected="true"]').id`); got != "country-opt-US" {
			t.Errorf("selected option %q, want the current country", got)
		}
		do(t, ctx, chromedp.KeyEvent("germ"))
		waitFor(t, ctx, "Germany active", `document.getElementById("country-search").getAttribute("aria-activedescendant") === "country-opt-DE"`)
		docsShot(t, ctx, "login-country-picker")
		audit(t, ctx, "country picker")
		do(t, ctx, chromedp.KeyEvent(kb.Enter))
		waitFor(t, ctx, "Germany chosen, back in the phone field",
			`document.getElementById("country-code").textContent === "+49" && document.activeElement.id === "phone" && document.getElementById("country-picker").hidden`)

		// By calling code, then arrows, then Escape without choosing.
		do(t, ctx, chromedp.Click(chromedp.ID("country")))
		waitFor(t, ctx, "search focused", `document.activeElement.id === "country-search"`)
		do(t, ctx, chromedp.KeyEvent("+91"))
		waitFor(t, ctx, "India first", `document.getElementById("country-search").getAttribute("aria-activedescendant") === "country-opt-IN"`)
		if n := js[int](t, ctx, `[...document.querySelectorAll("#country-list li")].filter(li => !li.hidden).length`); n != 1 {
			t.Errorf("%d countries for +91, want 1", n)
		}
		do(t, ctx, chromedp.KeyEvent(kb.Escape))
		waitFor(t, ctx, "closed, focus on the button",
			`document.getElementById("country-picker").hidden && document.activeElement.id === "country"`)
		if got := text(t, ctx, "country-code"); got != "+49" {
			t.Errorf("Escape changed the country to %s", got)
		}
		do(t, ctx, chromedp.KeyEvent(kb.ArrowDown))
		waitFor(t, ctx, "ArrowDown opens the picker", `document.activeElement.id === "country-search"`)
		do(t, ctx, chromedp.KeyEvent("zzz"))
		waitFor(t, ctx, "no match said", `!document.getElementById("country-empty").hidden`)
	})

	t.Run("Picker_SearchInThePageLanguage", func(t *testing.T) {
		ctx := f.tabAs(t, "", visitor{languages: "fr-FR,fr"})
		do(t, ctx, chromedp.Click(chromedp.ID("country")))
		waitFor(t, ctx, "search focused", `document.activeElement.id === "country-search"`)
		do(t, ctx, chromedp.KeyEvent("allem"))
		waitFor(t, ctx, "Allemagne", `document.getElementById("country-search").getAttribute("aria-activedescendant") === "country-opt-DE"`)
		if got := text(t, ctx, "country-opt-DE"); !strings.Contains(got, "Allemagne") {
			t.Errorf("option %q", got)
		}
		// English names are found too.
		js[bool](t, ctx, `(() => { const s = document.getElementById("country-search"); s.value = ""; return true; })()`)
		do(t, ctx, chromedp.KeyEvent("germany"))
		waitFor(t, ctx, "Germany in English", `document.getElementById("country-search").getAttribute("aria-activedescendant") === "country-opt-DE"`)
	})

	t.Run("NumbersAsWritten_AgreeWithLibphonenumber", func(t *testing.T) {
		ctx := f.tab(t, "")
		for _, tc := range []struct{ region, typed string }{
			{"GB", "07400 123456"}, {"GB", "020 7946 0958"}, {"GB", "+44 (0)20 7946 0958"}, {"GB", "0044 20 7946 0958"},
			{"GB", "44 7400 123456"}, {"GB", "٠٧٤٠٠ ١٢٣٤٥٦"}, {"IR", "۰۹۱۲ ۳۴۵ ۶۷۸۹"},
			{"US", "(201) 555-0123"}, {"US", "1 201 555 0123"}, {"US", "201.555.0123"}, {"US", "011 44 7400 123456"},
			{"CA", "(416) 555-0123"}, {"DE", "030 123456"}, {"DE", "0151 23456789"}, {"FR", "06 12 34 56 78"},
			{"IN", "081234 56789"}, {"IN", "८१२३४ ५६७८९"}, {"IN", "+91 81234 56789"}, {"BR", "(11) 96123-4567"},
			{"MX", "55 1234 5678"}, {"ID", "0812-345-678"}, {"AR", "011 15-2345-6789"}, {"EG", "0100 123 4567"},
			{"NG", "0802 123 4567"}, {"CN", "139 1234 5678"}, {"SA", "050 123 4567"}, {"JP", "090-1234-5678"},
			{"IT", "06 1234 5678"}, {"IT", "312 345 6789"}, {"RU", "8 (912) 345-67-89"}, {"AU", "0412 345 678"},
		} {
			want := e164(t, asciiDigits(tc.typed), tc.region)
			got := js[map[string]any](t, ctx, fmt.Sprintf(`(r => ({e164: r.e164 || "", error: r.error || "", region: r.country ? r.country.r : ""}))(otpgatePhone.parse(%q, %q))`, tc.typed, tc.region))
			if got["e164"] != want {
				t.Errorf("%s %q: page %v, libphonenumber %s", tc.region, tc.typed, got, want)
				continue
			}
			n, _ := phonenumbers.Parse(want, "")
			region := phonenumbers.GetRegionCodeForNumber(n)
			if got["region"] != region {
				t.Errorf("%s %q: page's region %v, libphonenumber's %s", tc.region, tc.typed, got["region"], region)
			}
			if shown, formatted := js[string](t, ctx, fmt.Sprintf(`otpgatePhone.format(%q, %q)`, want, region)), phonenumbers.Format(n, phonenumbers.INTERNATIONAL); shown != formatted {
				t.Errorf("%s: page formats %q, libphonenumber %q", want, shown, formatted)
			}
		}
		for _, tc := range []struct{ region, typed, err string }{
			{"GB", "123", "bad"}, {"GB", "07400 123456 ext 2", "bad"}, {"GB", "+999 1234", "bad_intl"},
			{"none", "415 555 0100", "no_country"}, {"US", "+1 415", "bad_intl"},
		} {
			got := js[string](t, ctx, fmt.Sprintf(`otpgatePhone.parse(%q, %q).error || ""`, tc.typed, tc.region))
			if got != tc.err {
				t.Errorf("%s %q: error %q, want %q", tc.region, tc.typed, got, tc.err)
			}
		}
	})

	t.Run("NationalNumberThatIsNotValid_SaysWhichCountry", func(t *testing.T) {
		ctx := f.tabAs(t, "", visitor{languages: "en-GB"})
		do(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), "0740"), chromedp.KeyEvent(kb.Enter))
		waitErrorContains(t, ctx, "That doesn't look like a phone number from United Kingdom.")
		if n := len(f.api.callsTo("/otp")); n != 0 {
			t.Errorf("%d /otp calls", n)
		}
	})

	t.Run("DefaultCountryOption_WinsOverTheLanguage", func(t *testing.T) {
		f := newFixtureWith(t, Options{DefaultCountry: "DE"})
		ctx := f.tabAs(t, "", visitor{languages: "en-GB"})
		if got := text(t, ctx, "country-code"); got != "+49" {
			t.Errorf("country %q, want +49", got)
		}
	})

	t.Run("Allowlist_LimitsThePicker", func(t *testing.T) {
		f := newFixtureWith(t, Options{Countries: []string{"GB", "US", "IN"}})
		ctx := f.tabAs(t, "", visitor{languages: "fr-FR"}) // FR not allowed: no default
		if got := text(t, ctx, "country-code"); got != "Pays" {
			t.Errorf("country %q, want none", got)
		}
		audit(t, ctx, "no country chosen")
		do(t, ctx, chromedp.Click(chromedp.ID("country")))
		got := js[string](t, ctx, `[...document.querySelectorAll("#country-list li")].map(li => li.dataset.region).sort().join(" ")`)
		if got != "GB IN US" {
			t.Errorf("picker offers %q, want GB IN US", got)
		}
	})
}

func TestLoginPage_Languages_Browser(t *testing.T) {
	f := newFixture(t)

	for _, tc := range []struct{ accept, lang, dir, heading, send string }{
		{"en-US,en;q=0.9", "en", "ltr", "Sign in to Acme", "Send code"},
		{"es-MX,es;q=0.9", "es", "ltr", "Iniciar sesión en Acme", "Enviar código"},
		{"fr-CA,fr;q=0.9", "fr", "ltr", "Connexion à Acme", "Envoyer le code"},
		{"de-AT", "de", "ltr", "Bei Acme anmelden", "Code senden"},
		{"pt-BR,pt;q=0.9", "pt-BR", "ltr", "Entrar no Acme", "Enviar código"},
		{"hi-IN,hi", "hi", "ltr", "Acme में साइन इन करें", "कोड भेजें"},
		{"id-ID,id", "id", "ltr", "Masuk ke Acme", "Kirim kode"},
		{"ar-EG,ar;q=0.9", "ar", "rtl", "تسجيل الدخول إلى Acme", "إرسال الرمز"},
		{"zh-CN,zh;q=0.9", "zh-CN", "ltr", "登录 Acme", "发送验证码"},
		{"nl-NL,nl;q=0.9", "en", "ltr", "Sign in to Acme", "Send code"}, // no catalogue: English
	} {
		t.Run(tc.accept, func(t *testing.T) {
			ctx := f.tabAs(t, "", visitor{languages: tc.accept})
			if got := js[string](t, ctx, `document.documentElement.lang + " " + document.documentElement.dir`); got != tc.lang+" "+tc.dir {
				t.Errorf("<html lang dir> = %q, want %s %s", got, tc.lang, tc.dir)
			}
			if got := text(t, ctx, "title"); got != tc.heading {
				t.Errorf("heading %q, want %q", got, tc.heading)
			}
			if got := text(t, ctx, "send"); got != tc.send {
				t.Errorf("send %q, want %q", got, tc.send)
			}
			if tc.lang != "en" {
				docsShot(t, ctx, "login-"+tc.lang)
			}
		})
	}

	t.Run("French_SignsIn", func(t *testing.T) {
		ctx := f.tabAs(t, "?return_to=%2Fapp", visitor{languages: "fr-FR,fr"})
		if got := text(t, ctx, "country-code"); got != "+33" {
			t.Errorf("country %q, want +33", got)
		}
		f.api.queue("/otp", challenge(30))
		if got := sendNumber(t, ctx, f, "06 12 34 56 78"); got != "+33612345678" {
			t.Errorf("sent %q", got)
		}
		if got := f.api.callsTo("/otp")[0].body["language"]; got != "fr" {
			t.Errorf("language sent %v, want fr", got)
		}
		if got := text(t, ctx, "code-hint"); !strings.Contains(got, "Si ce numéro a accès, un code est en route vers le "+testMasked+".") {
			t.Errorf("hint %q", got)
		}
		waitFor(t, ctx, "a French countdown", `/^Renvoyer le code dans \d+\s?s$/.test(document.getElementById("countdown").textContent)`)
		f.api.queue("/verify", apiError(403, "otp_expired", "Token has expired or is invalid"))
		js[bool](t, ctx, fmt.Sprintf(pasteJS, "111111", "code-0"))
		waitErrorContains(t, ctx, "Ce code est incorrect ou a expiré.")
		docsShot(t, ctx, "login-fr-wrong-code")
		js[bool](t, ctx, fmt.Sprintf(pasteJS, "123456", "code-0"))
		do(t, ctx, chromedp.WaitVisible(chromedp.ID("welcome")))
	})

	t.Run("Arabic_RightToLeft_SignsIn", func(t *testing.T) {
		ctx := f.tabAs(t, "?return_to=%2Fapp", visitor{languages: "ar-EG,ar"})
		if got := text(t, ctx, "country-code"); got != "+20" {
			t.Errorf("country %q, want +20", got)
		}
		if got := js[string](t, ctx, `getComputedStyle(document.getElementById("phone")).direction`); got != "ltr" {
			t.Errorf("the number is written %s, want ltr", got)
		}
		audit(t, ctx, "Arabic phone step")
		f.api.queue("/otp", challenge(30))
		// Typed with an Arabic keyboard's digits.
		if got, want := sendNumber(t, ctx, f, "٠١٠٠ ١٢٣ ٤٥٦٧"), e164(t, "0100 123 4567", "EG"); got != want {
			t.Errorf("sent %q, want %s", got, want)
		}
		if got := text(t, ctx, "code-label"); got != "أدخل الرمز" {
			t.Errorf("code label %q", got)
		}
		if got := js[string](t, ctx, `getComputedStyle(document.getElementById("code-digits")).direction`); got != "ltr" {
			t.Errorf("code boxes run %s, want ltr", got)
		}
		audit(t, ctx, "Arabic code step")
		docsShot(t, ctx, "login-ar-code")
		js[bool](t, ctx, fmt.Sprintf(pasteJS, "123456", "code-0"))
		do(t, ctx, chromedp.WaitVisible(chromedp.ID("welcome")))
	})

	t.Run("LanguageOption_Forces", func(t *testing.T) {
		f := newFixtureWith(t, Options{AppName: "Acme", Language: "de"})
		ctx := f.tabAs(t, "", visitor{languages: "fr-FR,fr"})
		if got := js[string](t, ctx, `document.documentElement.lang`); got != "de" {
			t.Errorf("lang %q, want de", got)
		}
		// The country still follows the visitor's language.
		if got := text(t, ctx, "country-code"); got != "+33" {
			t.Errorf("country %q, want +33", got)
		}
	})

	t.Run("NoAccessPage_InTheVisitorsLanguage", func(t *testing.T) {
		ctx := f.tabAs(t, "", visitor{languages: "ar"})
		do(t, ctx, chromedp.Navigate(f.srv.URL+"/admin/x"), chromedp.WaitVisible(chromedp.ID("change-number")))
		if got := js[string](t, ctx, `document.documentElement.lang + " " + document.documentElement.dir`); got != "ar rtl" {
			t.Errorf("<html> %q", got)
		}
		if got := text(t, ctx, "title"); got != "لا يوجد وصول إلى Acme" {
			t.Errorf("heading %q", got)
		}
		if got := text(t, ctx, "no-access-message"); !strings.Contains(got, testMasked) {
			t.Errorf("message %q", got)
		}
		audit(t, ctx, "no-access page, Arabic")
		docsShot(t, ctx, "no-access-ar")
	})
}

// When the server offers WhatsApp and calls, the code step offers them as
// the resend action, and the channel the code went by is kept.
func TestLoginPage_OtherChannels_Browser(t *testing.T) {
	t.Run("SMSOnly_NoChoice", func(t *testing.T) {
		f := newFixture(t)
		ctx := f.tab(t, "")
		toCodeStep(t, ctx, f, challenge(0))
		if n := js[int](t, ctx, `document.querySelectorAll("#channels button").length`); n != 0 {
			t.Errorf("%d channel buttons without other channels", n)
		}
	})

	f := newFixtureWith(t, Options{AppName: "Acme", Channels: []string{"whatsapp", "voice"}})
	ctx := f.tab(t, "")
	toCodeStep(t, ctx, f, challenge(0))
	got := js[string](t, ctx, `[...document.querySelectorAll("#channels button")].map(b => b.id + "=" + b.textContent).join("|")`)
	if got != "resend-whatsapp=Send by WhatsApp instead|resend-voice=Call me instead" {
		t.Errorf("channel choices %q", got)
	}
	audit(t, ctx, "code step with channels")
	docsShot(t, ctx, "login-channels")

	f.api.queue("/resend", challengeVia(30, "whatsapp"))
	do(t, ctx, chromedp.Click(chromedp.ID("resend-whatsapp")))
	waitFor(t, ctx, "the WhatsApp hint", `document.getElementById("code-hint").textContent.includes("WhatsApp message")`)
	calls := f.api.callsTo("/resend")
	if len(calls) != 1 || calls[0].body["channel"] != "whatsapp" || calls[0].body["phone"] != testPhone {
		t.Errorf("/resend calls %+v, want channel whatsapp", calls)
	}
	got = js[string](t, ctx, `[...document.querySelectorAll("#channels button")].map(b => b.id + (b.disabled ? ":off" : "")).join(" ")`)
	if got != "resend-sms:off resend-voice:off" {
		t.Errorf("after WhatsApp: %q, want SMS and voice, waiting for the cooldown", got)
	}
	js[bool](t, ctx, fmt.Sprintf(pasteJS, "123456", "code-0"))
	if n := f.api.waitCalls("/verify", 1, 5*time.Second); n != 1 || f.api.callsTo("/verify")[0].body["type"] != "whatsapp" {
		t.Errorf("/verify calls %+v, want type whatsapp", f.api.callsTo("/verify"))
	}
}

// proxyFrom answers the tab's requests for origin from with the fixture's
// server, so the page runs at a host that is not localhost over plain
// http, with no network involved.
func proxyFrom(t *testing.T, ctx context.Context, from, to string) {
	t.Helper()
	err := chromedp.Listen(ctx, func(ev any) {
		e, ok := ev.(*fetch.EventRequestPaused)
		if !ok {
			return
		}
		go func() {
			fail := func() {
				_, _ = chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: e.RequestID, ErrorReason: "Failed"})
			}
			req, err := http.NewRequest(e.Request.Method, to+strings.TrimPrefix(e.Request.URL, from), nil)
			if err != nil {
				fail()
				return
			}
			for k, v := range e.Request.Headers {
				req.Header.Set(k, fmt.Sprint(v))
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				fail()
				return
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			var hs []*fetch.HeaderEntry
			for k, vs := range res.Header {
				for _, v := range vs {
					hs = append(hs, &fetch.HeaderEntry{Name: k, Value: v})
				}
			}
			_, _ = chromedp.Call(ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
				RequestID: e.RequestID, ResponseCode: int64(res.StatusCode), ResponseHeaders: hs, Body: body})
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: from + "/*"}}}); err != nil {
		t.Fatal(err)
	}
}

// Over plain http at a host other than localhost the browser would drop
// the Secure session cookies: the page says so, for the operator, and
// sends no code, instead of looping back to itself after every sign-in.
func TestLoginPage_PlainHTTPElsewhere_SaysSo_Browser(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := chromedp.NewContext(f.browser)
	defer cancel()
	log := testenv.RecordPage(t, ctx)
	const origin = "http://otpgate.test"
	proxyFrom(t, ctx, origin, f.srv.URL)
	do(t, ctx, chromedp.Navigate(origin+DefaultLoginPath), chromedp.WaitVisible(chromedp.ID("insecure")))
	if js[bool](t, ctx, `window.isSecureContext`) {
		t.Fatal("the test page is a secure context")
	}
	body := text(t, ctx, "insecure")
	for _, want := range []string{"Sign-in can't work at this address", "plain HTTP at otpgate.test", "Secure session cookies", "HTTPS"} {
		if !strings.Contains(body, want) {
			t.Errorf("message %q lacks %q", body, want)
		}
	}
	if !js[bool](t, ctx, `document.getElementById("send").disabled`) {
		t.Error("#send enabled where sign-in cannot work")
	}
	do(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), "+14155550100"), chromedp.KeyEvent(kb.Enter))
	time.Sleep(200 * time.Millisecond)
	if n := len(f.api.callsTo("/otp")); n != 0 {
		t.Errorf("%d codes sent from an insecure page", n)
	}
	audit(t, ctx, "insecure context")
	docsShot(t, ctx, "login-insecure")
	log.AssertNoErrors(t)

	// On the fixture's own http://127.0.0.1 (a secure context) nothing is said.
	ctx = f.tab(t, "")
	if !js[bool](t, ctx, `document.getElementById("insecure").hidden`) {
		t.Error("insecure message on a loopback origin")
	}
}

// axe-core finds no serious or critical violation in any state of the
// login and no-access pages, in light and dark mode.
func TestLoginPage_Accessibility_Browser(t *testing.T) {
	f := newFixture(t)
	for _, dark := range []bool{false, true} {
		mode, prefix := "light", "login-"
		if dark {
			mode, prefix = "dark", "login-dark-"
		}
		t.Run(mode, func(t *testing.T) {
			v := visitor{dark: dark}
			ctx := f.tabAs(t, "", v)
			audit(t, ctx, mode+" phone step")
			docsShot(t, ctx, prefix+"phone")

			do(t, ctx, chromedp.Click(chromedp.ID("country")))
			audit(t, ctx, mode+" country picker")
			do(t, ctx, chromedp.KeyEvent(kb.Escape))

			do(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), "12"), chromedp.KeyEvent(kb.Enter))
			waitErrorContains(t, ctx, "doesn't look like")
			audit(t, ctx, mode+" phone error")

			limited := apiError(429, "over_sms_send_rate_limit", "too many")
			limited.header["Retry-After"] = "42"
			f.api.queue("/otp", limited)
			js[bool](t, ctx, `(() => { document.getElementById("phone").value = ""; return true; })()`)
			do(t, ctx, chromedp.SendKeys(chromedp.ID("phone"), "+14155550100"), chromedp.Click(chromedp.ID("send")))
			waitErrorContains(t, ctx, "Too many codes requested")
			audit(t, ctx, mode+" rate limit")
			docsShot(t, ctx, prefix+"rate-limited")

			ctx = f.tabAs(t, "", v)
			toCodeStep(t, ctx, f, challenge(30))
			audit(t, ctx, mode+" code step")
			f.api.queue("/verify", apiError(403, "otp_expired", "Token has expired or is invalid"))
			js[bool](t, ctx, fmt.Sprintf(pasteJS, "111111", "code-0"))
			waitErrorContains(t, ctx, "That code is wrong")
			audit(t, ctx, mode+" wrong code")
			docsShot(t, ctx, prefix+"wrong-code")

			v.languages = "ar-EG,ar"
			ctx = f.tabAs(t, "", v)
			audit(t, ctx, mode+" RTL phone step")
			toCodeStep(t, ctx, f, challenge(30))
			audit(t, ctx, mode+" RTL code step")

			v.languages = ""
			ctx = f.tabAs(t, "", v)
			do(t, ctx, chromedp.Navigate(f.srv.URL+"/admin/reports"), chromedp.WaitVisible(chromedp.ID("change-number")))
			audit(t, ctx, mode+" no-access page")
			docsShot(t, ctx, strings.Replace(prefix, "login", "no-access", 1)+"en")
		})
	}
}

// asciiDigits is the page's reading of the digits of other scripts, for
// libphonenumber, which takes ASCII and Arabic-Indic ones only.
func asciiDigits(s string) string {
	return strings.Map(func(r rune) rune {
		for _, zero := range []rune{0x0660, 0x06f0, 0x0966, 0xff10} {
			if r >= zero && r <= zero+9 {
				return '0' + r - zero
			}
		}
		return r
	}, s)
}
