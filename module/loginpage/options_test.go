package loginpage

import (
	"strings"
	"testing"
)

func TestOptions_Validate_NamesTheOption(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{AccentColor: "teal"}, `accent_color: must be a CSS hex colour such as #4f46e5 (got "teal")`},
		{Options{DefaultCountry: "UK"}, `default_country: "UK" is not a region code such as GB or US`},
		{Options{Countries: []string{"GB"}, DefaultCountry: "FR"}, `default_country: "FR" is not among the allowed countries GB`},
		{Options{Language: "tlh"}, `language: "tlh" is not one of en es fr de pt-BR hi id ar zh-CN`},
		{Options{CodeLength: 4}, "code length: must be 6..10 (got 4)"},
	} {
		if err := tc.o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
}

// An accent colour with alpha (#rgba, #rrggbbaa) is a CSS hex colour too;
// the text colour on it is chosen by its RGB.
func TestNew_AccentColourWithAlpha(t *testing.T) {
	for c, text := range map[string]string{"#fff8": "#111827", "#4f46e5cc": "#ffffff"} {
		p, err := New(Options{AccentColor: c})
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if p.base.AccentTextColor != text {
			t.Errorf("%s: text colour %s, want %s", c, p.base.AccentTextColor, text)
		}
	}
}
