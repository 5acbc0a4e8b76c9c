package clients

import (
	"errors"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"rotator/codec"
)

// noopCodec is a payload codec that is not rotator's.
type noopCodec struct{}

func (noopCodec) Encode(p []*commonpb.Payload) ([]*commonpb.Payload, error) { return p, nil }
func (noopCodec) Decode(p []*commonpb.Payload) ([]*commonpb.Payload, error) { return p, nil }

func setCodecEnv(t *testing.T, keys, required string) {
	t.Helper()
	t.Setenv(codec.EnvKeysFile, "")
	t.Setenv(codec.EnvKeys, keys)
	t.Setenv(codec.EnvRequired, required)
}

// TestDialCodecRequired: with ROTATOR_CODEC_REQUIRED=true, Dial refuses to
// start without a keyring, before it connects (the address below has no
// server), and the codec it uses refuses unencrypted payloads; without it
// plain payloads still pass.
func TestDialCodecRequired(t *testing.T) {
	clearTemporalEnv(t)
	key, err := codec.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	plain, err := converter.GetDefaultDataConverter().ToPayloads("x")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := Temporal{Address: "127.0.0.1:1"}

	t.Run("no keyring", func(t *testing.T) {
		setCodecEnv(t, "", "true")
		_, err := unreachable.Dial(discard())
		if err == nil || !strings.Contains(err.Error(), "ROTATOR_CODEC_REQUIRED=true, but no keyring") || !strings.Contains(err.Error(), codec.EnvKeysFile) {
			t.Fatalf("want the missing keyring named with the fix, got %v", err)
		}
	})
	t.Run("bad value", func(t *testing.T) {
		setCodecEnv(t, key.Line(), "on")
		if _, err := unreachable.Dial(discard()); err == nil || !strings.Contains(err.Error(), codec.EnvRequired) {
			t.Fatalf("want %s named, got %v", codec.EnvRequired, err)
		}
	})
	t.Run("foreign codec", func(t *testing.T) {
		setCodecEnv(t, "", "true")
		tc := unreachable
		tc.Codec = noopCodec{}
		if _, err := tc.payloadCodec(discard()); err == nil || !strings.Contains(err.Error(), "needs rotator's codec") {
			t.Fatalf("got %v", err)
		}
	})
	for _, tc := range []struct {
		name, required string
		given          bool
		refuses        bool
	}{
		{"from the environment, required", "true", false, true},
		{"given, required", "true", true, true},
		{"from the environment, not required", "", false, false},
		{"from the environment, required=false", "false", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setCodecEnv(t, key.Line(), tc.required)
			tt := unreachable
			if tc.given {
				ring, err := codec.New(key.ID, key)
				if err != nil {
					t.Fatal(err)
				}
				tt.Codec = ring
			}
			pc, err := tt.payloadCodec(discard())
			if err != nil {
				t.Fatal(err)
			}
			_, err = pc.Decode(plain.Payloads)
			if got := errors.Is(err, codec.ErrPlainPayload); got != tc.refuses {
				t.Fatalf("a plain payload: refused %v, want %v (err %v)", got, tc.refuses, err)
			}
			enc, err := pc.Encode(plain.Payloads)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pc.Decode(enc); err != nil {
				t.Fatalf("an encrypted payload: %v", err)
			}
		})
	}
}
