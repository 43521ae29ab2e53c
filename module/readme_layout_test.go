package otpgate

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// README's "Where each behaviour lives" names files that exist, and names
// every file of the gateway, so the map cannot drift from the code.
func TestREADME_WhereEachBehaviourLives_FilesExist(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "### Where each behaviour lives")
	if !ok {
		t.Fatal("README has no \"Where each behaviour lives\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	named := map[string]bool{}
	pathLike := regexp.MustCompile("`([a-z0-9_./-]+(?:\\.(?:go|lua|tmpl|js)|/))`")
	for _, m := range pathLike.FindAllStringSubmatch(section, -1) {
		p := m[1]
		if !strings.Contains(strings.TrimSuffix(p, "/"), "/") && !strings.HasSuffix(p, ".go") {
			continue // a file named again in passing (hit.lua) or a directory's name
		}
		named[p] = true
		if _, err := os.Stat(p); err != nil {
			t.Errorf("README names %s, which does not exist under module/", m[1])
		}
	}
	if len(named) < 20 {
		t.Fatalf("found only %d paths in the section; is the pattern right?", len(named))
	}
	files, err := filepath.Glob("gateway/*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || named[f] {
			continue
		}
		t.Errorf("README's map does not say what %s holds", f)
	}
}
