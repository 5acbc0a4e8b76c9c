package catalog

import "time"

// KindJWT rotates a random HMAC signing key that the application reads
// from a Secret; it has no backing system.
const KindJWT Kind = "jwt"

// Defaults and bounds of a jwt target.
const (
	DefaultJWTBytes = 64
	DefaultJWTKey   = "secret"
	// MaxJWTBytes bounds key size: larger keys add nothing to HS512 and a
	// Secret must stay well below etcd's 1 MiB object limit.
	MaxJWTBytes = 4096
	minJWTBytes = 32
)

// JWT configures a jwt target.
type JWT struct {
	// Bytes is the length of the random key before base64 encoding.
	Bytes int `json:"bytes,omitempty"`
	// DualKey makes each new Secret also carry the previous key under
	// "previous", so applications that verify with both keys keep tokens
	// signed before the rotation valid through grace.
	DualKey bool `json:"dualKey,omitempty"`
	// Previous says how long a dual-key Secret's previous key stays
	// trusted: keepUntilNextRotation (default), or dropAtRetire, which
	// rolls the consumers out once more at retire onto a version without
	// it.
	Previous string `json:"previous,omitempty"`
}

// The values of jwt.previous.
const (
	PreviousKeepUntilNextRotation = "keepUntilNextRotation"
	PreviousDropAtRetire          = "dropAtRetire"
)

// DropsPrevious reports whether a dual-key target removes the previous key
// at retire, with a second rollout.
func (t Target) DropsPrevious() bool {
	return t.JWT != nil && t.JWT.DualKey && t.JWT.Previous == PreviousDropAtRetire
}

// jwtKind registers the jwt kind. Its section is optional: a key of
// DefaultJWTBytes needs no settings.
func jwtKind() kindSpec {
	return kindSpec{
		kind:     KindJWT,
		section:  "jwt",
		has:      func(t *Target) bool { return t.JWT != nil },
		every:    90 * 24 * time.Hour,
		defaults: jwtDefaults,
		check:    jwtCheck,
	}
}

func jwtDefaults(t *Target) {
	if t.Key == "" {
		t.Key = DefaultJWTKey
	}
	if t.JWT == nil {
		t.JWT = &JWT{}
	}
	if t.JWT.Bytes == 0 {
		t.JWT.Bytes = DefaultJWTBytes
	}
}

func jwtCheck(t *Target, fail failFunc) {
	j := t.JWT
	if j.Bytes < minJWTBytes || j.Bytes > MaxJWTBytes {
		fail("jwt.bytes", "%d is out of range: use %d to %d (default %d)", j.Bytes, minJWTBytes, MaxJWTBytes, DefaultJWTBytes)
	}
	switch {
	case j.Previous == "" || j.Previous == PreviousKeepUntilNextRotation:
	case j.Previous != PreviousDropAtRetire:
		fail("jwt.previous", "%q is not a choice: use %s (default) or %s", truncate(j.Previous), PreviousKeepUntilNextRotation, PreviousDropAtRetire)
	case !j.DualKey:
		fail("jwt.previous", "only a dual-key Secret has a previous key: set jwt.dualKey: true or remove previous")
	}
}
