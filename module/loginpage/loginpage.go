// Package loginpage renders otpgate's self-contained login page: a phone
// step, a one-time-code step and a redirect to the page the visitor first
// asked for. It knows nothing of Caddy; the adapter mounts a *Page at
// login_path.
//
// The page is one html/template with inline CSS and JavaScript, allowed by a
// per-response CSP nonce. It talks only to the API under APIPrefix on its own
// origin, with fetch and JSON, and never touches a token: the server sets the
// session cookies on a successful verify and the page navigates away.
//
// # Template variables
//
// The default page, and a whole-page override given as Options.TemplateFile,
// are executed with a TemplateData value:
//
//	.AppName         name of the application ("" when not configured)
//	.AccentColor     accent colour, a validated hex colour such as #4f46e5
//	.AccentTextColor #ffffff or #111827, whichever reads better on .AccentColor
//	.APIPrefix       path of the auth API, e.g. /auth/v1 (no trailing slash)
//	.LoginPath       path of this page, e.g. /auth/login
//	.ReturnTo        where to go after sign-in, already passed through SafeReturnTo
//	.Nonce           CSP nonce of this response; put it on every <script> and <style>
//	.CodeLength      number of digits of a code (6..10)
//	.Lang, .Dir      the page's language (one of Languages) and "ltr" or "rtl"
//	.T               the catalogue of .Lang: {{.T.send}}, {{tr .T "title_app" "app" .AppName}}
//	.Country         the picker's initial region ("" for none), with
//	.CountryFlag     its emoji flag and
//	.CountryCode     its calling code, "+44"
//	.Channels        the offered channels, space-separated: "sms whatsapp"
//	.I18N, .Countries JSON for the script: the catalogue, and the picker's
//	                 regions with libphonenumber's rules for them
//
// # For everyone
//
// Every string comes from a catalogue, i18n/<language>.json, embedded:
// the handler's language when set, else the best match of the visitor's
// Accept-Language, else English. The phone step has a country picker
// limited to Options.Countries; its initial country is
// Options.DefaultCountry, else the region of the visitor's preferred
// language when offered. People write their number as at home ("07400
// 123456" in the UK); the script turns it into E.164 with
// libphonenumber's metadata, which New reduces to a table of the offered
// regions (countries.go) and embeds in the page. Over plain http at a host
// that is not localhost the page says the browser will drop the session
// cookies, instead of sending codes.
//
// An override can reuse parts of the default page with
// {{template "otpgate.style" .}}, {{template "otpgate.body" .}} and
// {{template "otpgate.script" .}}. The script expects the element IDs that
// the body defines; TEMPLATE.md lists them. otpgate.script is the JSON
// data blocks and the script element; otpgate.js (page.js) is the script
// alone, for an override's own <script nonce="{{.Nonce}}"> element.
//
// # The no-access page
//
// RenderNoAccess answers a signed-in visitor whose roles a site does not
// admit (403): it names the masked phone of the session and offers "Use a
// different number", which signs out and opens the login page. It is the
// template "otpgate.noaccess", executed with a NoAccessData value: the
// fields above plus
//
//	.MaskedPhone     the signed-in phone, masked ("" when unknown)
//	.LoginURL        LoginPath with return_to set to .ReturnTo
//
// A whole-page override does not change the built-in no-access page; an
// override file that defines {{define "otpgate.noaccess"}} replaces it, and
// may reuse {{template "otpgate.noaccess.body" .}} and
// {{template "otpgate.noaccess.script" .}}.
package loginpage

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

//go:embed page.html.tmpl
var defaultTemplate string

// pageScript is the login page's JavaScript, without its <script>
// element. New parses it as the template scriptName, which
// otpgate.script executes inside <script nonce="{{.Nonce}}">: that keeps
// it in the page, under the CSP nonce, and html/template drops its
// comments as it did when the script was part of page.html.tmpl. The
// script takes no template actions (it must not contain "{{"); it reads
// its data from the page: the data-* attributes of #otpgate and the
// JSON of #otpgate-i18n and #otpgate-countries.
//
//go:embed page.js
var pageScript string

//go:embed noaccess.html.tmpl
var noAccessTemplate string

// Names of the templates a Page executes.
const (
	pageTemplate     = "otpgate.page"
	overrideTemplate = "otpgate.override"
	noAccessName     = "otpgate.noaccess"
	scriptName       = "otpgate.js"
)

// Defaults of Options.
const (
	DefaultAccentColor = "#4f46e5"
	DefaultAPIPrefix   = "/auth/v1"
	DefaultLoginPath   = "/auth/login"
	DefaultCodeLength  = 6
)

// The code lengths the page takes: the gateway's (its MinCodeLength and
// MaxCodeLength, which this package, beneath it, cannot import).
const (
	minCodeLength = 6
	maxCodeLength = 10
)

// ReturnToParam is the query parameter that carries the page to return to.
const ReturnToParam = "return_to"

// Options configures a Page. Zero values take the defaults above.
type Options struct {
	// AppName is shown in the title and heading ("Sign in to AppName").
	AppName string
	// AccentColor is a CSS hex colour (#rgb, #rgba, #rrggbb or
	// #rrggbbaa) for buttons, links and focus rings.
	AccentColor string
	// APIPrefix is the path under which the auth API is served.
	APIPrefix string
	// LoginPath is the path at which this page is served.
	LoginPath string
	// CodeLength is the number of digits of a code, 6 to 10, as the otp
	// length of the app.
	CodeLength int
	// TemplateFile optionally replaces the whole page with an html/template
	// file. It is parsed and test-executed by New, so a broken file fails at
	// load and not at the first visitor.
	TemplateFile string
	// Countries are the ISO 3166-1 alpha-2 regions the country picker
	// offers, as the app's countries allowlist; empty: every region.
	Countries []string
	// DefaultCountry is the picker's initial region. Empty: the region of
	// the visitor's preferred language when offered, else none.
	DefaultCountry string
	// Language forces the page's language, one of Languages. Empty: the
	// best match of the visitor's Accept-Language, else English.
	Language string
	// Channels are the delivery channels the server offers: "sms" and
	// optionally "whatsapp" and "voice", which the code step offers as
	// the resend action. Empty: SMS only.
	Channels []string
}

// TemplateData is what the page template is executed with. See the package
// documentation for the meaning of each field.
type TemplateData struct {
	AppName         string
	AccentColor     string
	AccentTextColor string
	APIPrefix       string
	LoginPath       string
	ReturnTo        string
	Nonce           string
	CodeLength      int

	// Lang is the page's language (one of Languages, e.g. "pt-BR"), Dir
	// its writing direction ("ltr" or "rtl") and T its catalogue.
	Lang string
	Dir  string
	T    map[string]string
	// Country is the picker's initial region ("" for none), CountryFlag
	// its emoji flag and CountryCode its calling code ("+44").
	Country     string
	CountryFlag string
	CountryCode string
	// Channels are the offered delivery channels, space-separated.
	Channels string
	// I18N (the catalogue) and Countries (the picker's regions with their
	// numbering rules) are JSON for the script.
	I18N      template.JS
	Countries template.JS
}

// Page is the login page. It is safe for concurrent use.
type Page struct {
	tmpl *template.Template
	name string // template to execute
	base TemplateData
	// noAccess holds the no-access page: the default templates, or the
	// override's when its file defines otpgate.noaccess.
	noAccess *template.Template
	// language is the forced language ("": negotiated per request);
	// country the default country ("": from the request); offered the
	// regions of the picker.
	language string
	country  string
	offered  map[string]bool
}

// funcs are the template functions beyond html/template's own.
var funcs = template.FuncMap{
	"inc":    func(i int) int { return i + 1 },
	"tr":     tr,
	"around": around,
}

// channels the page knows how to offer.
var knownChannels = []string{"sms", "whatsapp", "voice"}

// hexColor is a CSS hex colour: #rgb, #rgba, #rrggbb or #rrggbbaa.
var hexColor = regexp.MustCompile(`^#([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$`)

// withDefaults returns o with its zero options at their defaults.
func (o Options) withDefaults() Options {
	if o.AccentColor == "" {
		o.AccentColor = DefaultAccentColor
	}
	if o.APIPrefix == "" {
		o.APIPrefix = DefaultAPIPrefix
	}
	if o.LoginPath == "" {
		o.LoginPath = DefaultLoginPath
	}
	if o.CodeLength == 0 {
		o.CodeLength = DefaultCodeLength
	}
	return o
}

// Validate checks o as New will use it, its defaults applied, and
// reports every problem, each naming the Caddyfile option at fault
// ("accent_color: ..."). It reads no file: New parses TemplateFile.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !hexColor.MatchString(o.AccentColor) {
		add("accent_color: must be a CSS hex colour such as %s (got %q)", DefaultAccentColor, o.AccentColor)
	}
	if _, err := cleanPath("api_prefix", o.APIPrefix, DefaultAPIPrefix); err != nil {
		errs = append(errs, err)
	}
	if _, err := cleanPath("login_path", o.LoginPath, DefaultLoginPath); err != nil {
		errs = append(errs, err)
	}
	if o.CodeLength < minCodeLength || o.CodeLength > maxCodeLength {
		add("code length: must be %d..%d (got %d)", minCodeLength, maxCodeLength, o.CodeLength)
	}
	if o.Language != "" && SupportedLanguage(o.Language) == "" {
		add("language: %q is not one of %s", o.Language, strings.Join(Languages, " "))
	}
	for _, r := range o.Countries {
		if callingCode(strings.ToUpper(strings.TrimSpace(r))) == "" {
			add("countries: %q is not a region code such as GB or US", r)
		}
	}
	if c := strings.ToUpper(o.DefaultCountry); c != "" {
		switch {
		case callingCode(c) == "":
			add("default_country: %q is not a region code such as GB or US", o.DefaultCountry)
		case len(o.Countries) > 0 && !slices.ContainsFunc(o.Countries, func(r string) bool { return strings.EqualFold(strings.TrimSpace(r), c) }):
			add("default_country: %q is not among the allowed countries %s", o.DefaultCountry, strings.Join(o.Countries, " "))
		}
	}
	for _, ch := range o.Channels {
		if !slices.Contains(knownChannels, ch) {
			add("channels: %q is not one of %s", ch, strings.Join(knownChannels, " "))
		}
	}
	return errors.Join(errs...)
}

// New checks the options (Validate), parses the page template (the
// override file when given) and returns the page.
func New(o Options) (*Page, error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("login page: %w", err)
	}
	o.APIPrefix, _ = cleanPath("api_prefix", o.APIPrefix, DefaultAPIPrefix)
	o.LoginPath, _ = cleanPath("login_path", o.LoginPath, DefaultLoginPath)
	lang := SupportedLanguage(o.Language)
	countries, offered, err := buildCountries(o.Countries)
	if err != nil {
		return nil, err
	}
	country := strings.ToUpper(o.DefaultCountry)
	channels := []string{"sms"}
	for _, ch := range o.Channels {
		if !slices.Contains(channels, ch) {
			channels = append(channels, ch)
		}
	}

	tmpl, err := template.New(pageTemplate).Funcs(funcs).Parse(defaultTemplate)
	if err == nil {
		_, err = tmpl.New(scriptName).Parse(pageScript)
	}
	if err == nil {
		// only definitions: they join the set without replacing the page
		_, err = tmpl.Parse(noAccessTemplate)
	}
	if err != nil {
		return nil, fmt.Errorf("login page: default template: %w", err)
	}
	p := &Page{
		tmpl: tmpl,
		name: pageTemplate,
		base: TemplateData{
			AppName:         o.AppName,
			AccentColor:     strings.ToLower(o.AccentColor),
			AccentTextColor: textColorOn(o.AccentColor),
			APIPrefix:       o.APIPrefix,
			LoginPath:       o.LoginPath,
			CodeLength:      o.CodeLength,
			Channels:        strings.Join(channels, " "),
			Countries:       template.JS(countries),
		},
		noAccess: tmpl,
		language: lang,
		country:  country,
		offered:  offered,
	}
	if o.TemplateFile != "" {
		src, err := os.ReadFile(o.TemplateFile)
		if err != nil {
			return nil, fmt.Errorf("login page: template file: %w", err)
		}
		// The clone must be taken before the default set is first
		// executed; from then on the two sets are independent.
		override, err := tmpl.Clone()
		if err != nil {
			return nil, fmt.Errorf("login page: template file %s: %w", o.TemplateFile, err)
		}
		if _, err := override.New(overrideTemplate).Parse(string(src)); err != nil {
			return nil, fmt.Errorf("login page: template file %s: %w", o.TemplateFile, err)
		}
		p.tmpl, p.name = override, overrideTemplate
		// A definition parsed from the file carries the file's template
		// name; the default's carries the default page's.
		if t := override.Lookup(noAccessName); t != nil && t.Tree != nil && t.Tree.ParseName == overrideTemplate {
			p.noAccess = override
		}
	}
	// Execute once per language so that a reference to an unknown field
	// or template fails now, with the file name, rather than on a
	// visitor's request.
	for _, l := range Languages {
		probe := p.base
		probe.ReturnTo, probe.Nonce = "/", "probe"
		p.localize(&probe, catalogues[l], "")
		if err := p.tmpl.ExecuteTemplate(io.Discard, p.name, probe); err != nil {
			return nil, fmt.Errorf("login page: template %s: %w", o.TemplateFile, err)
		}
		if err := p.noAccess.ExecuteTemplate(io.Discard, noAccessName, noAccessData(probe, "+1***-***-0100")); err != nil {
			if o.TemplateFile != "" && p.noAccess == p.tmpl {
				return nil, fmt.Errorf("login page: template %s: %s: %w", o.TemplateFile, noAccessName, err)
			}
			return nil, fmt.Errorf("login page: no-access template: %w", err)
		}
	}
	return p, nil
}

// localize sets the language and country fields of data: the catalogue
// cat, and the default country, else the region of the visitor's
// preferred language (preferred) when the picker offers it.
func (p *Page) localize(data *TemplateData, cat *catalogue, preferred string) {
	data.Lang, data.Dir, data.T, data.I18N = cat.tag, cat.dir, cat.msgs, template.JS(cat.json)
	country := p.country
	if country == "" && p.offered[preferred] {
		country = preferred
	}
	data.Country, data.CountryFlag, data.CountryCode = country, flag(country), callingCode(country)
}

// localized is the page's data for the visitor of r: the language of its
// Accept-Language (unless forced) and the country of its preferred one.
func (p *Page) localized(r *http.Request, returnTo string) TemplateData {
	data := p.base
	data.ReturnTo = SafeReturnTo(returnTo)
	data.Nonce = newNonce()
	p.localize(&data, negotiate(r, p.language), preferredRegion(r))
	return data
}

// cleanPath validates an absolute path option and drops a trailing slash.
func cleanPath(what, p, def string) (string, error) {
	if p == "" {
		return def, nil
	}
	if !strings.HasPrefix(p, "/") || SafeReturnTo(p) != p {
		return "", fmt.Errorf("%s: %q: want an absolute path such as %s", what, p, def)
	}
	if strings.ContainsAny(p, "?#") {
		return "", fmt.Errorf("%s: %q: no query or fragment allowed", what, p)
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return p, nil
}

// textColorOn picks white or near-black text for a background colour, by
// the WCAG contrast ratio.
func textColorOn(hex string) string {
	h := hex[1:]
	if len(h) <= 4 { // #rgb or #rgba; the alpha is not weighed
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	var lum float64
	for i, weight := range []float64{0.2126, 0.7152, 0.0722} {
		v, _ := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		c := float64(v) / 255
		if c <= 0.04045 {
			c /= 12.92
		} else {
			c = math.Pow((c+0.055)/1.055, 2.4)
		}
		lum += weight * c
	}
	// Contrast with white (L=1) against contrast with #111827 (L≈0.0135).
	if (1.05)/(lum+0.05) >= (lum+0.05)/(0.0135+0.05) {
		return "#ffffff"
	}
	return "#111827"
}

// ServeHTTP serves the page for GET and HEAD, taking the return_to query
// parameter through SafeReturnTo. Other methods get 405.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.Render(w, r, r.URL.Query().Get(ReturnToParam))
}

// Render writes the page for returnTo, which it sanitises with SafeReturnTo,
// with the security headers and a fresh CSP nonce. Methods other than GET
// and HEAD get 405.
func (p *Page) Render(w http.ResponseWriter, r *http.Request, returnTo string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	data := p.localized(r, returnTo)
	w.Header().Add("Vary", "Accept-Language")
	writePage(w, r, http.StatusOK, p.tmpl, p.name, data, data.Nonce)
}

// newNonce returns a CSP nonce: rand.Text is 26 base32 characters (130
// bits), valid in a CSP nonce.
func newNonce() string { return rand.Text() }

// writePage executes template name of set with data and sends it with
// status, the security headers and the CSP of nonce. A HEAD request gets
// the headers only.
func writePage(w http.ResponseWriter, r *http.Request, status int, set *template.Template, name string, data any, nonce string) {
	var buf bytes.Buffer
	if err := set.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", CSP(nonce))
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// CSP returns the Content-Security-Policy of a page rendered with nonce.
func CSP(nonce string) string {
	return "default-src 'none'; " +
		"script-src 'nonce-" + nonce + "'; " +
		"style-src 'nonce-" + nonce + "'; " +
		"connect-src 'self'; " +
		"img-src 'self' data:; " +
		"form-action 'self'; " +
		"base-uri 'none'; " +
		"frame-ancestors 'none'"
}
