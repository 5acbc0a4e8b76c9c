package catalog_test

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"rotator/catalog"
)

// yamlFields returns the dotted path of every leaf field a value of type t
// accepts in the catalog file, from the json tags sigs.k8s.io/yaml reads:
// lists of objects add "[]", types that parse themselves (Duration) are
// leaves.
func yamlFields(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	unmarshaler := reflect.TypeFor[json.Unmarshaler]()
	switch {
	case reflect.PointerTo(t).Implements(unmarshaler):
		return []string{prefix}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		return yamlFields(t.Elem(), prefix+"[]")
	case t.Kind() != reflect.Struct:
		return []string{prefix}
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if f.Anonymous && f.Tag.Get("json") == "" {
			out = append(out, yamlFields(f.Type, prefix)...)
			continue
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		out = append(out, yamlFields(f.Type, p)...)
	}
	return out
}

// referenceFile is the page that holds the field reference.
const referenceFile = "docs/catalog.md"

// readmeReference returns the fields listed in the first column of the
// "## Reference" table of docs/catalog.md.
func readmeReference(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../" + referenceFile)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Reference\n")
	if !ok {
		t.Fatal(referenceFile + ` has no "## Reference" section`)
	}
	if i := regexp.MustCompile(`\n#{1,3} `).FindStringIndex(section); i != nil {
		section = section[:i[0]]
	}
	row := regexp.MustCompile("(?m)^\\| `([^`]+)` \\|")
	var out []string
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestReadmeReferenceMatchesCatalog: every field the catalog accepts is in
// the reference in docs/catalog.md, and every field the reference lists
// exists.
func TestReadmeReferenceMatchesCatalog(t *testing.T) {
	code := yamlFields(reflect.TypeFor[catalog.Catalog](), "")
	doc := readmeReference(t)
	if len(code) < 40 || len(doc) == 0 {
		t.Fatalf("found %d fields in the code and %d in %s: the walk or the parse is broken", len(code), len(doc), referenceFile)
	}
	for _, f := range code {
		if !slices.Contains(doc, f) {
			t.Errorf("%s, ## Reference: field %s is accepted by the catalog but not documented: add a row | `%s` | default | what |", referenceFile, f, f)
		}
	}
	seen := map[string]bool{}
	for _, f := range doc {
		if !slices.Contains(code, f) {
			t.Errorf("%s, ## Reference: %s is documented but the catalog has no such field: fix or remove the row", referenceFile, f)
		}
		if seen[f] {
			t.Errorf("%s, ## Reference: %s is listed twice", referenceFile, f)
		}
		seen[f] = true
	}
}

// The walk finds fields at every depth: a nested leaf, a list of objects
// and a Duration.
func TestYAMLFieldsWalk(t *testing.T) {
	got := yamlFields(reflect.TypeFor[catalog.Catalog](), "")
	for _, want := range []string{"vault.auth.method", "targets[].grace", "targets[].apiKeys.providers[].admin.secret.name", "targets[].tls.handshake.serverName", "targets[].postgres.users"} {
		if !slices.Contains(got, want) {
			t.Errorf("the walk misses %s; got %v", want, got)
		}
	}
	if slices.Contains(got, "targets[].grace.Duration") {
		t.Error("Duration must be a leaf")
	}
}
