package gateway

import (
	"strings"

	"github.com/otpgate/otpgate/module/sender"
)

// messageText is the text of m in language lang ("fr", "pt-BR", "fr-CA"):
// the template of that language, else of its base language ("fr" for
// "fr-CA"), rendered; "" when there is none, and the sender renders its
// own template.
func (g *Gateway) messageText(lang string, m sender.Message) string {
	if len(g.cfg.MessageTemplates) == 0 || lang == "" {
		return ""
	}
	for _, want := range []string{lang, strings.SplitN(lang, "-", 2)[0]} {
		for tag, tmpl := range g.cfg.MessageTemplates {
			if strings.EqualFold(tag, want) {
				return sender.Render(tmpl, m)
			}
		}
	}
	return ""
}
