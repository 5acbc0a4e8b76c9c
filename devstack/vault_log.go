package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"
)

// vaultLogSecrets are the lines in which Vault's dev mode prints credentials.
var vaultLogSecrets = []string{"Root Token: ", "Unseal Key: ", "Recovery Key: "}

// redactVaultLog overwrites, in place and with as many '*', the values Vault
// printed after vaultLogSecrets: the root token must be only in its 0600
// file, not in a log that gets copied into bug reports. Vault appends to
// the file (O_APPEND), so same-length writes behind its offset are safe.
// Vault prints the banner once the log has been quiet for 100 ms, i.e. just
// after seeding; so if the last start has no "Root Token:" line yet, this
// waits for it up to wait.
func redactVaultLog(ctx context.Context, path string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("vault: %w", err)
		}
		spans := vaultSecretSpans(data)
		if err := blankSpans(path, spans); err != nil {
			return fmt.Errorf("vault: redacting %s: %w", path, err)
		}
		// The banner of the latest start is the last "Root Token:" line
		// after the last line devstack wrote when starting Vault.
		last := bytes.LastIndex(data, []byte("\n==== "))
		if bytes.Contains(data[max(last, 0):], []byte("\nRoot Token: ")) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vault: no root token banner in %s after %s; it may hold the token in clear (mode 0600)", path, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// span is a byte range [start, end) of a file.
type span struct{ start, end int }

// vaultSecretSpans returns the not yet blanked values of vaultLogSecrets
// lines in data.
func vaultSecretSpans(data []byte) []span {
	var spans []span
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		if end < 0 {
			// A partial last line may be a value still being written;
			// the next pass sees it whole.
			break
		}
		line := data[off : off+end]
		for _, prefix := range vaultLogSecrets {
			if value, ok := bytes.CutPrefix(line, []byte(prefix)); ok && len(bytes.Trim(value, "*")) > 0 {
				spans = append(spans, span{off + len(prefix), off + end})
			}
		}
		off += end + 1
	}
	return spans
}

// blankSpans overwrites each span of the file at path with '*'.
func blankSpans(path string, spans []span) error {
	if len(spans) == 0 {
		return nil
	}
	// Not O_APPEND: WriteAt must land where the value is.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	for _, s := range spans {
		if _, err := f.WriteAt(bytes.Repeat([]byte{'*'}, s.end-s.start), int64(s.start)); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
