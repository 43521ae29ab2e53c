package gateway

import (
	"net/http"
	"testing"

	"github.com/otpgate/otpgate/module/store/memstore"
)

// A code asked for from a page in French is sent with the French text;
// a language without a text of its own, or no language, gets the
// sender's template (Text left empty).
func TestSend_LanguageChoosesMessageTemplate(t *testing.T) {
	e := newEnv(t, memstore.New(), func(c *Config) {
		c.AppName = "Acme"
		c.MessageTemplates = map[string]string{"fr": "Votre code {app} : {code}", "pt-BR": "Seu código {app}: {code}"}
	})
	for i, tc := range []struct{ lang, want string }{
		{"fr", "Votre code Acme : "},
		{"fr-CA", "Votre code Acme : "},
		{"PT-br", "Seu código Acme: "},
		{"de", ""},
		{"", ""},
	} {
		phone := "+1415555020" + string(rune('0'+i))
		r := e.do(http.MethodPost, "/auth/v1/otp", `{"phone":"`+phone+`","language":"`+tc.lang+`"}`)
		if r.status != http.StatusOK {
			t.Fatalf("%s: status %d %s", tc.lang, r.status, r.body)
		}
		e.sender.mu.Lock()
		m := e.sender.msgs[len(e.sender.msgs)-1]
		e.sender.mu.Unlock()
		want := tc.want
		if want != "" {
			want += m.Code
		}
		if m.Text != want {
			t.Errorf("language %q: text %q, want %q", tc.lang, m.Text, want)
		}
	}
}
