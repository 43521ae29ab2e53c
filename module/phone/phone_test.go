package phone

import (
	"errors"
	"strings"
	"testing"
)

func TestParse_AcceptsRealNumbers(t *testing.T) {
	tests := []struct {
		name, input string
		want        Number
	}{
		{"US", "+14155552671", Number{"+14155552671", "US", 1, "4155552671"}},
		{"CA shares +1", "+16135550123", Number{"+16135550123", "CA", 1, "6135550123"}},
		{"GB mobile", "+447400123456", Number{"+447400123456", "GB", 44, "7400123456"}},
		{"GB fixed line", "+442079460958", Number{"+442079460958", "GB", 44, "2079460958"}},
		{"GB VoIP", "+445611234567", Number{"+445611234567", "GB", 44, "5611234567"}},
		{"DE fixed line", "+4930123456", Number{"+4930123456", "DE", 49, "30123456"}},
		{"DE mobile", "+4915123456789", Number{"+4915123456789", "DE", 49, "15123456789"}},
		{"AU mobile", "+61412345678", Number{"+61412345678", "AU", 61, "412345678"}},
		{"IN mobile", "+919876543210", Number{"+919876543210", "IN", 91, "9876543210"}},
		{"FR mobile", "+33612345678", Number{"+33612345678", "FR", 33, "612345678"}},
		{"IT keeps leading zero", "+390612345678", Number{"+390612345678", "IT", 39, "0612345678"}},
		{"BR mobile", "+5511961234567", Number{"+5511961234567", "BR", 55, "11961234567"}},
		{"JP fixed line", "+81312345678", Number{"+81312345678", "JP", 81, "312345678"}},
		{"surrounding whitespace", " \t+14155552671\n", Number{"+14155552671", "US", 1, "4155552671"}},
		{"spaces", "+1 415 555 2671", Number{"+14155552671", "US", 1, "4155552671"}},
		{"hyphens and parentheses", "+1 (415) 555-2671", Number{"+14155552671", "US", 1, "4155552671"}},
		{"dots", "+44.20.7946.0958", Number{"+442079460958", "GB", 44, "2079460958"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.input)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.input, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q) = %#v, want %#v", tt.input, got, tt.want)
			}
		})
	}
}

func TestParse_RefusesMalformedAsInvalid(t *testing.T) {
	tests := []struct{ name, input string }{
		{"empty", ""},
		{"only whitespace", "   "},
		{"only plus", "+"},
		{"missing plus", "14155552671"},
		{"national format", "(415) 555-2671"},
		{"double plus", "++14155552671"},
		{"plus in the middle", "1+4155552671"},
		{"letters", "+1415555CALL"},
		{"vanity letters", "+1-800-FLOWERS"},
		{"Arabic-Indic digits", "+١٤١٥٥٥٥٢٦٧١"},
		{"full-width digits", "+１４１５５５５２６７１"},
		{"mixed full-width digit", "+1415555267１"},
		{"non-breaking space inside", "+1\u00a0415\u00a05552671"},
		{"slash separator", "+1/415/5552671"},
		{"extension", "+14155552671;ext=12"},
		{"too short", "+1415555"},
		{"too long", "+1415555267112345"},
		{"country code 0", "+0123456789"},
		{"unassigned country code", "+9991234567"},
		{"impossible length for region", "+141555526"},
		{"unassigned US area code", "+11115552671"},
		{"NUL byte", "+1415555\x002671"},
		{"trunk prefix after country code", "+44 (0)20 7946 0958"},
		{"trunk prefix shortening below minimum", "+43012000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.input)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) = %v, want ErrInvalid", tt.input, err)
			}
		})
	}
}

func TestParse_RefusesCostlyAndNonGeographicAsNotAllowed(t *testing.T) {
	tests := []struct{ name, input string }{
		{"US premium 900", "+19005551234"},
		{"US toll-free", "+18005550100"},
		{"GB premium 09", "+449098790000"},
		{"GB shared cost 087", "+448712345678"},
		{"GB personal 070", "+447012345678"},
		{"GB pager 076", "+447640123456"},
		{"AU shared cost 13", "+61130012"},
		{"international freephone +800", "+80012345678"},
		{"international shared cost +808", "+80812345678"},
		{"Inmarsat +870", "+870301234567"},
		{"satellite +881", "+881612345678"},
		{"international networks +882", "+882131234567"},
		{"international networks +883", "+883510012345"},
		{"international premium +979", "+979123456789"},
		{"OCHA +888", "+88812345678"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.input)
			if !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("Parse(%q) = %v, want ErrNotAllowed", tt.input, err)
			}
		})
	}
}

func TestParse_InvalidErrorMessageGuidesTheUser(t *testing.T) {
	_, err := Parse("4155552671")
	if want := "e.g. +14155550100"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Parse error = %v, want it to contain %q", err, want)
	}
}

func TestNumber_Masked(t *testing.T) {
	tests := []struct{ input, want string }{
		{"+14155557890", "+1***-***-7890"},
		{"+442079456789", "+44******6789"},
		{"+4930123456", "+49****3456"},
		{"+61412345678", "+61*****5678"},
		{"+390612345678", "+39******5678"},
	}
	for _, tt := range tests {
		n, err := Parse(tt.input)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.input, err)
		}
		if got := n.Masked(); got != tt.want {
			t.Errorf("Masked(%s) = %q, want %q", tt.input, got, tt.want)
		}
		if got := n.Redacted(); got != tt.want {
			t.Errorf("Redacted(%s) = %q, want %q", tt.input, got, tt.want)
		}
	}
}

func TestNumber_PrintingNeverLeaksTheFullNumber(t *testing.T) {
	n, err := Parse("+14155557890")
	if err != nil {
		t.Fatal(err)
	}
	if got := n.String(); got != "+1***-***-7890" {
		t.Fatalf("String() = %q", got)
	}
	if (Number{}).Masked() != "" {
		t.Fatal("zero Number should mask to empty")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"+14155552671", "+1 (415) 555-2671", "+447400123456", "+4930123456",
		"+390612345678", "+80012345678", "+19005551234", "+١٤١٥٥٥٥٢٦٧١",
		"14155552671", "", "+", "+0", "+88812345678", "+43012000",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		n, err := Parse(input)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("Parse(%q) error %v is neither ErrInvalid nor ErrNotAllowed", input, err)
			}
			return
		}
		again, err := Parse(n.E164)
		if err != nil {
			t.Fatalf("Parse(%q) accepted as %s, but its E.164 is refused: %v", input, n.E164, err)
		}
		if again != n {
			t.Fatalf("Parse(%q) = %#v, Parse(E164) = %#v", input, n, again)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for b.Loop() {
		if _, err := Parse("+1 (415) 555-2671"); err != nil {
			b.Fatal(err)
		}
	}
}
