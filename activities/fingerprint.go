package activities

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"regexp"

	corev1 "k8s.io/api/core/v1"
)

const (
	// EnvFingerprintKeyFile names the file that holds the worker's
	// fingerprint key: at least MinFingerprintKeySize random bytes, read
	// as they are (a trailing newline and surrounding spaces are cut).
	// Every worker of a deployment should read the same file, so that one
	// value has one fingerprint whichever worker computed it.
	EnvFingerprintKeyFile = "ROTATOR_FINGERPRINT_KEY_FILE"
	// MinFingerprintKeySize is the shortest key accepted: as many bytes
	// as the HMAC-SHA256 output, so that guessing the key is no easier
	// than guessing a 256-bit secret.
	MinFingerprintKeySize = 32
	// fingerprintPrefix marks a keyed fingerprint; workers before it
	// wrote "sha256:" and an unkeyed hash.
	fingerprintPrefix = "hmac-sha256:"
)

// keyedFingerprint is the form Fingerprinter.Of writes; anything else in
// an annotation (an unkeyed "sha256:" one from an older worker, or text
// someone wrote there) is recomputed rather than passed on.
var keyedFingerprint = regexp.MustCompile(`^hmac-sha256:[0-9a-f]{12}$`)

// Fingerprinter identifies secret values without revealing them: the
// first 12 hex digits of an HMAC-SHA256 under the worker's key, enough to
// tell versions apart in status output. A plain hash of a value a person
// chose (an adopted password, an API key) could be checked against a list
// of likely values by anyone who reads a history, a log or an annotation;
// without the key, a keyed one cannot. The zero Fingerprinter has no key
// and fingerprints nothing. Its String, GoString and LogValue never show
// the key.
type Fingerprinter struct {
	key []byte
}

// NewFingerprinter makes a Fingerprinter from a copy of key, which must be
// at least MinFingerprintKeySize bytes.
func NewFingerprinter(key []byte) (Fingerprinter, error) {
	if len(key) < MinFingerprintKeySize {
		return Fingerprinter{}, fmt.Errorf("the fingerprint key has %d bytes: use at least %d random bytes, e.g. head -c 32 /dev/urandom > key", len(key), MinFingerprintKeySize)
	}
	return Fingerprinter{key: bytes.Clone(key)}, nil
}

// RandomFingerprinter makes a Fingerprinter with a random key of this
// process: no fingerprint it makes is an oracle, but the same value gets
// another fingerprint from another worker or after a restart.
func RandomFingerprinter() Fingerprinter {
	key := make([]byte, MinFingerprintKeySize)
	// crypto/rand.Read never fails; it crashes the program rather than
	// return a short read.
	_, _ = rand.Read(key)
	return Fingerprinter{key: key}
}

// LoadFingerprinter reads the key from the file EnvFingerprintKeyFile
// names. With the variable unset it returns the zero Fingerprinter and no
// error, for the caller to choose a random key and say so; a file that is
// set but unreadable or too short is an error, never a silent fallback.
// Errors name the file and the fix and never show its content.
func LoadFingerprinter() (Fingerprinter, error) {
	path := os.Getenv(EnvFingerprintKeyFile)
	if path == "" {
		return Fingerprinter{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Fingerprinter{}, fmt.Errorf("%s: %w: mount the fingerprint key there (at least %d random bytes), or unset %s", EnvFingerprintKeyFile, err, MinFingerprintKeySize, EnvFingerprintKeyFile)
	}
	f, err := NewFingerprinter(bytes.TrimSpace(b))
	if err != nil {
		return Fingerprinter{}, fmt.Errorf("%s (%s): %w", EnvFingerprintKeyFile, path, err)
	}
	return f, nil
}

// Keyed reports whether f has a key.
func (f Fingerprinter) Keyed() bool { return len(f.key) > 0 }

// Of returns the fingerprint of value, "hmac-sha256:" and 12 hex digits;
// "" without a key.
func (f Fingerprinter) Of(value []byte) string {
	if !f.Keyed() {
		return ""
	}
	mac := hmac.New(sha256.New, f.key)
	mac.Write(value)
	return fingerprintPrefix + hex.EncodeToString(mac.Sum(nil)[:6])
}

// String keeps the key out of any %v or %s.
func (f Fingerprinter) String() string {
	if !f.Keyed() {
		return "Fingerprinter(no key)"
	}
	return "Fingerprinter(key redacted)"
}

// GoString keeps the key out of %#v.
func (f Fingerprinter) GoString() string { return f.String() }

// LogValue keeps the key out of slog.
func (f Fingerprinter) LogValue() slog.Value { return slog.StringValue(f.String()) }

// fingerprintOf is the fingerprint of s's data key: the one stage wrote
// on it, or computed now for a Secret rotator did not create (the adopted
// version 1) and for one an older worker annotated with an unkeyed hash,
// which is not passed on into histories and status.
func (k *Kube) fingerprintOf(s *corev1.Secret, key string) string {
	if fp := s.Annotations[AnnotationFingerprint]; keyedFingerprint.MatchString(fp) {
		return fp
	}
	return k.Fingerprints.Of(s.Data[key])
}
