package postgres

import (
	"strings"
	"testing"
)

func TestVerifierRoundTrip(t *testing.T) {
	pw, err := NewPassword()
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verifier(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "SCRAM-SHA-256$4096:") || strings.Contains(v, pw) {
		t.Fatalf("verifier %q has the wrong shape or holds the password", v)
	}
	if !Matches(v, pw) {
		t.Error("the verifier does not match its own password")
	}
	if Matches(v, pw+"x") {
		t.Error("the verifier matches another password")
	}
	v2, _ := Verifier(pw)
	if v2 == v {
		t.Error("two verifiers of one password share a salt")
	}
}

func TestVerifierRefusesWhatNeedsSASLprep(t *testing.T) {
	if _, err := Verifier("pässword"); err == nil {
		t.Fatal("a non-ASCII password must be refused: PostgreSQL would SASLprep it first")
	}
}

func TestLiteralOnlyTakesVerifiers(t *testing.T) {
	v, _ := Verifier("pencil")
	if got, err := literal(v); err != nil || got != "'"+v+"'" {
		t.Fatalf("literal(%q) = %q, %v", v, got, err)
	}
	for _, bad := range []string{"", "pencil", v + "'; DROP ROLE x; --", "md5abc"} {
		if _, err := literal(bad); err == nil {
			t.Errorf("literal accepted %q", bad)
		}
	}
}

func TestNewPasswordIsDSNSafe(t *testing.T) {
	pw, _ := NewPassword()
	if len(pw) != 43 || strings.ContainsAny(pw, "/+=@:?#%") {
		t.Fatalf("password %d chars, needs escaping in a URL", len(pw))
	}
	if got := DSN(Server{Host: "h", Port: 5432, Database: "d", SSLMode: "require"}, Credentials{Username: "u", Password: pw}); got != "postgres://u:"+pw+"@h:5432/d?sslmode=require" {
		t.Fatalf("DSN = %q", got)
	}
}

// Verifiers that a real PostgreSQL 15 stored in pg_authid for these
// passwords: recomputing them with the same salt must give the same bytes.
func TestVerifierMatchesPostgreSQL(t *testing.T) {
	for _, tc := range []struct{ password, stored string }{
		{"pencil", "SCRAM-SHA-256$4096:PDiTTjCQzfPVv3frdQXT8w==$88xiw1s2Dsv4aStF2/k7aJU2SmlBeWt2j4qLS19wpx0=:dQ/oEo0n/2N/NrEb+FBQaIT/1T3BqEAkrcmaCl2jJSI="},
		{"Zq3-xY_9abcDEF0123456789abcdefgh", "SCRAM-SHA-256$4096:AqeeTCrVY5nGskIvex4opA==$xVVJfqxE4IdHoTEzpo7wWi2+zW+xZpJxvSYlxCd0k10=:lAtMtqUeuI2NlofltlVBelTByucDRbQuxqysC/RtOCg="},
	} {
		if !Matches(tc.stored, tc.password) {
			t.Errorf("our verifier of %q differs from PostgreSQL's %s", tc.password, tc.stored)
		}
		if Matches(tc.stored, tc.password+"!") {
			t.Errorf("PostgreSQL's verifier of %q matches another password", tc.password)
		}
	}
}
