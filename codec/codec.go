// Package codec encrypts Temporal payloads with AES-256-GCM, so that
// workflow inputs, results, signals, memos and (through the failure
// converter) error messages reach the Temporal server only as ciphertext.
//
// This is defence in depth: rotator never puts a secret value into a
// payload in the first place (DESIGN.md, invariant 1). The codec limits
// what a mistake, or a reader of the Temporal database, could see.
//
// Keys live in a keyring: every key has an ID, one key is active. Encode
// uses the active key and records its ID in the payload's metadata; Decode
// picks the key by that ID, so a keyring that keeps its old keys still
// decodes everything written before a key rotation.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

const (
	// EncodingEncrypted is the metadata "encoding" of an encrypted payload;
	// the Web UI shows it for payloads it cannot decode.
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID names the metadata entry that holds the ID of the key a
	// payload was encrypted with.
	MetadataKeyID = "encryption-key-id"
	// KeySize is the length of an AES-256 key in bytes.
	KeySize = 32
)

// ErrUnknownKey is wrapped by Decode's error for a payload whose key ID is
// not in the keyring, so callers can tell a missing key from tampering.
var ErrUnknownKey = errors.New("unknown codec key")

// keyIDPattern keeps IDs printable and short: they travel in every payload
// and appear in error messages and logs, so they must never look like, or
// be, key material.
var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Key is one AES-256 key and the ID payloads refer to it by.
type Key struct {
	ID     string
	Secret []byte
}

// String names the key without its bytes, so that a key printed by
// mistake (%v, a log attribute) shows nothing secret.
func (k Key) String() string { return "codec key " + k.ID }

// GoString hides the bytes from %#v for the same reason as String.
func (k Key) GoString() string { return fmt.Sprintf("codec.Key{ID: %q}", k.ID) }

// Line is the key in the keyring's configuration format, id=base64.
// It contains the secret: write it only where the keyring is stored.
func (k Key) Line() string {
	return k.ID + "=" + base64.StdEncoding.EncodeToString(k.Secret)
}

// GenerateKey returns a new random key with an ID from today's date and a
// random suffix, so that keys generated on the same day do not collide.
func GenerateKey() (Key, error) {
	suffix := make([]byte, 3)
	secret := make([]byte, KeySize)
	if _, err := rand.Read(suffix); err != nil {
		return Key{}, fmt.Errorf("generate codec key: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("generate codec key: %w", err)
	}
	return Key{ID: time.Now().UTC().Format("20060102") + "-" + hex.EncodeToString(suffix), Secret: secret}, nil
}

// ErrPlainPayload is wrapped by the error of a codec made by RefusingPlain
// for a payload that is not encrypted.
var ErrPlainPayload = errors.New("unencrypted payload refused")

// Codec is an AES-256-GCM converter.PayloadCodec over a keyring. It is
// safe for concurrent use.
type Codec struct {
	active string
	aeads  map[string]cipher.AEAD
	ids    []string // in configuration order, for messages
	// refusePlain makes Decode fail on a payload that is not encrypted
	// instead of passing it through (RefusingPlain).
	refusePlain bool
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New makes a codec from keys; active names the key Encode uses and must be
// one of them. The key bytes are copied into the ciphers and not kept.
func New(active string, keys ...Key) (*Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("codec: no keys: generate one with `starter codec keygen`")
	}
	c := &Codec{active: active, aeads: make(map[string]cipher.AEAD, len(keys))}
	for _, k := range keys {
		if !keyIDPattern.MatchString(k.ID) {
			return nil, fmt.Errorf("codec: key ID %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", k.ID)
		}
		if _, dup := c.aeads[k.ID]; dup {
			return nil, fmt.Errorf("codec: key ID %q is given twice: every key needs its own ID", k.ID)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("codec: key %q has %d bytes, want %d (AES-256): generate one with `starter codec keygen`", k.ID, len(k.Secret), KeySize)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", k.ID, err)
		}
		// A random 96-bit nonce per payload, prepended to the ciphertext:
		// payloads are written by many workers and clients at once, so a
		// counter nonce could not be kept unique without coordination.
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", k.ID, err)
		}
		c.aeads[k.ID] = aead
		c.ids = append(c.ids, k.ID)
	}
	if _, ok := c.aeads[active]; !ok {
		return nil, fmt.Errorf("codec: the active key %q is not in the keyring (keys: %s)", active, strings.Join(c.ids, ", "))
	}
	return c, nil
}

// ActiveKeyID is the ID of the key new payloads are encrypted with.
func (c *Codec) ActiveKeyID() string { return c.active }

// KeyIDs lists the IDs of every key the codec decodes with, in the order
// they were configured.
func (c *Codec) KeyIDs() []string { return slices.Clone(c.ids) }

// RefusingPlain returns a codec with the same keys whose Decode fails on
// any payload that is not encrypted, rather than passing it through. Once
// every writer encrypts, a plain payload can only come from someone without
// the keyring (a Temporal CLI or Web UI without the codec server, a process
// started without the keys), and a worker that refuses it acts only on
// what a key holder sent. The codec server keeps the lenient codec: it
// only displays payloads.
func (c *Codec) RefusingPlain() *Codec {
	strict := *c
	strict.refusePlain = true
	return &strict
}

// RefusesPlain reports whether Decode refuses unencrypted payloads.
func (c *Codec) RefusesPlain() bool { return c.refusePlain }

// Encode encrypts each payload, metadata included, with the active key:
// the original encoding (json/plain, binary/null...) is hidden too, and
// Decode restores the payload exactly.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.aeads[c.active]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if p == nil {
			continue
		}
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("codec: marshal payload: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(EncodingEncrypted),
				MetadataKeyID:              []byte(c.active),
			},
			// The key ID is the additional data, so that a payload whose
			// metadata was edited to name another key fails to open.
			Data: aead.Seal(nil, nil, plain, []byte(c.active)),
		}
	}
	return out, nil
}

// Decode decrypts each encrypted payload with the key its metadata names.
// Payloads that are not encrypted pass through unchanged, so histories
// written before the codec was enabled still replay and display; a codec
// made by RefusingPlain fails on them instead.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if p == nil {
			continue
		}
		if enc := string(p.GetMetadata()[converter.MetadataEncoding]); enc != EncodingEncrypted {
			if c.refusePlain {
				// The encoding names a format (json/plain...), never data.
				return nil, fmt.Errorf("%w: a payload with encoding %q is not encrypted, and %s=true accepts only encrypted ones: "+
					"whoever sent it has no keyring (a Temporal CLI or Web UI without the codec server, or a process without %s); "+
					"send it again with the keyring, or unset %s to accept plain payloads",
					ErrPlainPayload, enc, EnvRequired, EnvKeysFile, EnvRequired)
			}
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		if id == "" {
			return nil, fmt.Errorf("codec: an encrypted payload has no %s metadata: it was not written by rotator's codec", MetadataKeyID)
		}
		aead, ok := c.aeads[id]
		if !ok {
			return nil, fmt.Errorf("%w: a payload is encrypted with key %q, which is not in the keyring (keys: %s): add that key's line back to %s",
				ErrUnknownKey, id, strings.Join(c.ids, ", "), EnvKeysFile)
		}
		plain, err := aead.Open(nil, nil, p.GetData(), []byte(id))
		if err != nil {
			// crypto/cipher's error says nothing useful; the likely causes do.
			return nil, fmt.Errorf("codec: a payload encrypted with key %q does not decrypt: the key stored under that ID has changed, or the payload was altered", id)
		}
		dec := &commonpb.Payload{}
		if err := proto.Unmarshal(plain, dec); err != nil {
			return nil, fmt.Errorf("codec: a payload decrypted with key %q is not a payload: %w", id, err)
		}
		out[i] = dec
	}
	return out, nil
}
