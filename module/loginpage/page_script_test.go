package loginpage

import (
	"regexp"
	"strings"
	"testing"
)

// lastScript is the content of the last <script> element of a page.
var lastScript = regexp.MustCompile(`(?s)<script nonce="[^"]+">\n?((?:[^<]|<[^/])*)</script>\s*(?:</body>|$)`)

// page.js is plain JavaScript, parsed as a template without actions.
func TestPageScript_HasNoTemplateActions(t *testing.T) {
	if strings.Contains(pageScript, "{{") {
		t.Error(`page.js contains "{{": it is parsed as a template without actions`)
	}
	if strings.Contains(pageScript, "</script") {
		t.Error("page.js contains </script")
	}
}

// An override can place the script alone, with otpgate.js, in its own
// nonce'd element, next to its own data blocks; it is the default page's
// script.
func TestTemplateOverride_ScriptAlone(t *testing.T) {
	file := writeFile(t, `<!doctype html><html lang="{{.Lang}}"><title>custom</title>
{{template "otpgate.body" .}}
<script type="application/json" id="otpgate-i18n" nonce="{{.Nonce}}">{{.I18N}}</script>
<script type="application/json" id="otpgate-countries" nonce="{{.Nonce}}">{{.Countries}}</script>
<script nonce="{{.Nonce}}">{{template "otpgate.js" .}}</script>
</body>`)
	want := lastScript.FindStringSubmatch(get(t, newPage(t, Options{}), "/auth/login").Body.String())
	if want == nil || !strings.Contains(want[1], `readJSON("otpgate-i18n")`) {
		t.Fatalf("default page: no script found")
	}
	w := get(t, newPage(t, Options{TemplateFile: file}), "/auth/login")
	body := w.Body.String()
	got := lastScript.FindStringSubmatch(body)
	if got == nil || got[1] != want[1] {
		t.Errorf("override's script differs from the default page's")
	}
	nonce := regexp.MustCompile(`'nonce-([^']+)'`).FindStringSubmatch(w.Header().Get("Content-Security-Policy"))[1]
	if strings.Count(body, `<script nonce="`+nonce+`">`) != 1 || strings.Count(body, `nonce="`+nonce+`"`) != 3 {
		t.Error("override's scripts lack the response's nonce")
	}
}
