package catalog_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"rotator/catalog"
)

// FuzzParse: Parse never panics; it refuses with a short, non-empty error
// and no catalog, or it accepts a catalog whose names Kubernetes takes and
// which, written back as YAML, parses again to the same catalog. Seeds: the
// committed corpus in testdata/fuzz/FuzzParse, the shipped catalogs and
// every row of the bad-input table small enough to mutate.
func FuzzParse(f *testing.F) {
	for _, path := range []string{"../rotator.yaml", "../deploy/base/rotator.yaml"} {
		b, err := os.ReadFile(filepath.FromSlash(path))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, tc := range badInputs {
		if len(tc.yaml) < 4096 {
			f.Add([]byte(tc.yaml))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := catalog.Parse(b)
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a catalog with its error")
			}
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error")
			}
			assertShortLines(t, err.Error())
			return
		}
		if len(c.Targets) == 0 {
			t.Fatal("accepted a catalog without targets")
		}
		for _, tg := range c.Targets {
			if validation.IsDNS1123Subdomain(tg.Name) != nil || validation.IsDNS1123Label(tg.Namespace) != nil ||
				validation.IsDNS1123Subdomain(tg.Secret+"-2147483647") != nil {
				t.Fatalf("accepted names Kubernetes refuses: %q %q %q", tg.Name, tg.Namespace, tg.Secret)
			}
			if !slices.Contains(catalog.Kinds(), tg.Kind) {
				t.Fatalf("accepted kind %q", tg.Kind)
			}
			if tg.Grace.Duration <= 0 || (tg.Kind != catalog.KindTLS && tg.Every.Duration <= 0) {
				t.Fatalf("accepted grace %s, every %s", tg.Grace, tg.Every)
			}
		}
		// Written back, the catalog reads the same: defaults are stable and
		// nothing accepted once is refused the next time.
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal an accepted catalog: %v", err)
		}
		again, err := catalog.Parse(out)
		if err != nil {
			t.Fatalf("the catalog written back is refused: %v\n%s", err, out)
		}
		out2, err := yaml.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != string(out2) {
			t.Fatalf("a round trip changed the catalog:\n%s\n---\n%s", out, out2)
		}
	})
}
