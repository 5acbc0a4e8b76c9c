package leakscan

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// Every form must be found in a payload that embeds the value at any
// alignment, and the decoded form must be the raw key.
func TestFormsFindEmbeddedValue(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	for pad := range 3 {
		payload := base64.StdEncoding.EncodeToString(append(append(make([]byte, pad), key...), "tail"...))
		found := false
		for _, f := range Forms(key) {
			if bytes.Contains([]byte(payload), f) {
				found = true
			}
		}
		if !found {
			t.Errorf("no form of the key found in base64 with %d bytes before it", pad)
		}
	}
	enc := []byte(base64.StdEncoding.EncodeToString(key))
	forms := Forms(enc)
	if !bytes.Equal(forms[len(forms)-1], key) {
		t.Errorf("the last form of a base64 value is %q, want the decoded key", forms[len(forms)-1])
	}
	if got := len(Forms([]byte("short"))); got != 4 {
		t.Errorf("a 5-byte non-base64 value has %d forms, want raw, hex and 2 base64 (at one alignment nothing is left)", got)
	}
}
