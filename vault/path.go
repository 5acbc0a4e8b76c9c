package vault

import (
	"fmt"
	"strings"
)

// MaxPathLen bounds a KV path. Vault itself accepts longer keys, but a
// catalog path this long is a mistake, and the bound keeps error messages
// short.
const MaxPathLen = 256

// stagedSegment is the last segment of the staging area under a target's
// path (see StagedPath). It is reserved: a catalog path ending in it would
// share its versions with the engineers' staged keys.
const stagedSegment = "staged"

// kvAPIPrefixes are the first segments the KV v2 HTTP API puts between the
// mount and the path. The client adds them itself, so a catalog path that
// starts with one (copied from a policy or a URL) would land at
// secret/data/data/...
var kvAPIPrefixes = []string{"data", "metadata", "delete", "undelete", "destroy", "subkeys", "config"}

// CheckPath validates a KV v2 path as the catalog gives it: relative to the
// mount, without the KV v2 API prefix. It refuses what Vault would read
// differently from how it is written, so that a typo fails at catalog load
// rather than writing secrets somewhere nobody looks. Each message says how
// to fix the path.
func CheckPath(path string) error {
	const example = "e.g. llm-orchestrator/orchestrator-jwt"
	switch {
	case path == "":
		return fmt.Errorf("vault path is empty: give the KV v2 path inside the mount, %s", example)
	case len(path) > MaxPathLen:
		return fmt.Errorf("vault path is %d characters long: keep it under %d", len(path), MaxPathLen)
	case strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/"):
		return fmt.Errorf("vault path %q has a leading or trailing slash: remove it, %s", path, example)
	}
	for _, r := range path {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./", r)) {
			return fmt.Errorf("vault path %q contains %q: use letters, digits, '-', '_', '.' and '/' only", path, r)
		}
	}
	segments := strings.Split(path, "/")
	for _, s := range segments {
		switch s {
		case "":
			return fmt.Errorf("vault path %q has an empty segment (//): remove the extra slash", path)
		case ".", "..":
			return fmt.Errorf("vault path %q has a %q segment: write the path without relative segments", path, s)
		}
	}
	for _, p := range kvAPIPrefixes {
		if segments[0] == p && len(segments) > 1 {
			return fmt.Errorf("vault path %q starts with %q, the KV v2 API's own prefix: give the path without it (%q)", path, p+"/", strings.Join(segments[1:], "/"))
		}
	}
	if segments[len(segments)-1] == stagedSegment {
		return fmt.Errorf("vault path %q ends in /%s, which rotator reserves for keys staged by engineers: choose another path", path, stagedSegment)
	}
	return nil
}

// StagedPath is where engineers stage newly obtained API keys for a target
// whose versions live at path: a child of it, so one policy rule on
// "<mount>/data/<path>/staged" lets the staging CLI write there without
// access to the record itself.
func StagedPath(path string) string {
	return path + "/" + stagedSegment
}
