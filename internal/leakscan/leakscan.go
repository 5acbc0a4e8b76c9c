// Package leakscan gives the forms a secret value can take when it leaks
// into a log line or a Temporal history, for the tests that search them.
package leakscan

import (
	"encoding/base64"
	"encoding/hex"
)

// Forms returns v raw, hex-encoded, base64-encoded at each of the three
// alignments it can have inside a longer base64 payload, and decoded when v
// is itself base64 of at least 16 bytes (a key stored encoded may leak as
// its raw bytes).
func Forms(v []byte) [][]byte {
	forms := [][]byte{v, []byte(hex.EncodeToString(v))}
	for off := range 3 {
		s := base64.StdEncoding.EncodeToString(append(make([]byte, off), v...))
		start := 0
		if off > 0 {
			start = 4 // the first group mixes in bytes before the value
		}
		if end := len(s) - 4; end > start { // so may the last
			forms = append(forms, []byte(s[start:end]))
		}
	}
	if dec, err := base64.StdEncoding.DecodeString(string(v)); err == nil && len(dec) >= 16 {
		forms = append(forms, dec)
	}
	return forms
}
