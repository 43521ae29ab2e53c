// Package phone turns what a user typed into a phone number otpgate is
// willing to text a code to, and decides which of those numbers a
// deployment accepts.
//
// Parsing is deliberately stricter than libphonenumber: every number that
// reaches the challenge logic, the rate limiter and the store has exactly one
// spelling (E.164), so "+1 415 555 0100" and "+14155550100" share a quota and
// a pending code, and look-alike digits from other scripts cannot create a
// second identity for the same line.
package phone

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Sentinel errors, wrapped with context by Parse and Policy.Allow, so the
// HTTP edge can map them with errors.Is without parsing messages.
var (
	// ErrInvalid means the input is not a real number in strict E.164
	// (400 validation_failed).
	ErrInvalid = errors.New("phone must be in E.164 format, country code first, e.g. +14155550100")
	// ErrNotAllowed means the number is real but otpgate will not send to
	// it (403 phone_not_allowed).
	ErrNotAllowed = errors.New("phone number not allowed")
)

// E.164 caps a number at 15 digits. The lower bound of 8 keeps out short
// codes and truncated input; its price is refusing the few plans with
// 4-digit national numbers (+290 Saint Helena, +683 Niue).
const (
	minDigits = 8
	maxDigits = 15
)

// nonGeoRegion is libphonenumber's region for the global network calling
// codes (+800, +808, +870, +881, +882, +883, +888, +979, ...).
const nonGeoRegion = "001"

// Number is a parsed, validated phone number.
type Number struct {
	E164        string // canonical key for storage, limits and the SMS provider
	Region      string // ISO 3166-1 alpha-2, e.g. "US"; "CA" and "GG" share +1 and +44 with others
	CountryCode int
	National    string // national significant number, without trunk prefix
}

// Parse accepts only strict E.164 (after dropping the separators people
// naturally type) and returns the number if it is real and of a type that
// can receive a code.
func Parse(input string) (Number, error) {
	digits, err := normalize(input)
	if err != nil {
		return Number{}, err
	}
	pn, err := phonenumbers.Parse(digits, "")
	if err != nil {
		return Number{}, fmt.Errorf("parse phone: %w", ErrInvalid)
	}
	cc := int(pn.GetCountryCode())
	// Checked before validity so that every international-network number is
	// a policy refusal, including ranges libphonenumber has no metadata for.
	if phonenumbers.GetRegionCodeForCountryCode(cc) == nonGeoRegion {
		return Number{}, fmt.Errorf("non-geographic country code +%d: %w", cc, ErrNotAllowed)
	}
	if !phonenumbers.IsValidNumber(pn) {
		return Number{}, fmt.Errorf("unassigned or impossible number: %w", ErrInvalid)
	}
	e164 := phonenumbers.Format(pn, phonenumbers.E164)
	// libphonenumber silently drops a trunk prefix written after the country
	// code ("+44 (0)20 ..."); refusing instead of rewriting keeps the input
	// the user confirmed identical to the number we text.
	if e164 != digits {
		return Number{}, fmt.Errorf("not in canonical form (drop the national prefix): %w", ErrInvalid)
	}
	if t := phonenumbers.GetNumberType(pn); !allowedType(t) {
		return Number{}, fmt.Errorf("number type %s: %w", typeName(t), ErrNotAllowed)
	}
	return Number{
		E164:        e164,
		Region:      phonenumbers.GetRegionCodeForNumber(pn),
		CountryCode: cc,
		National:    phonenumbers.GetNationalSignificantNumber(pn),
	}, nil
}

// normalize removes separators and enforces the E.164 shape byte by byte.
// libphonenumber would happily map Arabic-Indic or full-width digits and
// vanity letters to ASCII digits; refusing them here keeps one spelling per
// number and keeps odd input from ever reaching the SMS provider.
func normalize(input string) (string, error) {
	s := strings.TrimSpace(input)
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
			continue
		case c == '+' && b.Len() == 0:
			b.WriteByte(c)
		case c >= '0' && c <= '9' && b.Len() > 0:
			b.WriteByte(c)
		case c >= '0' && c <= '9':
			return "", fmt.Errorf("missing leading '+': %w", ErrInvalid)
		default:
			return "", fmt.Errorf("unexpected character: %w", ErrInvalid)
		}
	}
	out := b.String()
	if out == "" {
		return "", fmt.Errorf("empty: %w", ErrInvalid)
	}
	if n := len(out) - 1; n < minDigits || n > maxDigits {
		return "", fmt.Errorf("%d digits, want %d to %d: %w", n, minDigits, maxDigits, ErrInvalid)
	}
	if out[1] == '0' {
		return "", fmt.Errorf("country code cannot start with 0: %w", ErrInvalid)
	}
	return out, nil
}

// allowedType is an allowlist so that a type added to libphonenumber later
// is refused until someone decides otherwise. Only types that a person
// plausibly holds and can read a code on are accepted: mobile, fixed line
// (many carriers deliver SMS to landlines as voice or text), the ambiguous
// fixed-line-or-mobile of +1 and others, and VoIP (common for real users).
// Premium-rate, shared-cost, UAN, voicemail, pager and personal numbers are
// refused because texting them costs the operator money or reaches nobody
// (SMS pumping fraud targets exactly these); toll-free is refused because it
// rarely receives SMS and has no individual owner.
func allowedType(t phonenumbers.PhoneNumberType) bool {
	switch t {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE,
		phonenumbers.FIXED_LINE_OR_MOBILE, phonenumbers.VOIP:
		return true
	}
	return false
}

func typeName(t phonenumbers.PhoneNumberType) string {
	switch t {
	case phonenumbers.TOLL_FREE:
		return "toll_free"
	case phonenumbers.PREMIUM_RATE:
		return "premium_rate"
	case phonenumbers.SHARED_COST:
		return "shared_cost"
	case phonenumbers.PERSONAL_NUMBER:
		return "personal_number"
	case phonenumbers.PAGER:
		return "pager"
	case phonenumbers.UAN:
		return "uan"
	case phonenumbers.VOICEMAIL:
		return "voicemail"
	}
	return "unknown"
}

// Masked shows enough of the number for a user to recognise it ("the code
// went to my phone ending 7890") without disclosing it to someone looking
// over their shoulder or at an API response. +1 numbers are grouped the way
// Supabase shows them ("+1***-***-7890"); every other country gets the
// country code then stars then the last four digits ("+44******6789"),
// because national groupings vary too much to be worth reproducing.
func (n Number) Masked() string {
	if n.National == "" {
		return ""
	}
	nat := n.National
	keep := min(4, len(nat))
	stars := strings.Repeat("*", len(nat)-keep)
	cc := fmt.Sprintf("+%d", n.CountryCode)
	if n.CountryCode == 1 && len(nat) == 10 {
		return cc + "***-***-" + nat[6:]
	}
	return cc + stars + nat[len(nat)-keep:]
}

// Redacted is the form for logs. It is the masked form, so a log line can
// be matched to what the user saw without the log holding the number.
func (n Number) Redacted() string { return n.Masked() }

// String returns the redacted form so that a Number printed by accident
// (%v, a logger's reflection) never leaks the full number.
func (n Number) String() string { return n.Redacted() }
