package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRedisPrepare: the first prepare writes an ACL file with the default
// user off and the admin user's password as its SHA-256 only; a second
// keeps the file, which by then holds the passwords rotations set.
func TestRedisPrepare(t *testing.T) {
	dir := t.TempDir()
	r := &redisServer{dir: filepath.Join(dir, "redis"), pki: filepath.Join(dir, "pki"), port: redisPort}
	if err := r.prepare(); err != nil {
		t.Fatal(err)
	}
	pw, err := os.ReadFile(r.adminPasswordFile())
	if err != nil || len(pw) < 32 {
		t.Fatalf("admin password file: %q, %v", pw, err)
	}
	acl, err := os.ReadFile(r.aclFile())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pw)
	want := "user default off\nuser rotator_admin on #" + hex.EncodeToString(sum[:]) + " ~* &* +@all\n"
	if string(acl) != want {
		t.Errorf("ACL file:\n%s\nwant:\n%s", acl, want)
	}
	if strings.Contains(string(acl), string(pw)) {
		t.Error("the ACL file holds the password in clear")
	}
	for _, f := range []string{r.aclFile(), r.adminPasswordFile()} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", f, st.Mode().Perm(), err)
		}
	}
	rotated := []byte("user default off\nuser app on #" + strings.Repeat("a", 64) + " ~* +@all\n")
	if err := os.WriteFile(r.aclFile(), rotated, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.prepare(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(r.aclFile()); string(got) != string(rotated) {
		t.Errorf("a second prepare rewrote the ACL file:\n%s", got)
	}
	if again, _ := os.ReadFile(r.adminPasswordFile()); string(again) != string(pw) {
		t.Error("a second prepare changed the admin password")
	}
}

func TestRESP(t *testing.T) {
	if got, want := resp("AUTH", "u", "p w"), "*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$3\r\np w\r\n"; got != want {
		t.Errorf("resp: %q, want %q", got, want)
	}
}
