package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/otpgate/otpgate/module/apierr"
)

// maxBody is the largest request body the API reads.
const maxBody = 64 << 10

// decodeBody reads r's JSON body into dst strictly: at most 64 KiB, one
// JSON object, no unknown fields, no duplicate keys at any depth, and the
// right types. Any violation is a clear 4xx and nothing else happens.
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
	if err := checkDuplicateKeys(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
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
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return apierr.New(http.StatusBadRequest, apierr.BadJSON,
			"Unknown field "+strings.TrimPrefix(err.Error(), "json: unknown field ")+".")
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

// checkDuplicateKeys walks the JSON tokens and refuses an object that names
// a key twice: encoding/json would silently keep the last one, which lets a
// proxy and the gateway read different values from one body.
func checkDuplicateKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]struct{}
		expect bool // next string token in an object is a key
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
			// encoding/json matches field names without regard to case, so
			// "phone" and "PHONE" are the same field to the decoder
			key = strings.ToLower(key)
			if _, dup := top.keys[key]; dup {
				return apierr.New(http.StatusBadRequest, apierr.BadJSON, fmt.Sprintf("Duplicate key %q.", key))
			}
			top.keys[key] = struct{}{}
			top.expect = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]struct{}{}, expect: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
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
