package sender

import "strings"

// DefaultTemplate is the message text used when none is configured. It fits
// one GSM-7 segment for any reasonable app name.
const DefaultTemplate = "Your {app} code is {code}"

// Render fills {app} and {code} in template.
func Render(template string, m Message) string {
	if template == "" {
		template = DefaultTemplate
	}
	return strings.NewReplacer("{app}", m.App, "{code}", m.Code).Replace(template)
}

// MaskTail keeps the last four digits of a number for logs: enough to
// tell numbers apart, too little to identify anyone.
func MaskTail(p string) string {
	var digits []byte
	for i := 0; i < len(p); i++ {
		if p[i] >= '0' && p[i] <= '9' {
			digits = append(digits, p[i])
		}
	}
	if len(digits) <= 4 {
		return "****"
	}
	return "****" + string(digits[len(digits)-4:])
}
