package codec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

const marker = "codec-test-marker-7f3a9c"

func testKey(t *testing.T, id string) Key {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k.ID = id
	return k
}

func testCodec(t *testing.T, active string, keys ...Key) *Codec {
	t.Helper()
	c, err := New(active, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func payloads(t *testing.T, values ...any) []*commonpb.Payload {
	t.Helper()
	ps, err := converter.GetDefaultDataConverter().ToPayloads(values...)
	if err != nil {
		t.Fatal(err)
	}
	return ps.Payloads
}

func TestCodecRoundTrip(t *testing.T) {
	k := testKey(t, "k1")
	c := testCodec(t, "k1", k)
	plain := payloads(t, marker, nil, map[string]string{"note": marker}, []byte(marker))
	enc, err := c.Encode(plain)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) != len(plain) {
		t.Fatalf("encode returned %d payloads for %d", len(enc), len(plain))
	}
	for i, p := range enc {
		if got := string(p.Metadata[converter.MetadataEncoding]); got != EncodingEncrypted {
			t.Errorf("payload %d: encoding %q, want %q", i, got, EncodingEncrypted)
		}
		if got := string(p.Metadata[MetadataKeyID]); got != "k1" {
			t.Errorf("payload %d: key ID %q, want k1", i, got)
		}
		if len(p.Metadata) != 2 {
			t.Errorf("payload %d: metadata %v: the original metadata must be inside the ciphertext", i, p.Metadata)
		}
		raw, _ := proto.Marshal(p)
		if bytes.Contains(raw, []byte(marker)) || bytes.Contains(raw, []byte("json/plain")) {
			t.Errorf("payload %d: plaintext visible in the encoded payload", i)
		}
	}
	dec, err := c.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range plain {
		if !proto.Equal(dec[i], plain[i]) {
			t.Errorf("payload %d: decoded %v, want %v", i, dec[i], plain[i])
		}
	}
	// Encode must not change its input: the SDK may still hold it.
	if string(plain[0].Metadata[converter.MetadataEncoding]) != "json/plain" {
		t.Error("Encode modified its input")
	}
}

func TestCodecNonceIsRandomPerPayload(t *testing.T) {
	c := testCodec(t, "k1", testKey(t, "k1"))
	p := payloads(t, marker)
	a, _ := c.Encode(p)
	b, _ := c.Encode(p)
	if bytes.Equal(a[0].Data, b[0].Data) {
		t.Fatal("the same payload encrypted twice gave the same ciphertext: the nonce is not fresh")
	}
	if len(a[0].Data) < 12+16 {
		t.Fatalf("ciphertext of %d bytes has no room for a 12-byte nonce and a 16-byte tag", len(a[0].Data))
	}
}

// A rotated keyring (new key active, old key kept) reads what the old one
// wrote; a keyring without the old key fails naming the key, never its bytes.
func TestCodecKeyRotation(t *testing.T) {
	oldKey, newKey := testKey(t, "2025-old"), testKey(t, "2026-new")
	before := testCodec(t, "2025-old", oldKey)
	after := testCodec(t, "2026-new", newKey, oldKey)
	written, err := before.Encode(payloads(t, marker))
	if err != nil {
		t.Fatal(err)
	}
	got, err := after.Decode(written)
	if err != nil {
		t.Fatalf("the rotated keyring cannot read payloads of the old key: %v", err)
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(got[0], &s); err != nil || s != marker {
		t.Fatalf("decoded %q, %v", s, err)
	}
	fresh, _ := after.Encode(payloads(t, marker))
	if id := string(fresh[0].Metadata[MetadataKeyID]); id != "2026-new" {
		t.Errorf("the rotated keyring encrypts with %q, want the new active key", id)
	}

	dropped := testCodec(t, "2026-new", newKey)
	_, err = dropped.Decode(written)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"2025-old"`) {
		t.Fatalf("want ErrUnknownKey naming 2025-old, got %v", err)
	}
	for _, k := range []Key{oldKey, newKey} {
		if strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(k.Secret)) {
			t.Fatal("the error shows key material")
		}
	}
}

func TestCodecPassesPlainPayloadsThrough(t *testing.T) {
	c := testCodec(t, "k1", testKey(t, "k1"))
	plain := payloads(t, marker)
	got, err := c.Decode(append(plain, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got[0], plain[0]) || got[1] != nil {
		t.Fatalf("a payload written before the codec was enabled changed: %v", got)
	}
}

func TestCodecRefusesAlteredPayloads(t *testing.T) {
	k1, k2 := testKey(t, "k1"), testKey(t, "k2")
	c := testCodec(t, "k1", k1, k2)
	enc, _ := c.Encode(payloads(t, marker))

	flipped := proto.Clone(enc[0]).(*commonpb.Payload)
	flipped.Data[len(flipped.Data)-1] ^= 1
	relabelled := proto.Clone(enc[0]).(*commonpb.Payload)
	relabelled.Metadata[MetadataKeyID] = []byte("k2")
	unlabelled := proto.Clone(enc[0]).(*commonpb.Payload)
	delete(unlabelled.Metadata, MetadataKeyID)
	for name, p := range map[string]*commonpb.Payload{"flipped bit": flipped, "other key ID": relabelled, "no key ID": unlabelled} {
		if _, err := c.Decode([]*commonpb.Payload{p}); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

// With the failure converter of clients.Dial, an error's message and stack
// trace are encrypted too, and come back intact.
func TestCodecEncryptsFailureMessages(t *testing.T) {
	c := testCodec(t, "k1", testKey(t, "k1"))
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
	fc := temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: dc, EncodeCommonAttributes: true})
	f := fc.ErrorToFailure(temporal.NewApplicationError("refused: "+marker, "Probe", marker))
	raw, _ := proto.Marshal(f)
	if bytes.Contains(raw, []byte(marker)) {
		t.Fatalf("the failure carries the message in clear: %v", f)
	}
	err := fc.FailureToError(f)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Message() != "refused: "+marker {
		t.Fatalf("decoded failure: %v", err)
	}
	var detail string
	if err := app.Details(&detail); err != nil || detail != marker {
		t.Fatalf("details: %q, %v", detail, err)
	}
}

func TestCodecNewRefusesBadKeys(t *testing.T) {
	k := testKey(t, "k1")
	for _, tc := range []struct {
		name   string
		active string
		keys   []Key
		want   string
	}{
		{"none", "k1", nil, "no keys"},
		{"short", "k1", []Key{{ID: "k1", Secret: make([]byte, 16)}}, "has 16 bytes, want 32"},
		{"bad ID", "k 1", []Key{{ID: "k 1", Secret: k.Secret}}, "use 1 to 64 letters"},
		{"twice", "k1", []Key{k, k}, "given twice"},
		{"active missing", "k2", []Key{k}, `the active key "k2" is not in the keyring (keys: k1)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.active, tc.keys...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}
}

func TestCodecGenerateKey(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Secret) != KeySize || !keyIDPattern.MatchString(k.ID) {
		t.Fatalf("key %s: %d bytes", k.ID, len(k.Secret))
	}
	c, err := Parse("test", k.Line()+"\n")
	if err != nil || c.ActiveKeyID() != k.ID {
		t.Fatalf("a generated line does not parse: %v", err)
	}
	b64 := base64.StdEncoding.EncodeToString(k.Secret)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k)} {
		if strings.Contains(s, b64) || !strings.Contains(s, k.ID) {
			t.Fatalf("printing a key shows its bytes or hides its ID: %s", s)
		}
	}
	if k2, _ := GenerateKey(); bytes.Equal(k2.Secret, k.Secret) || k2.ID == k.ID {
		t.Fatal("two generated keys are alike")
	}
}

func TestCodecParse(t *testing.T) {
	k1, k2 := testKey(t, "k1"), testKey(t, "k2")
	good := "# rotator codec keys\n\n" + k1.Line() + "\n  " + k2.Line() + "  \n"
	c, err := Parse("test", good)
	if err != nil {
		t.Fatal(err)
	}
	if c.ActiveKeyID() != "k1" || strings.Join(c.KeyIDs(), ",") != "k1,k2" {
		t.Fatalf("active %s, keys %v: the first line must be active", c.ActiveKeyID(), c.KeyIDs())
	}
	c, err = Parse("test", k1.Line()+"\n"+k2.Line()+" active\n")
	if err != nil || c.ActiveKeyID() != "k2" {
		t.Fatalf("the marked line must be active: %v", err)
	}

	b1 := base64.StdEncoding.EncodeToString(k1.Secret)
	short := base64.StdEncoding.EncodeToString(k1.Secret[:24])
	for _, tc := range []struct {
		name, text, want string
	}{
		{"empty", "# nothing\n\n", "test: no keys"},
		{"no equals", strings.TrimRight(b1, "=") + "\n", "test line 1: want id=base64key: the line has no '='"},
		{"not base64", "k1=" + b1[:40] + "!!!!\n", "test line 1: the key must be 32 random bytes in standard base64"},
		{"too short", "# c\nk1=" + short + "\n", "test line 2: the key must be 32 random bytes"},
		{"key then equals", b1 + "=k1\n", "test line 1: the key must be 32"},
		{"bad ID", "-k=" + b1 + "\n", "test line 1: the key ID must be"},
		{"duplicate", "k1=" + b1 + "\nk1=" + base64.StdEncoding.EncodeToString(k2.Secret) + "\n", `test line 2: key ID "k1" is also on line 1`},
		{"two active", k1.Line() + " active\n" + k2.Line() + " active\n", `test line 2: a second key is marked "active" (line 1 is too)`},
		{"extra word", k1.Line() + " primary\n", "test line 1: want id=base64key, optionally followed by the word"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test", tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
			for _, secret := range []string{b1, b1[:40], short, base64.StdEncoding.EncodeToString(k2.Secret)} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the error shows key material: %v", err)
				}
			}
		})
	}
}

func TestCodecLoad(t *testing.T) {
	k := testKey(t, "k1")
	t.Run("nothing configured", func(t *testing.T) {
		t.Setenv(EnvKeysFile, "")
		t.Setenv(EnvKeys, "")
		c, err := Load()
		if c != nil || err != nil || Enabled() {
			t.Fatalf("want no codec and no error, got %v, %v", c, err)
		}
	})
	t.Run("inline", func(t *testing.T) {
		t.Setenv(EnvKeysFile, "")
		t.Setenv(EnvKeys, k.Line())
		c, err := Load()
		if err != nil || c == nil || c.ActiveKeyID() != "k1" || !Enabled() {
			t.Fatalf("got %v, %v", c, err)
		}
	})
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keys")
		if err := os.WriteFile(path, []byte(k.Line()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv(EnvKeysFile, path)
		t.Setenv(EnvKeys, "")
		c, err := Load()
		if err != nil || c == nil || c.ActiveKeyID() != "k1" {
			t.Fatalf("got %v, %v", c, err)
		}
	})
	for _, tc := range []struct {
		name, file, inline, want string
	}{
		{"both", "/nonexistent", k.Line(), "ROTATOR_CODEC_KEYS_FILE and ROTATOR_CODEC_KEYS are both set"},
		{"missing file", "/nonexistent/keys", "", "ROTATOR_CODEC_KEYS_FILE: open /nonexistent/keys"},
		{"bad inline", "", "k1=nope", "ROTATOR_CODEC_KEYS line 1: the key must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvKeysFile, tc.file)
			t.Setenv(EnvKeys, tc.inline)
			if _, err := Load(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}
}

// A codec made by RefusingPlain decodes what its keys encrypted and fails,
// naming ROTATOR_CODEC_REQUIRED and the fix, on every payload that is not
// encrypted, through the data converter as the SDK calls it; the codec it
// came from still passes plain payloads through.
func TestCodecRefusingPlain(t *testing.T) {
	lenient := testCodec(t, "k1", testKey(t, "k1"))
	strict := lenient.RefusingPlain()
	if lenient.RefusesPlain() || !strict.RefusesPlain() {
		t.Fatalf("RefusesPlain: lenient %v, strict %v", lenient.RefusesPlain(), strict.RefusesPlain())
	}
	enc, err := strict.Encode(payloads(t, marker, nil))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := strict.Decode(append(enc, nil))
	if err != nil {
		t.Fatalf("the strict codec refuses what it encrypted: %v", err)
	}
	var got string
	if err := converter.GetDefaultDataConverter().FromPayload(dec[0], &got); err != nil || got != marker || dec[2] != nil {
		t.Fatalf("decoded %q, %v, %v", got, err, dec[2])
	}

	for name, p := range map[string]*commonpb.Payload{
		"json":        payloads(t, marker)[0],
		"binary/null": payloads(t, nil)[0],
		"no metadata": {Data: []byte(marker)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := strict.Decode([]*commonpb.Payload{enc[0], p})
			if !errors.Is(err, ErrPlainPayload) {
				t.Fatalf("want ErrPlainPayload, got %v", err)
			}
			for _, want := range []string{EnvRequired, EnvKeysFile, "not encrypted"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not name %s: %v", want, err)
				}
			}
			if strings.Contains(err.Error(), marker) {
				t.Errorf("the error shows the payload's data: %v", err)
			}
			if _, err := lenient.Decode([]*commonpb.Payload{p}); err != nil {
				t.Errorf("RefusingPlain changed the codec it was made from: %v", err)
			}
		})
	}

	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), strict)
	var v string
	if err := dc.FromPayloads(&commonpb.Payloads{Payloads: payloads(t, marker)}, &v); !errors.Is(err, ErrPlainPayload) {
		t.Fatalf("a plain workflow input through the data converter: want ErrPlainPayload, got %v (decoded %q)", err, v)
	}
}

func TestCodecRequired(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  bool
		err   string
	}{
		{"", false, ""},
		{"true", true, ""},
		{" 1 ", true, ""},
		{"false", false, ""},
		{"yes", false, `ROTATOR_CODEC_REQUIRED="yes": want true or false`},
	} {
		t.Run(tc.value, func(t *testing.T) {
			t.Setenv(EnvRequired, tc.value)
			got, err := Required()
			switch {
			case tc.err != "" && (err == nil || err.Error() != tc.err):
				t.Fatalf("want error %q, got %v, %v", tc.err, got, err)
			case tc.err == "" && (err != nil || got != tc.want):
				t.Fatalf("want %v, got %v, %v", tc.want, got, err)
			}
		})
	}
}
