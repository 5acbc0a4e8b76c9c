package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"rotator/activities"
)

// A fingerprint key file that is set but unusable stops the worker before
// it connects to anything, naming the variable and never the content.
func TestWorkerRefusesAnUnusableFingerprintKey(t *testing.T) {
	short := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(short, []byte("tooshort-s3cr3t"), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		short:                                activities.EnvFingerprintKeyFile + " (" + short + "): the fingerprint key has 15 bytes: use at least 32 random bytes",
		filepath.Join(t.TempDir(), "absent"): activities.EnvFingerprintKeyFile + ": open",
	} {
		t.Setenv(activities.EnvFingerprintKeyFile, path)
		// No cluster: a worker that got past the key would fail here.
		t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
		var logs bytes.Buffer
		err := run(slog.New(slog.NewJSONHandler(&logs, nil)), []string{"--catalog", "../rotator.yaml", "--http-address", "127.0.0.1:0"})
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error()+logs.String(), "s3cr3t") {
			t.Errorf("%s: run = %v, want an error containing %q and not the key", path, err, want)
		}
	}
}
