package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// decode reads a JSON object body into into, a pointer to a struct, more
// strictly than encoding/json: unknown keys, keys in another case than the
// field's (encoding/json would match "Group" to "group"), duplicate keys at
// any depth (encoding/json keeps the last), trailing data and anything but
// an object are refused with 400, and a body over the limit with 413. A
// refused body changes nothing, so a typo or a smuggled second value never
// silently changes a request.
func decode(w http.ResponseWriter, r *http.Request, into any) bool {
	status, err := decodeStrict(r.Body, into)
	if err != nil {
		writeJSON(w, status, errorBody{err.Error()})
		return false
	}
	return true
}

// quickDecoder is a request body with a one-pass reader for the plain
// form clients send; decodeQuick declines (false, nothing changed) any
// other form, which decodeStrict then reads the general way.
type quickDecoder interface {
	decodeQuick(data []byte) bool
}

func decodeStrict(body io.Reader, into any) (int, error) {
	bufp := bodyBuffers.Get().(*[]byte)
	defer bodyBuffers.Put(bufp)
	data, err := readBody(body, (*bufp)[:0])
	if cap(data) <= maxPooledBody {
		*bufp = data[:0]
	}
	if err != nil {
		if maxErr, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes", maxErr.Limit)
		}
		return http.StatusBadRequest, fmt.Errorf("read the body: %w", err)
	}
	if q, ok := into.(quickDecoder); ok && q.decodeQuick(data) {
		return 0, nil
	}
	return decodeGeneral(data, into)
}

// bodyBuffers hold request bodies while they are decoded: every decoded
// string is a copy, so a buffer serves the next request.
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledBody: a buffer grown past it by a large body is not kept.
const maxPooledBody = 16 << 10

// readBody appends body to buf, as io.ReadAll does to a new slice.
func readBody(body io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// decodeGeneral reads any body: it checks the keys with a token walk and
// then decodes with encoding/json.
func decodeGeneral(data []byte, into any) (int, error) {
	// encoding/json would turn invalid UTF-8 into U+FFFD: a name would
	// then not be the one the client sent.
	if !utf8.Valid(data) {
		return http.StatusBadRequest, fmt.Errorf("bad JSON body: not valid UTF-8 (at byte %d)", invalidUTF8At(data))
	}
	if err := checkObject(data, jsonFields(into)); err != nil {
		return http.StatusBadRequest, fmt.Errorf("bad JSON body: %w", err)
	}
	if err := json.Unmarshal(data, into); err != nil {
		if typeErr, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return http.StatusBadRequest, fmt.Errorf("bad JSON body: field %q: a JSON %s where %s was expected", typeErr.Field, typeErr.Value, typeName(typeErr.Type))
		}
		return http.StatusBadRequest, fmt.Errorf("bad JSON body: %w", err)
	}
	return 0, nil
}

// checkObject checks that data is one JSON object whose keys are among
// fields, spelled exactly, with no key twice at any depth.
func checkObject(data []byte, fields []string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	switch {
	case err == io.EOF:
		return errors.New("empty body: want a JSON object")
	case err != nil:
		return syntaxError(err, dec)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("want a JSON object, not %s", describeToken(tok))
	}
	if err := checkMembers(dec, fields, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// checkMembers reads an object's members after its '{', up to and with
// its '}'. fields, when not nil, are the only keys allowed.
func checkMembers(dec *json.Decoder, fields []string, path string) error {
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntaxError(err, dec)
		}
		key := tok.(string) // the decoder only yields strings as keys
		if seen[key] {
			return fmt.Errorf("duplicate key %q%s", key, path)
		}
		seen[key] = true
		if fields != nil && !slices.Contains(fields, key) {
			if i := slices.IndexFunc(fields, func(f string) bool { return strings.EqualFold(f, key) }); i >= 0 {
				return fmt.Errorf("unknown field %q (keys are case-sensitive: %q)", key, fields[i])
			}
			return fmt.Errorf("unknown field %q (want %s)", key, strings.Join(fields, ", "))
		}
		if err := checkValue(dec, fmt.Sprintf(" in %q", key)); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return syntaxError(err, dec)
	}
	return nil
}

// checkValue reads one value, checking the objects in it for duplicate keys.
func checkValue(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return syntaxError(err, dec)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		return checkMembers(dec, nil, path)
	case '[':
		for dec.More() {
			if err := checkValue(dec, path); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return syntaxError(err, dec)
		}
	}
	return nil
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}

func syntaxError(err error, dec *json.Decoder) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New("unexpected end of the JSON body")
	}
	return fmt.Errorf("malformed JSON near byte %d: %v", dec.InputOffset(), err)
}

func describeToken(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	default:
		return "null"
	}
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Map:
		return "an object of " + strings.TrimPrefix(typeName(t.Elem()), "a ") + "s"
	case reflect.Int, reflect.Int64, reflect.Uint32, reflect.Uint64:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	case reflect.Pointer:
		return typeName(t.Elem())
	default:
		return t.String()
	}
}

// jsonFields lists the JSON keys of the struct into points to.
func jsonFields(into any) []string {
	t := reflect.TypeOf(into)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var fields []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
		case name != "":
			fields = append(fields, name)
		case f.IsExported():
			fields = append(fields, f.Name)
		}
	}
	return fields
}
