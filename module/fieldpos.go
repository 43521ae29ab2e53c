package otpgate

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// fieldPos is where each field of an otpgate block was written in a
// Caddyfile, so that a mistake Validate finds is reported at the line of
// the field rather than at the block's closing brace. Keys are the names
// Validate's messages begin with ("otp length", "sms plivo api_url",
// "limit phone"), and, for options that list values, the name and the
// value ("test_phone +12015550100", "countries XX", "public /x").
type fieldPos map[string]caddyfile.Token

// add records the dispenser's current token as the place of key.
func (p *fieldPos) add(key string, d *caddyfile.Dispenser) {
	if *p == nil {
		*p = make(fieldPos)
	}
	(*p)[key] = d.Token()
}

// addBlock records the options of the block that follows d's current
// token (a guest module's, which parses it itself) as prefix plus the
// option's name ("sms plivo api_url"), leaving d where it is.
func (p *fieldPos) addBlock(prefix string, d *caddyfile.Dispenser) {
	ahead := *d // reading the segment moves the cursor: of a copy
	seg := ahead.NewFromNextSegment()
	seg.Next()
	for nesting := seg.Nesting(); seg.NextBlock(nesting); {
		p.add(prefix+" "+seg.Val(), seg)
		seg.RemainingArgs()
	}
}

// errorsAt reports each of Validate's errors at the line of the field it
// names, in line order; one about a field not written in this block (an
// earlier block of a repeated global option) is reported at d's position.
//
// Validate's messages begin with the field: "otp length: must be 6..10",
// "test_phone +12015550100: code must be digits only", `countries: unknown
// region "XX"`. The most specific recorded key wins: the prefix with the
// first quoted value, then the prefix, then the prefix without its last
// words ("store redis" -> "store").
func (p fieldPos) errorsAt(d *caddyfile.Dispenser, err error) error {
	if err == nil {
		return nil
	}
	all := flatten(err)
	type placed struct {
		tok caddyfile.Token
		err error
	}
	var out []placed
	for _, e := range all {
		tok, ok := p.find(e.Error())
		if !ok {
			tok = d.Token()
		}
		out = append(out, placed{tok, e})
	}
	slices.SortStableFunc(out, func(a, b placed) int {
		return cmp.Or(strings.Compare(a.tok.File, b.tok.File), cmp.Compare(a.tok.Line, b.tok.Line))
	})
	errs := make([]error, 0, len(out))
	for _, o := range out {
		at := caddyfile.NewDispenser([]caddyfile.Token{o.tok})
		at.Next()
		errs = append(errs, at.Errf("otpgate: %v", o.err))
	}
	return errors.Join(errs...)
}

func (p fieldPos) find(msg string) (caddyfile.Token, bool) {
	prefix, rest, ok := strings.Cut(msg, ": ")
	if !ok {
		return caddyfile.Token{}, false
	}
	if q := strings.IndexByte(rest, '"'); q >= 0 {
		if v, err := strconv.QuotedPrefix(rest[q:]); err == nil {
			if v, err := strconv.Unquote(v); err == nil {
				if tok, ok := p[prefix+" "+v]; ok {
					return tok, true
				}
			}
		}
	}
	for key := prefix; key != ""; {
		if tok, ok := p[key]; ok {
			return tok, true
		}
		i := strings.LastIndexByte(key, ' ')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return caddyfile.Token{}, false
}

// flatten lists the errors of an errors.Join, nested ones included;
// none for nil.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}
