package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"rotator/codec"
)

func (a *app) codecCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "codec",
		Short: "Payload encryption keys (see docs/encryption.md)",
	}
	var id, outFile string
	keygen := &cobra.Command{
		Use:   "keygen",
		Short: "Print a new codec key as an id=base64 line, for the keyring file",
		Long: "keygen prints a new random AES-256 key as one id=base64key line on stdout, and\n" +
			"nothing else there, so it can go straight into the keyring file or Secret:\n" +
			"  starter codec keygen --out keys    (or put the line first in an existing keyring)\n" +
			"--out writes a new file only the owner can read (mode 0600), which a shell's\n" +
			"redirection would leave readable by every user of the machine.\n" +
			"The first line of the keyring is the active key; keep older lines so that\n" +
			"payloads encrypted with them still decode.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := codec.GenerateKey()
			if err != nil {
				return err
			}
			if id != "" {
				k.ID = id
			}
			// Checked by parsing, so a bad --id fails here and not when a
			// worker starts with the keyring.
			if _, err := codec.Parse("--id", k.Line()); err != nil {
				return fmt.Errorf("--id %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
			}
			if outFile == "" {
				_, err = fmt.Fprintln(a.out, k.Line())
				return err
			}
			return writeNewSecretFile("--out", outFile, k.Line()+"\n")
		},
	}
	keygen.Flags().StringVar(&id, "id", "", "key ID (default: today's date and a random suffix)")
	keygen.Flags().StringVar(&outFile, "out", "", "write the line to this new file, mode 0600, instead of stdout")
	cmd.AddCommand(keygen)
	return cmd
}

// writeNewSecretFile creates path with mode 0600 and writes content to it.
// It never replaces a file: an existing keyring holds the keys that old
// payloads need.
func writeNewSecretFile(flag, path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s %s: the file exists, and replacing a keyring loses the keys its payloads need: add the line to it by hand (print it without --out), or name a new file", flag, path)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	if _, err := io.WriteString(f, content); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("%s: write %s: %w", flag, path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("%s: write %s: %w", flag, path, err)
	}
	return nil
}

func (a *app) codecServerCmd() *cobra.Command {
	var listen, uiOrigin, tlsCert, tlsKey string
	cmd := &cobra.Command{
		Use:   "codec-server",
		Short: "Serve the codec server protocol so the Web UI and CLI can show encrypted payloads",
		Long: "codec-server decrypts payloads for the Temporal Web UI and CLI with the keyring from\n" +
			codec.EnvKeysFile + ", for callers that send Authorization: Bearer <token> with a token\n" +
			"from " + codec.EnvServerTokenFile + " (or " + codec.EnvServerToken + "), or that signed in at\n" +
			"/login. Point the UI's codec server setting at http://<listen>, the CLI at\n" +
			"--codec-endpoint 'http://<listen>/{namespace}' --codec-auth 'Bearer <token>'.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (tlsCert == "") != (tlsKey == "") {
				return errors.New("--tls-cert and --tls-key: give both or neither")
			}
			ring, err := codec.Load()
			if err != nil {
				return err
			}
			if ring == nil {
				return fmt.Errorf("payload encryption is not configured: set %s to the keyring the workers use", codec.EnvKeysFile)
			}
			tokens, err := codec.LoadTokens()
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(a.errOut, nil))
			h, err := codec.NewServer(ring, codec.ServerOptions{UIOrigin: uiOrigin, Tokens: tokens, Log: log})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			scheme := "http"
			if tlsCert != "" {
				scheme = "https"
			} else if host, _, _ := net.SplitHostPort(listen); !isLoopback(host) {
				log.Warn("serving plain HTTP beyond loopback: tokens and decrypted payloads cross the network in clear; use --tls-cert/--tls-key or a TLS-terminating proxy")
			}
			srv := &http.Server{
				Handler:           h,
				ReadHeaderTimeout: 10 * time.Second,
				ReadTimeout:       time.Minute,
				WriteTimeout:      time.Minute,
				IdleTimeout:       2 * time.Minute,
			}
			log.Info("codec server listening", "url", scheme+"://"+ln.Addr().String(), "ui_origin", uiOrigin,
				"active_key", ring.ActiveKeyID(), "keys", ring.KeyIDs(), "tokens", len(tokens))
			done := make(chan error, 1)
			go func() {
				if tlsCert != "" {
					done <- srv.ServeTLS(ln, tlsCert, tlsKey)
				} else {
					done <- srv.Serve(ln)
				}
			}()
			select {
			case err := <-done:
				return fmt.Errorf("codec server: %w", err)
			case <-cmd.Context().Done():
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				return fmt.Errorf("codec server shutdown: %w", err)
			}
			log.Info("codec server stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8234", "address to listen on")
	f.StringVar(&uiOrigin, "ui-origin", envOr("TEMPORAL_UI", "http://127.0.0.1:8233"),
		"the Web UI's origin, allowed by CORS (env TEMPORAL_UI); empty: no browser")
	f.StringVar(&tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM); the UI passes access tokens only to https endpoints")
	f.StringVar(&tlsKey, "tls-key", "", "private key (PEM) for --tls-cert")
	return cmd
}

// isLoopback says whether a listen host stays on this machine; an empty
// host listens on every interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
