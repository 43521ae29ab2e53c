package gateway

import (
	"strings"

	"github.com/otpgate/otpgate/module/phone"
)

// parsePhone reads a phone as the API receives it: +E.164, or the same
// digits without the '+', the form GoTrue stores and accepts (Supabase
// clients pass on what the app gives them). Only a leading digit 1-9 gets
// the '+': a national number ("0207 946 0958") is still refused, and
// everything else is exactly as strict as phone.Parse.
func parsePhone(s string) (phone.Number, error) {
	t := strings.TrimSpace(s)
	if t != "" && '1' <= t[0] && t[0] <= '9' {
		t = "+" + t
	}
	return phone.Parse(t)
}

// apiPhone is a phone as the API's user object spells it: Supabase's
// digits without the '+'. Identity headers and placeholders keep +E.164.
func apiPhone(e164 string) string {
	return strings.TrimPrefix(e164, "+")
}
