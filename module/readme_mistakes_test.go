package otpgate

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// README's "Where a config mistake is reported" shows Caddyfiles full of
// mistakes and the errors they get, each at the line of its field: what
// the README lists is what a user sees.
func TestREADME_ConfigMistakes_ReportedAtTheirLines(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(raw)
	if i := strings.Index(section, "#### Where a config mistake is reported"); i >= 0 {
		section = section[i:]
	} else {
		t.Fatal("README has no section on where config mistakes are reported")
	}
	blocks := regexp.MustCompile("(?s)```(caddyfile mistakes|text)\n(.*?)```").FindAllStringSubmatch(section, 4)
	if len(blocks) != 4 {
		t.Fatalf("want 2 Caddyfiles, each followed by its errors; found %d blocks", len(blocks))
	}
	prefix := regexp.MustCompile(`^parsing caddyfile tokens for '[^']*': `)
	for i := 0; i < 4; i += 2 {
		caddyfile, want := blocks[i][2], strings.Split(strings.TrimSpace(blocks[i+1][2]), "\n")
		if blocks[i][1] != "caddyfile mistakes" || blocks[i+1][1] != "text" {
			t.Fatalf("block %d: want a Caddyfile then its errors", i)
		}
		_, _, err := adapt(t, "Caddyfile", []byte(caddyfile))
		if err == nil {
			t.Fatalf("README example %d adapts; it should be refused", i/2+1)
		}
		got := strings.Split(prefix.ReplaceAllString(err.Error(), ""), "\n")
		if !slices.Equal(got, want) {
			t.Errorf("README example %d:\ngot\n%s\nREADME says\n%s", i/2+1, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		lines := strings.Split(caddyfile, "\n")
		for _, e := range got {
			if n := errorLine(t, errString(e)); strings.TrimSpace(lines[n-1]) == "}" {
				t.Errorf("%q is reported at a closing brace", e)
			}
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }
