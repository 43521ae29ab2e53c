package loginpage

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func getAs(t *testing.T, h http.Handler, acceptLanguage string) string {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/auth/login", nil)
	if acceptLanguage != "" {
		r.Header.Set("Accept-Language", acceptLanguage)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	return w.Body.String()
}

var htmlLang = regexp.MustCompile(`<html lang="([^"]*)" dir="([^"]*)">`)

func TestLanguage_FromAcceptLanguage(t *testing.T) {
	p := newPage(t, Options{})
	for accept, want := range map[string]string{
		"":                             "en ltr",
		"fr":                           "fr ltr",
		"fr-CA,fr;q=0.9,en;q=0.8":      "fr ltr",
		"de-CH":                        "de ltr",
		"pt":                           "pt-BR ltr",
		"pt-PT,pt;q=0.9":               "pt-BR ltr",
		"es-419":                       "es ltr",
		"hi-IN":                        "hi ltr",
		"id":                           "id ltr",
		"ar-SA,ar;q=0.9":               "ar rtl",
		"zh-CN,zh;q=0.9":               "zh-CN ltr",
		"zh":                           "zh-CN ltr",
		"nl-NL,nl;q=0.9":               "en ltr", // no Dutch catalogue
		"nl;q=0.9,fr;q=0.8":            "fr ltr",
		"en;q=0.1,de;q=0.9":            "de ltr", // by weight, not by order
		"*":                            "en ltr",
		"garbage!!,fr":                 "fr ltr", // one bad entry does not spoil the header
		"fr;q=0":                       "en ltr",
		"x-klingon, ar;q=0.5, fr;q=0.": "ar rtl",
	} {
		m := htmlLang.FindStringSubmatch(getAs(t, p, accept))
		if m == nil || m[1]+" "+m[2] != want {
			t.Errorf("Accept-Language %q: <html> %v, want %s", accept, m, want)
		}
	}
}

func TestLanguage_OptionForcesOne(t *testing.T) {
	p := newPage(t, Options{Language: "pt-br", AppName: "Acme"})
	body := getAs(t, p, "ar,en")
	if !strings.Contains(body, `<html lang="pt-BR" dir="ltr">`) || !strings.Contains(body, "<title>Entrar no Acme</title>") {
		t.Error("language option ignored")
	}
	if _, err := New(Options{Language: "tlh"}); err == nil || !strings.Contains(err.Error(), "en es fr de pt-BR hi id ar zh-CN") {
		t.Errorf("unknown language: %v", err)
	}
}

// Every catalogue has every key of English with the same placeholders,
// and says something of its own (not English left untranslated).
func TestCatalogues_Complete(t *testing.T) {
	en := catalogues["en"].msgs
	for _, lang := range Languages {
		c := catalogues[lang]
		if err := sameShape(en, c.msgs); err != nil {
			t.Errorf("%s: %v", lang, err)
		}
		if lang == "en" {
			continue
		}
		same := 0
		for k, v := range c.msgs {
			if v == en[k] {
				same++
			}
		}
		if same > 2 {
			t.Errorf("%s: %d messages are the English text", lang, same)
		}
	}
	// Every key is used by a template or the script.
	var src strings.Builder
	for _, f := range []string{"page.html.tmpl", "page.js", "noaccess.html.tmpl"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	for k := range en {
		if !strings.Contains(src.String(), `"`+k+`"`) && !strings.Contains(src.String(), ".T."+k) &&
			!strings.HasPrefix(k, "resend_") && !strings.HasPrefix(k, "rate_") {
			t.Errorf("catalogue key %q is never used", k)
		}
	}
}

func TestCountry_DefaultFromOptionOrLanguage(t *testing.T) {
	country := regexp.MustCompile(`data-country="([^"]*)"`)
	for _, tc := range []struct {
		o      Options
		accept string
		want   string
	}{
		{Options{}, "en-GB,en", "GB"},
		{Options{}, "en", "US"},    // the likely region of English
		{Options{}, "fr", "FR"},    // and of French
		{Options{}, "ar-EG", "EG"}, // Egyptian Arabic
		{Options{}, "", ""},        // nothing to go by
		{Options{DefaultCountry: "de"}, "en-GB", "DE"},
		{Options{Countries: []string{"GB", "DE"}}, "en-US", ""}, // the US is not offered
		{Options{Countries: []string{"GB", "DE"}}, "de-AT,de", ""},
		{Options{Countries: []string{"GB", "DE"}, DefaultCountry: "GB"}, "de-DE", "GB"},
	} {
		m := country.FindStringSubmatch(getAs(t, newPage(t, tc.o), tc.accept))
		if m == nil || m[1] != tc.want {
			t.Errorf("%+v, %q: country %v, want %q", tc.o, tc.accept, m, tc.want)
		}
	}
}

func TestCountries_TableFromLibphonenumber(t *testing.T) {
	body := getAs(t, newPage(t, Options{Countries: []string{"GB", "us", "IN"}}), "")
	m := regexp.MustCompile(`<script type="application/json" id="otpgate-countries" nonce="[^"]+">(.*?)</script>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no country table in the page")
	}
	var table countryTable
	if err := json.Unmarshal([]byte(m[1]), &table); err != nil {
		t.Fatal(err)
	}
	var regions []string
	for _, c := range table.Countries {
		regions = append(regions, c.Region)
	}
	if strings.Join(regions, " ") != "GB IN US" {
		t.Errorf("regions %v, want GB IN US", regions)
	}
	gb := table.Countries[0]
	if gb.Code != 44 || gb.Example != "07400 123456" || !strings.Contains(gb.NationalPrefixForParsing, "0") || gb.InternationalPrefix != "00" || len(gb.Formats) == 0 {
		t.Errorf("GB = %+v", gb)
	}
	if us := table.Countries[2]; us.Code != 1 || us.Valid == "" || !us.Main {
		t.Errorf("US (shares +1) = %+v", us)
	}
	if len(table.Codes) < 200 {
		t.Errorf("%d calling codes, want all of them", len(table.Codes))
	}

	all := getAs(t, newPage(t, Options{}), "")
	if n := strings.Count(all, `"r":"`); n < 240 {
		t.Errorf("%d regions without an allowlist, want every region", n)
	}
}

func TestNew_RefusesBadCountryOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"unknown country":       {Countries: []string{"UK"}},
		"unknown default":       {DefaultCountry: "XX"},
		"default not allowed":   {Countries: []string{"GB"}, DefaultCountry: "FR"},
		"unknown channel":       {Channels: []string{"pigeon"}},
		"default is not a code": {DefaultCountry: "Germany"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
	if _, err := New(Options{Countries: []string{"GB"}, DefaultCountry: "FR"}); err == nil || !strings.Contains(err.Error(), "not among the allowed countries") {
		t.Errorf("default outside the allowlist: %v", err)
	}
}

// A whole-page override gets the catalogue too.
func TestTemplateOverride_GetsTheCatalogue(t *testing.T) {
	file := filepath.Join(t.TempDir(), "login.html")
	if err := os.WriteFile(file, []byte(`<!doctype html><html lang="{{.Lang}}" dir="{{.Dir}}">
<title>{{tr .T "title_app" "app" .AppName}}</title><p id="x">{{.T.send}} {{.Country}} {{.CountryCode}} {{.Channels}}</p>
{{template "otpgate.body" .}}{{template "otpgate.script" .}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newPage(t, Options{AppName: "Acme", TemplateFile: file, Channels: []string{"whatsapp"}})
	body := getAs(t, p, "ar-EG")
	for _, want := range []string{`<html lang="ar" dir="rtl">`, "<title>تسجيل الدخول إلى Acme</title>",
		`<p id="x">إرسال الرمز EG &#43;20 sms whatsapp</p>`, `id="otpgate-i18n"`, `id="otpgate-countries"`} {
		if !strings.Contains(body, want) {
			t.Errorf("override lacks %s", want)
		}
	}
}
