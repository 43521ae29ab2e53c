package phone

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Policy is the deployment's choice of where codes may be sent, on top of
// the type rules Parse applies to everyone.
type Policy struct {
	// Countries are ISO 3166-1 alpha-2 regions; empty allows all. Listing
	// regions is the cheapest defence against SMS pumping to countries the
	// application has no users in.
	Countries []string
}

// Allow returns an error wrapping ErrNotAllowed when the number's region is
// not in the allowlist. Regions, not calling codes, are compared so that
// "US" does not silently admit Canada and the Caribbean, which share +1.
func (p Policy) Allow(n Number) error {
	if len(p.Countries) == 0 {
		return nil
	}
	if slices.ContainsFunc(p.Countries, func(c string) bool { return strings.EqualFold(c, n.Region) }) {
		return nil
	}
	return fmt.Errorf("country %q not in allowlist: %w", n.Region, ErrNotAllowed)
}

// ValidRegion reports whether code names a region libphonenumber knows, so a
// typo in the allowlist ("UK" for "GB") fails at config load instead of
// silently refusing every number of that country.
func ValidRegion(code string) bool {
	if len(code) != 2 {
		return false
	}
	return phonenumbers.GetSupportedRegions()[strings.ToUpper(code)]
}
