package phone

import (
	"errors"
	"testing"
)

func TestPolicy_Allow(t *testing.T) {
	us := mustParse(t, "+14155552671")
	ca := mustParse(t, "+16135550123")
	gb := mustParse(t, "+447400123456")
	tests := []struct {
		name      string
		countries []string
		n         Number
		allowed   bool
	}{
		{"empty list allows all", nil, gb, true},
		{"listed", []string{"US", "GB"}, gb, true},
		{"case-insensitive", []string{"us"}, us, true},
		{"not listed", []string{"US"}, gb, false},
		{"US does not admit Canada", []string{"US"}, ca, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Policy{Countries: tt.countries}.Allow(tt.n)
			if tt.allowed && err != nil {
				t.Fatalf("Allow(%s) = %v, want nil", tt.n.Region, err)
			}
			if !tt.allowed && !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("Allow(%s) = %v, want ErrNotAllowed", tt.n.Region, err)
			}
		})
	}
}

func TestValidRegion(t *testing.T) {
	for code, want := range map[string]bool{
		"US": true, "gb": true, "De": true, "IN": true,
		"UK": false, "001": false, "": false, "USA": false, "ZZ": false,
	} {
		if got := ValidRegion(code); got != want {
			t.Errorf("ValidRegion(%q) = %v, want %v", code, got, want)
		}
	}
}

func mustParse(t *testing.T, s string) Number {
	t.Helper()
	n, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return n
}
