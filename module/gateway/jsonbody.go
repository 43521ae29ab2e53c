package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/otpgate/otpgate/module/apierr"
)

// maxBody is the largest request body the API reads.
const maxBody = 64 << 10

// decodeBody reads r's JSON body into dst strictly: at most 64 KiB, one
// JSON object, no duplicate keys at any depth, no key that names a field
// only through case or Unicode folding, and the right types. Any violation
// is a clear 4xx and nothing else happens. Other unknown fields are
// ignored, as GoTrue does: Supabase clients send extras (gotrue-dart's
// `redirect_to` and `gotrue_meta_security.captchaToken`, auth-js's
// `code_challenge`), and a field the server does not know changes nothing.
func decodeBody(r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return apierr.New(http.StatusBadRequest, apierr.BadJSON, "Content-Type must be application/json.")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return apierr.Wrap(http.StatusBadRequest, apierr.BadJSON, "Could not read the request body.", err)
	}
	if len(body) > maxBody {
		return apierr.New(http.StatusRequestEntityTooLarge, apierr.RequestTooLarge, "Request body is larger than 64 KiB.")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return apierr.New(http.StatusBadRequest, apierr.BadJSON, "Request body must be a JSON object.")
	}
	if err := checkKeys(body, reflect.TypeOf(dst)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return apierr.New(http.StatusBadRequest, apierr.BadJSON, "Request body must contain exactly one JSON object.")
	}
	return nil
}

func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return apierr.New(http.StatusBadRequest, apierr.BadJSON, "Request body must be a JSON object.")
		}
		return apierr.New(http.StatusBadRequest, apierr.BadJSON,
			fmt.Sprintf("Field %q must be of type %s.", field, jsonTypeName(typeErr.Type.Kind().String())))
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return apierr.New(http.StatusBadRequest, apierr.BadJSON, "Request body is not valid JSON.")
	}
	return apierr.New(http.StatusBadRequest, apierr.BadJSON, "Request body is not valid JSON.")
}

func jsonTypeName(kind string) string {
	switch kind {
	case "bool":
		return "boolean"
	case "map", "struct":
		return "object"
	case "slice":
		return "array"
	case "int", "int64", "float64":
		return "number"
	}
	return kind
}

// checkDuplicateKeys is checkKeys for a body of no particular type.
func checkDuplicateKeys(body []byte) error { return checkKeys(body, nil) }

// checkKeys walks the JSON tokens and refuses an object that names a key
// twice: encoding/json would silently keep the last one, which lets a
// proxy and the gateway read different values from one body. Keys are
// compared as encoding/json matches them to fields, folded (so "phone",
// "PHONE" and "create_uſer"/"create_user" are the same key). Where the
// object decodes into a struct of type t (or one of its fields), a key
// that matches a field only through that folding is refused too: the
// decoder would read "Create_User" as create_user, which another parser
// does not, whether or not unknown fields are allowed.
func checkKeys(body []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]struct{}
		expect bool         // next string token in an object is a key
		typ    reflect.Type // what the object or array decodes into (nil: anything)
		next   reflect.Type // in an object: what the current key's value decodes into
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return apierr.New(http.StatusBadRequest, apierr.BadJSON, "Request body is not valid JSON.")
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		key, isKey := tok.(string)
		if top != nil && top.object && top.expect && isKey {
			folded := string(foldName([]byte(key)))
			if _, dup := top.keys[folded]; dup {
				return apierr.New(http.StatusBadRequest, apierr.BadJSON, fmt.Sprintf("Duplicate key %q.", key))
			}
			top.keys[folded] = struct{}{}
			top.expect = false
			top.next = nil
			switch {
			case top.typ == nil:
			case top.typ.Kind() == reflect.Map:
				top.next = top.typ.Elem()
			case top.typ.Kind() == reflect.Struct:
				f := jsonFieldsOf(top.typ)
				if ft, ok := f.exact[key]; ok {
					top.next = ft
				} else if name, ok := f.folded[folded]; ok {
					return apierr.New(http.StatusBadRequest, apierr.BadJSON, fmt.Sprintf("Key %q must be spelled %q.", key, name))
				}
			}
			continue
		}
		// the type of a value that starts here
		var vt reflect.Type
		switch {
		case top == nil:
			vt = t
		case top.object:
			vt = top.next
		case top.typ != nil && (top.typ.Kind() == reflect.Slice || top.typ.Kind() == reflect.Array):
			vt = top.typ.Elem()
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]struct{}{}, expect: true, typ: decodedType(vt)})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{typ: decodedType(vt)})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// a value finished: in an object the next token is a key again
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].expect = true
		}
		if len(stack) > 64 {
			return apierr.New(http.StatusBadRequest, apierr.BadJSON, "Request body is nested too deeply.")
		}
	}
}

// decodedType is what a JSON value decodes into for a Go type: pointers
// followed, and nil for types whose content is not matched to fields
// (json.RawMessage, interfaces, custom unmarshalers).
func decodedType(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return nil
	}
	return t
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// jsonFields are a struct's JSON keys: exact names with their types, and
// folded names with the exact one.
type jsonFields struct {
	exact  map[string]reflect.Type
	folded map[string]string
}

var fieldsCache sync.Map // reflect.Type -> jsonFields

// jsonFieldsOf lists the keys encoding/json decodes into t's fields
// (exported fields, named by their tag, embedded structs flattened).
func jsonFieldsOf(t reflect.Type) jsonFields {
	if f, ok := fieldsCache.Load(t); ok {
		return f.(jsonFields)
	}
	f := jsonFields{exact: map[string]reflect.Type{}, folded: map[string]string{}}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if sf.Anonymous && name == "" {
				if et := decodedType(sf.Type); et != nil && et.Kind() == reflect.Struct {
					walk(et)
					continue
				}
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			f.exact[name] = sf.Type
			f.folded[string(foldName([]byte(name)))] = name
		}
	}
	walk(t)
	fieldsCache.Store(t, f)
	return f
}

// foldName folds a key the way encoding/json does when it matches keys to
// fields (simple Unicode case folding: "ſ" is "S", the Kelvin sign "K"),
// as in encoding/json's fold.go, so that two keys are one field to the
// decoder exactly when their folded forms are equal.
func foldName(in []byte) []byte {
	var out []byte
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		out = utf8.AppendRune(out, foldRune(r))
		i += n
	}
	return out
}

// foldRune is the smallest rune of r's simple fold set.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}
