package loginpage

import (
	"cmp"
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/text/language"
)

// The catalogues: one JSON object of message key to text per language,
// in i18n/<tag>.json. en.json is the reference: every other catalogue has
// exactly its keys and, in each text, the same {placeholders}.
//
//go:embed i18n/*.json
var catalogueFiles embed.FS

// Languages are the tags of the bundled catalogues, English first (the
// fallback when nothing in Accept-Language matches).
var Languages = []string{"en", "es", "fr", "de", "pt-BR", "hi", "id", "ar", "zh-CN"}

// rtlLanguages are written right to left.
var rtlLanguages = map[string]bool{"ar": true}

// catalogue is one language's messages.
type catalogue struct {
	tag  string
	dir  string // "ltr" or "rtl"
	msgs map[string]string
	json string // msgs as JSON, for the page's script
}

var (
	catalogues = mustLoadCatalogues()
	matcher    = language.NewMatcher(languageTags())
)

func languageTags() []language.Tag {
	tags := make([]language.Tag, len(Languages))
	for i, l := range Languages {
		tags[i] = language.MustParse(l)
	}
	return tags
}

var placeholder = regexp.MustCompile(`\{[a-z]+\}`)

func mustLoadCatalogues() map[string]*catalogue {
	out := make(map[string]*catalogue, len(Languages))
	for _, tag := range Languages {
		c, err := loadCatalogue(tag)
		if err != nil {
			panic(err)
		}
		out[tag] = c
	}
	ref := out["en"].msgs
	for _, tag := range Languages {
		if err := sameShape(ref, out[tag].msgs); err != nil {
			panic(fmt.Sprintf("login page catalogue %s: %v", tag, err))
		}
	}
	return out
}

func loadCatalogue(tag string) (*catalogue, error) {
	b, err := catalogueFiles.ReadFile(path.Join("i18n", tag+".json"))
	if err != nil {
		return nil, fmt.Errorf("login page catalogue %s: %w", tag, err)
	}
	var msgs map[string]string
	if err := json.Unmarshal(b, &msgs); err != nil {
		return nil, fmt.Errorf("login page catalogue %s: %w", tag, err)
	}
	compact, err := json.Marshal(msgs) // escapes <, > and &: safe inside <script>
	if err != nil {
		return nil, err
	}
	dir := "ltr"
	if rtlLanguages[tag] {
		dir = "rtl"
	}
	return &catalogue{tag: tag, dir: dir, msgs: msgs, json: string(compact)}, nil
}

// sameShape reports a key missing from or added to msgs, or a text whose
// placeholders differ from the reference's.
func sameShape(ref, msgs map[string]string) error {
	for k, v := range ref {
		got, ok := msgs[k]
		if !ok {
			return fmt.Errorf("missing key %q", k)
		}
		want := placeholder.FindAllString(v, -1)
		have := placeholder.FindAllString(got, -1)
		slices.Sort(want)
		slices.Sort(have)
		if !slices.Equal(want, have) {
			return fmt.Errorf("key %q: placeholders %v, want %v", k, have, want)
		}
	}
	for k := range msgs {
		if _, ok := ref[k]; !ok {
			return fmt.Errorf("unknown key %q", k)
		}
	}
	return nil
}

// SupportedLanguage returns the bundled catalogue's tag for lang ("fr",
// "pt-br", "zh-cn": case does not matter), or "" when there is none.
func SupportedLanguage(lang string) string {
	for _, l := range Languages {
		if strings.EqualFold(l, lang) {
			return l
		}
	}
	return ""
}

// negotiate picks the catalogue for r: the forced language when set,
// else the best match of Accept-Language, else English.
func negotiate(r *http.Request, forced string) *catalogue {
	if forced != "" {
		return catalogues[forced]
	}
	prefs := acceptLanguage(r.Header.Get("Accept-Language"))
	if len(prefs) == 0 {
		return catalogues["en"]
	}
	_, i, conf := matcher.Match(prefs...)
	if conf == language.No {
		return catalogues["en"]
	}
	return catalogues[Languages[i]]
}

// preferredRegion is the region of the visitor's most preferred language
// ("en-GB": GB; "fr": FR, its likely region), or "" when unknown.
func preferredRegion(r *http.Request) string {
	prefs := acceptLanguage(r.Header.Get("Accept-Language"))
	if len(prefs) == 0 {
		return ""
	}
	reg, conf := prefs[0].Region()
	if conf == language.No {
		return ""
	}
	return reg.String()
}

// acceptLanguage is the languages of an Accept-Language header, most
// preferred first. Unlike language.ParseAcceptLanguage it skips an entry
// it cannot read instead of giving up on the whole header.
func acceptLanguage(header string) []language.Tag {
	type pref struct {
		tag language.Tag
		q   float64
	}
	var prefs []pref
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(part, ";")
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "q="); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					q = f
				}
			}
		}
		tag, err := language.Parse(strings.TrimSpace(name))
		if err != nil || q <= 0 || tag == language.Und {
			continue
		}
		prefs = append(prefs, pref{tag, q})
	}
	slices.SortStableFunc(prefs, func(a, b pref) int { return cmp.Compare(b.q, a.q) })
	tags := make([]language.Tag, len(prefs))
	for i, p := range prefs {
		tags[i] = p.tag
	}
	return tags
}

// tr fills the {name} placeholders of the message key of msgs from
// name-value pairs: {{tr .T "title_app" "app" .AppName}}. An unknown key
// is itself, so a typo shows on the page instead of failing it.
func tr(msgs map[string]string, key string, pairs ...any) (string, error) {
	s, ok := msgs[key]
	if !ok {
		return key, nil
	}
	if len(pairs)%2 != 0 {
		return "", fmt.Errorf("tr %s: want name-value pairs", key)
	}
	for i := 0; i < len(pairs); i += 2 {
		name, ok := pairs[i].(string)
		if !ok {
			return "", fmt.Errorf("tr %s: placeholder name %v is not a string", key, pairs[i])
		}
		s = strings.ReplaceAll(s, "{"+name+"}", fmt.Sprint(pairs[i+1]))
	}
	return s, nil
}

// around splits the message key of msgs at its {name} placeholder, so that
// a template can put an element there:
// {{$h := around .T "na_message" "phone"}}{{index $h 0}}<strong>…</strong>{{index $h 1}}.
func around(msgs map[string]string, key, name string) []string {
	s, ok := msgs[key]
	if !ok {
		return []string{key, ""}
	}
	before, after, _ := strings.Cut(s, "{"+name+"}")
	return []string{before, after}
}
