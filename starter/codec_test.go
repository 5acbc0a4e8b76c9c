package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"rotator/codec"
)

// keygen prints exactly one keyring line on stdout, which parses back.
func TestCodecKeygen(t *testing.T) {
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut)
	root.SetArgs([]string{"codec", "keygen", "--id", "2026-q3"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSuffix(out.String(), "\n")
	if strings.Contains(line, "\n") || !strings.HasPrefix(line, "2026-q3=") || errOut.Len() != 0 {
		t.Fatalf("stdout %q, stderr %q: want one id=base64 line on stdout only", out.String(), errOut.String())
	}
	c, err := codec.Parse("stdout", line)
	if err != nil || c.ActiveKeyID() != "2026-q3" {
		t.Fatalf("the printed line does not parse: %v", err)
	}

	root = newRoot(&out, &errOut)
	root.SetArgs([]string{"codec", "keygen", "--id", "no spaces"})
	if err := root.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), `--id "no spaces"`) {
		t.Fatalf("a bad --id: %v", err)
	}
}

func TestCodecServerCommandRefusesWithoutConfig(t *testing.T) {
	k, _ := codec.GenerateKey()
	for _, tc := range []struct{ keys, token, want string }{
		{"", "", "payload encryption is not configured: set ROTATOR_CODEC_KEYS_FILE"},
		{k.Line(), "", "set ROTATOR_CODEC_SERVER_TOKEN_FILE"},
		{k.Line(), "short", "a token must be at least 16 characters"},
	} {
		t.Setenv(codec.EnvKeysFile, "")
		t.Setenv(codec.EnvKeys, tc.keys)
		t.Setenv(codec.EnvServerTokenFile, "")
		t.Setenv(codec.EnvServerToken, tc.token)
		var out, errOut bytes.Buffer
		root := newRoot(&out, &errOut)
		root.SetArgs([]string{"codec-server", "--listen", "127.0.0.1:0"})
		if err := root.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want %q, got %v", tc.want, err)
		}
	}
}

// syncBuffer is written by the server's goroutine and read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// codec-server serves decode with the environment's keyring and token,
// and stops cleanly when its context ends (SIGINT in main).
func TestCodecServerCommandServes(t *testing.T) {
	const token = "starter-test-token-0123456789"
	k, _ := codec.GenerateKey()
	t.Setenv(codec.EnvKeysFile, "")
	t.Setenv(codec.EnvKeys, k.Line())
	t.Setenv(codec.EnvServerTokenFile, "")
	t.Setenv(codec.EnvServerToken, token)
	ring, err := codec.Load()
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := converter.GetDefaultDataConverter().ToPayloads("codec-server-marker")
	enc, _ := ring.Encode(plain.Payloads)

	var out bytes.Buffer
	logs := &syncBuffer{}
	root := newRoot(&out, logs)
	root.SetArgs([]string{"codec-server", "--listen", "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	url := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+)`)
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := url.FindStringSubmatch(logs.String()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("the server did not report its address:\n%s", logs.String())
	}
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: enc})
	req, _ := http.NewRequest(http.MethodPost, base+"/default/decode", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(got), "payloads") {
		t.Fatalf("decode: %d %s", resp.StatusCode, got)
	}
	var dec commonpb.Payloads
	var s string
	if err := protojson.Unmarshal(got, &dec); err != nil || converter.GetDefaultDataConverter().FromPayloads(&dec, &s) != nil || s != "codec-server-marker" {
		t.Fatalf("decoded %q, %v", s, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("codec-server did not stop cleanly: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("codec-server did not stop")
	}
	if strings.Contains(logs.String()+out.String(), token) || strings.Contains(logs.String(), k.Line()) {
		t.Fatal("the server logged its token or key")
	}
}

// keygen --out writes the line to a new file of mode 0600, prints nothing,
// and never replaces an existing keyring.
func TestCodecKeygenOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "codec-keys")
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut)
	root.SetArgs([]string{"codec", "keygen", "--id", "k1", "--out", path})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("with --out, stdout is %q; want nothing", out.String())
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, st.Mode().Perm())
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := codec.Parse(path, string(first)); err != nil || c.ActiveKeyID() != "k1" {
		t.Fatalf("the file does not parse as a keyring: %v", err)
	}

	root = newRoot(&out, &errOut)
	root.SetArgs([]string{"codec", "keygen", "--id", "k2", "--out", path})
	if err := root.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "the file exists") {
		t.Fatalf("keygen --out over an existing keyring: %v", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, first) {
		t.Error("keygen --out changed an existing keyring")
	}
}
