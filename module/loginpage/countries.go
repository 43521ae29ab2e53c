package loginpage

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// country is what the page's script needs to know of one region to turn a
// number written as at home into E.164, to tell the region of a pasted
// +number and to format it back: libphonenumber's metadata, reduced to the
// parsing and formatting rules. Patterns are libphonenumber's regular
// expressions, which JavaScript reads as Java does.
type country struct {
	Region string `json:"r"`
	Code   int32  `json:"c"` // calling code
	// NationalPrefixForParsing and its transform rule strip a trunk
	// prefix ("0" in GB, "1" in the US) as libphonenumber's parser does.
	NationalPrefixForParsing string `json:"npp,omitempty"`
	NationalPrefixTransform  string `json:"npt,omitempty"`
	// InternationalPrefix is the region's exit code ("00", "011").
	InternationalPrefix string `json:"ip,omitempty"`
	// NationalNumber is the pattern every valid national number matches;
	// Lengths are the possible lengths of one.
	NationalNumber string  `json:"nn"`
	Lengths        []int32 `json:"pl"`
	// LeadingDigits and Valid tell apart the regions that share a calling
	// code (+1, +44, +7...); Main marks the one chosen when neither does.
	LeadingDigits string `json:"ld,omitempty"`
	Valid         string `json:"vp,omitempty"`
	Main          bool   `json:"m,omitempty"`
	// Formats are [pattern, format, leading digits] for the international
	// format, as libphonenumber's.
	Formats [][3]string `json:"f,omitempty"`
	// Example is a mobile number as written at home, for the hint.
	Example string `json:"ex,omitempty"`
}

// countryTable is the JSON the page embeds: the regions the picker offers
// and every calling code (to split a pasted +number even when its region
// is not offered).
type countryTable struct {
	Countries []country `json:"countries"`
	Codes     []int32   `json:"codes"`
}

// buildCountries computes the page's country table from libphonenumber's
// metadata for regions (every region when empty), sorted by region code.
func buildCountries(regions []string) (string, map[string]bool, error) {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return "", nil, fmt.Errorf("login page: phone metadata: %w", err)
	}
	shared := make(map[int32]int)
	codes := make(map[int32]bool)
	byID := make(map[string]*phonenumbers.PhoneMetadata)
	for _, m := range coll.GetMetadata() {
		shared[m.GetCountryCode()]++
		codes[m.GetCountryCode()] = true
		byID[m.GetId()] = m
	}
	want := make(map[string]bool, len(regions))
	for _, r := range regions {
		r = strings.ToUpper(strings.TrimSpace(r))
		if !phonenumbers.GetSupportedRegions()[r] {
			return "", nil, fmt.Errorf("login page: countries: %q is not a region code such as GB or US", r)
		}
		want[r] = true
	}
	var table countryTable
	offered := make(map[string]bool)
	for _, m := range coll.GetMetadata() {
		id := m.GetId()
		if !phonenumbers.GetSupportedRegions()[id] || (len(want) > 0 && !want[id]) {
			continue // "001" holds the non-geographic entities
		}
		c := country{
			Region:                   id,
			Code:                     m.GetCountryCode(),
			NationalPrefixForParsing: m.GetNationalPrefixForParsing(),
			NationalPrefixTransform:  m.GetNationalPrefixTransformRule(),
			InternationalPrefix:      m.GetInternationalPrefix(),
			NationalNumber:           m.GetGeneralDesc().GetNationalNumberPattern(),
			Lengths:                  m.GetGeneralDesc().GetPossibleLength(),
			LeadingDigits:            m.GetLeadingDigits(),
			Main:                     m.GetMainCountryForCode(),
		}
		if shared[c.Code] > 1 && c.LeadingDigits == "" {
			c.Valid = "(?:" + m.GetFixedLine().GetNationalNumberPattern() + ")|(?:" + m.GetMobile().GetNationalNumberPattern() + ")"
		}
		// As libphonenumber does, numbers are formatted with the rules of
		// the main region of their calling code (Canada's as the US's).
		fm := m
		if main := byID[phonenumbers.GetRegionCodeForCountryCode(int(c.Code))]; main != nil {
			fm = main
		}
		formats := fm.GetIntlNumberFormat()
		if len(formats) == 0 {
			formats = fm.GetNumberFormat()
		}
		for _, f := range formats {
			if f.GetFormat() == "NA" {
				continue
			}
			ld := ""
			if p := f.GetLeadingDigitsPattern(); len(p) > 0 {
				ld = p[len(p)-1] // the most specific
			}
			c.Formats = append(c.Formats, [3]string{f.GetPattern(), f.GetFormat(), ld})
		}
		if ex := phonenumbers.GetExampleNumberForType(id, phonenumbers.MOBILE); ex != nil {
			c.Example = phonenumbers.Format(ex, phonenumbers.NATIONAL)
		}
		table.Countries = append(table.Countries, c)
		offered[id] = true
	}
	slices.SortFunc(table.Countries, func(a, b country) int { return strings.Compare(a.Region, b.Region) })
	for c := range codes {
		table.Codes = append(table.Codes, c)
	}
	slices.Sort(table.Codes)
	b, err := json.Marshal(table) // escapes <, > and &: safe inside <script>
	if err != nil {
		return "", nil, err
	}
	return string(b), offered, nil
}

// flag is the emoji flag of a region: its two letters as regional
// indicator symbols.
func flag(region string) string {
	if len(region) != 2 {
		return ""
	}
	var b strings.Builder
	for _, c := range strings.ToUpper(region) {
		if c < 'A' || c > 'Z' {
			return ""
		}
		b.WriteRune(0x1F1E6 + (c - 'A'))
	}
	return b.String()
}

// callingCode is "+44" for GB, "" for an unknown region.
func callingCode(region string) string {
	if c := phonenumbers.GetCountryCodeForRegion(region); c != 0 {
		return fmt.Sprintf("+%d", c)
	}
	return ""
}
