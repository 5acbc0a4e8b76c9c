package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Load reads, parses and validates a catalog file.
func Load(path string) (*Catalog, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	return c, nil
}

// Parse parses and validates catalog YAML. Unknown fields are errors, so a
// misspelt field never silently falls back to a default.
func Parse(b []byte) (*Catalog, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("the file is empty: add a targets: list (see rotator.yaml in the repository)")
	}
	var c Catalog
	if err := unmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("parse: %w", explainDecode(err))
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// decodeError is a decoding error in the catalog's words: the field's path
// and the fix, without the Go type names encoding/json uses, and without
// quoting more than the start of a huge value.
type decodeError struct {
	msg string
	err error
}

func (e *decodeError) Error() string { return e.msg }
func (e *decodeError) Unwrap() error { return e.err }

// explainDecode rewords the errors of encoding/json, which name Go types
// and may quote a whole value; YAML syntax errors already name the line.
func explainDecode(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "the file"
		}
		return &decodeError{fmt.Sprintf("%s: got %s, want %s: fix the value (see rotator.yaml in the repository)",
			field, truncate(te.Value), jsonKind(te.Type.Kind().String())), err}
	}
	// encoding/json reports unknown fields as a plain string.
	if name, ok := strings.CutPrefix(err.Error(), "error unmarshaling JSON: while decoding JSON: json: unknown field "); ok {
		if n, err := strconv.Unquote(name); err == nil {
			name = n
		}
		return &decodeError{fmt.Sprintf("unknown field %q: check its spelling and case, or remove it", truncate(name)), err}
	}
	if len(err.Error()) > 256 {
		return &decodeError{truncate(err.Error()), err}
	}
	return err
}

// jsonKind names a Go kind the way a YAML author thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "a whole number that fits"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "a list"
	case "struct", "map":
		return "a mapping of fields"
	default:
		return "a " + kind
	}
}

// truncate keeps error messages readable when a field holds a huge value.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
