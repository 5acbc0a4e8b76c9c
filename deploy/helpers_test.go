package deploy_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository's root, relative to this package.
const root = ".."

// readFile returns the content of a file under the repository root.
func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// versions reads deploy/versions.env: KEY=value lines, # comments.
func versions(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, "deploy/versions.env")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("deploy/versions.env: %q is not KEY=value", line)
		}
		out[k] = v
	}
	return out
}

// version returns one entry of deploy/versions.env, failing if it is absent.
func version(t *testing.T, key string) string {
	t.Helper()
	v, ok := versions(t)[key]
	if !ok || v == "" {
		t.Fatalf("deploy/versions.env has no %s", key)
	}
	return v
}

// submatch returns the first group of re in the file, failing with a message
// that names what was looked for.
func submatch(t *testing.T, rel, what string, re *regexp.Regexp) string {
	t.Helper()
	m := re.FindSubmatch(readFile(t, rel))
	if m == nil {
		t.Fatalf("%s: found no %s (pattern %s): did the file change shape? update this test with it", rel, what, re)
	}
	return string(m[1])
}
