package postgres

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// FuzzVerifier: a verifier built for a password lets a SCRAM-SHA-256
// client that knows that password authenticate, checked by a server side
// written here from RFC 5802 and RFC 7677 (not with the package's code),
// and refuses a client with any other password. Passwords that would need
// SASLprep are refused with an error that does not depend on them.
func FuzzVerifier(f *testing.F) {
	f.Add("pencil", "pencil!", []byte("salt"), uint8(4))
	f.Add("", "x", []byte{0}, uint8(1))
	f.Add(`a";drop role x;--`, `a";drop role y;--`, []byte("0123456789abcdef"), uint8(16))
	f.Add("pässword", "password", []byte("s"), uint8(2))
	f.Fuzz(func(t *testing.T, password, other string, salt []byte, iter uint8) {
		if len(salt) == 0 {
			t.Skip("rotator always salts with 16 random bytes")
		}
		iterations := int(iter)%32 + 1
		v, err := verifierWith(password, salt, iterations)
		if !printableASCII(password) {
			if err == nil {
				t.Fatal("accepted a password that needs SASLprep")
			}
			if _, ref := verifierWith("\x00", salt, iterations); err.Error() != ref.Error() {
				t.Fatalf("the error depends on the password: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !Matches(v, password) {
			t.Fatal("the verifier does not match its own password")
		}
		if !scramLogin(t, v, password) {
			t.Fatalf("an RFC 5802 server refuses the right password with %s", v)
		}
		if other != password {
			if Matches(v, other) {
				t.Fatal("the verifier matches another password")
			}
			if printableASCII(other) && scramLogin(t, v, other) {
				t.Fatal("an RFC 5802 server accepts another password")
			}
		}
		if lit, err := literal(v); err != nil || lit != "'"+v+"'" {
			t.Fatalf("literal(%q) = %q, %v", v, lit, err)
		}
	})
}

// FuzzMatches: any string given as a stored verifier is parsed without a
// panic, and matches only when it is exactly what the package computes.
func FuzzMatches(f *testing.F) {
	f.Add("SCRAM-SHA-256$4:c2FsdA==$xx:yy", "pencil")
	f.Add("SCRAM-SHA-256$0:c2FsdA==$xx:yy", "pencil")
	f.Add("md5d41d8cd98f00b204e9800998ecf8427e", "")
	f.Add("SCRAM-SHA-256$4:c2FsdA==$a:b'; DROP ROLE x; --", "x")
	f.Fuzz(func(t *testing.T, verifier, password string) {
		m := verifierPattern.FindStringSubmatch(verifier)
		if m != nil {
			// Matches runs PBKDF2 with the verifier's own count: the
			// fuzzer keeps it small, PostgreSQL stores at most INT_MAX.
			if n, err := strconv.Atoi(m[1]); err != nil || n > 64 {
				t.Skip("iteration count too large to recompute in a fuzz run")
			}
		}
		if !Matches(verifier, password) {
			return
		}
		salt, err := base64.StdEncoding.DecodeString(m[2])
		n, _ := strconv.Atoi(m[1])
		if err != nil {
			t.Fatal("matched a verifier whose salt is not base64")
		}
		if again, _ := verifierWith(password, salt, n); again != verifier {
			t.Fatalf("matched %q, which differs from the computed %q", verifier, again)
		}
		if _, err := literal(verifier); err != nil {
			t.Fatalf("a matching verifier cannot be sent: %v", err)
		}
	})
}

// FuzzLiteral: whatever literal accepts is one SQL string literal that
// reads back as the verifier, so no input can end the literal early.
func FuzzLiteral(f *testing.F) {
	f.Add("SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5")
	f.Add("SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5'; DROP ROLE postgres; --")
	f.Add("'")
	f.Fuzz(func(t *testing.T, s string) {
		lit, err := literal(s)
		if err != nil {
			return
		}
		got, rest, err := readStringLiteral(lit)
		if err != nil || rest != "" || got != s {
			t.Fatalf("literal(%q) = %q reads back as %q with %q left over (%v)", s, lit, got, rest, err)
		}
	})
}

// FuzzIdent: a role name quoted with pgx reads back, by SQL's rules for
// quoted identifiers, as the name itself (less NUL bytes, which no
// PostgreSQL name holds and which the catalog refuses), and the statement
// around it keeps its shape whatever the name holds.
func FuzzIdent(f *testing.F) {
	for _, s := range []string{"orchestrator", `a";drop role x;--`, `e2e "quoted"; DROP ROLE postgres; -- `, `""`, "\x00", "a\x00\"b", "Grüße", strings.Repeat(`"`, 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		stmt := "ALTER ROLE " + ident(name) + " NOLOGIN"
		rest, ok := strings.CutPrefix(stmt, "ALTER ROLE ")
		if !ok {
			t.Fatal("lost the statement's start")
		}
		got, rest, err := readQuotedIdent(rest)
		if err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
		if rest != " NOLOGIN" {
			t.Fatalf("the name %q changed the statement: %q left after the identifier", name, rest)
		}
		if want := strings.ReplaceAll(name, "\x00", ""); got != want {
			t.Fatalf("ident(%q) reads back as %q", name, got)
		}
	})
}

// readQuotedIdent reads one SQL quoted identifier from the start of s:
// "..." with "" standing for one quote. It returns the name and what
// follows the closing quote.
func readQuotedIdent(s string) (name, rest string, err error) {
	return readQuoted(s, '"')
}

// readStringLiteral reads one SQL string literal: '...', with a doubled
// quote standing for one.
func readStringLiteral(s string) (value, rest string, err error) {
	return readQuoted(s, '\'')
}

func readQuoted(s string, q byte) (string, string, error) {
	if len(s) == 0 || s[0] != q {
		return "", s, errors.New("does not start with a quote")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == 0:
			return "", s, errors.New("NUL byte inside quotes: the server would cut the statement there")
		case s[i] != q:
			b.WriteByte(s[i])
		case i+1 < len(s) && s[i+1] == q:
			b.WriteByte(q)
			i++
		default:
			return b.String(), s[i+1:], nil
		}
	}
	return "", s, errors.New("no closing quote")
}

func printableASCII(s string) bool {
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return false
		}
	}
	return true
}

// scramLogin runs a SCRAM-SHA-256 exchange (RFC 5802 section 3) between a
// client that knows password and a server that knows only the verifier,
// and reports whether the server accepts the client's proof.
func scramLogin(t *testing.T, verifier, password string) bool {
	t.Helper()
	// The server's record: SCRAM-SHA-256$<i>:<salt>$<StoredKey>:<ServerKey>.
	head, keys, ok := strings.Cut(strings.TrimPrefix(verifier, "SCRAM-SHA-256$"), "$")
	iterText, saltText, ok2 := strings.Cut(head, ":")
	storedText, serverText, ok3 := strings.Cut(keys, ":")
	if !ok || !ok2 || !ok3 {
		t.Fatalf("verifier %q has not the stored form", verifier)
	}
	iterations, err := strconv.Atoi(iterText)
	if err != nil {
		t.Fatal(err)
	}
	salt, err1 := base64.StdEncoding.DecodeString(saltText)
	storedKey, err2 := base64.StdEncoding.DecodeString(storedText)
	serverKey, err3 := base64.StdEncoding.DecodeString(serverText)
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}

	// The client, from the salt and count the server sent.
	salted := hi([]byte(password), salt, iterations)
	clientKey := hmacSHA256(salted, []byte("Client Key"))
	authMessage := []byte("n=,r=clientnonce,r=clientnonceservernonce,s=" + saltText + ",i=" + iterText + ",c=biws,r=clientnonceservernonce")
	clientSignature := hmacSHA256(h(clientKey), authMessage)
	proof := xor(clientKey, clientSignature)

	// The server: recover ClientKey from the proof and compare its hash.
	recovered := xor(proof, hmacSHA256(storedKey, authMessage))
	if !hmac.Equal(h(recovered), storedKey) {
		return false
	}
	// The client checks the server's signature in turn.
	want := hmacSHA256(hmacSHA256(salted, []byte("Server Key")), authMessage)
	return hmac.Equal(hmacSHA256(serverKey, authMessage), want)
}

// hi is RFC 5802's Hi(): PBKDF2 with HMAC-SHA-256, one block, written out.
func hi(password, salt []byte, iterations int) []byte {
	u := hmacSHA256(password, binary.BigEndian.AppendUint32(append([]byte{}, salt...), 1))
	out := append([]byte{}, u...)
	for range iterations - 1 {
		u = hmacSHA256(password, u)
		out = xor(out, u)
	}
	return out
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func h(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func xor(a, b []byte) []byte {
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] ^ b[i]
	}
	return out
}

// The RFC 5802 exchange above accepts what a real PostgreSQL 15 stored for
// "pencil" (see TestVerifierMatchesPostgreSQL) and nothing else, so the
// fuzz targets check against the server's algorithm, not a copy of ours.
func TestSCRAMLoginAgainstPostgreSQLsVerifier(t *testing.T) {
	const stored = "SCRAM-SHA-256$4096:PDiTTjCQzfPVv3frdQXT8w==$88xiw1s2Dsv4aStF2/k7aJU2SmlBeWt2j4qLS19wpx0=:dQ/oEo0n/2N/NrEb+FBQaIT/1T3BqEAkrcmaCl2jJSI="
	if !scramLogin(t, stored, "pencil") {
		t.Fatal("the exchange refuses the password PostgreSQL stored")
	}
	if scramLogin(t, stored, "pencil!") || scramLogin(t, stored, "") {
		t.Fatal("the exchange accepts another password")
	}
}
