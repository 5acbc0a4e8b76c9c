package codec

import (
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"strings"
)

const (
	// EnvKeysFile names a file holding the keyring, one `id=base64key` line
	// per key. It is the preferred form: the file can be mounted from a
	// Kubernetes Secret, and its contents never show in the process
	// environment (/proc/<pid>/environ, `kubectl describe`, crash dumps).
	EnvKeysFile = "ROTATOR_CODEC_KEYS_FILE"
	// EnvKeys holds the same lines inline, for local runs.
	EnvKeys = "ROTATOR_CODEC_KEYS"
	// EnvRequired, when true, makes payload encryption mandatory: a
	// process without a keyring refuses to start, and its codec refuses
	// unencrypted payloads (Codec.RefusingPlain).
	EnvRequired = "ROTATOR_CODEC_REQUIRED"
)

// activeMark is the word that may follow a key line to make it the active
// key; without one the first key is active. Base64 has no spaces, so the
// word cannot be part of a key.
const activeMark = "active"

// Enabled reports whether payload encryption is configured, without
// reading or checking the keys.
func Enabled() bool {
	return os.Getenv(EnvKeysFile) != "" || os.Getenv(EnvKeys) != ""
}

// Required reports whether ROTATOR_CODEC_REQUIRED asks for mandatory
// encryption. Unset or empty is false; a value that is not a boolean is an
// error, so that a typo cannot turn the requirement off unnoticed.
func Required() (bool, error) {
	v := strings.TrimSpace(os.Getenv(EnvRequired))
	if v == "" {
		return false, nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want true or false", EnvRequired, v)
	}
	return on, nil
}

// Load builds the codec from ROTATOR_CODEC_KEYS_FILE or ROTATOR_CODEC_KEYS.
// It returns nil and no error when neither is set, so that callers leave
// payloads plain; a keyring that is set but unusable is an error rather
// than a silent fallback to plaintext.
func Load() (*Codec, error) {
	file, inline := os.Getenv(EnvKeysFile), os.Getenv(EnvKeys)
	switch {
	case file != "" && inline != "":
		return nil, fmt.Errorf("%s and %s are both set: keep one (the file is preferred, so that keys stay out of the environment)", EnvKeysFile, EnvKeys)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: mount the keyring there (one id=base64key line per key), or unset %s", EnvKeysFile, err, EnvKeysFile)
		}
		return Parse(EnvKeysFile+" ("+file+")", string(b))
	case inline != "":
		return Parse(EnvKeys, inline)
	}
	return nil, nil
}

// Parse reads a keyring: one `id=base64key` line per key, blank lines and
// lines starting with # ignored. The first key is active unless one line
// ends with the word "active". source names where the text came from, for
// error messages; those name the line and never echo any part of it, since
// a malformed line may be nothing but key material.
func Parse(source, text string) (*Codec, error) {
	var keys []Key
	seen := map[string]int{}
	active, activeLine := "", 0
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		marked := len(fields) == 2 && fields[1] == activeMark
		if len(fields) > 2 || (len(fields) == 2 && !marked) {
			return nil, fmt.Errorf("%s line %d: want id=base64key, optionally followed by the word %q", source, n, activeMark)
		}
		id, b64, ok := strings.Cut(fields[0], "=")
		if !ok {
			return nil, fmt.Errorf("%s line %d: want id=base64key: the line has no '=' (generate a line with `starter codec keygen`)", source, n)
		}
		secret, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(secret) != KeySize {
			return nil, fmt.Errorf("%s line %d: the key must be %d random bytes in standard base64 (44 characters): generate one with `starter codec keygen`", source, n, KeySize)
		}
		if !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("%s line %d: the key ID must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. 20260721-a1b2c3)", source, n)
		}
		if first, dup := seen[id]; dup {
			return nil, fmt.Errorf("%s line %d: key ID %q is also on line %d: give every key its own ID, and never reuse one for different bytes", source, n, id, first)
		}
		seen[id] = n
		if marked {
			if activeLine != 0 {
				return nil, fmt.Errorf("%s line %d: a second key is marked %q (line %d is too): mark one", source, n, activeMark, activeLine)
			}
			active, activeLine = id, n
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no keys: add a line id=base64key (generate one with `starter codec keygen`), or unset it to leave payloads unencrypted", source)
	}
	if active == "" {
		active = keys[0].ID
	}
	return New(active, keys...)
}
