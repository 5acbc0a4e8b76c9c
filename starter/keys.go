package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"

	"rotator/activities"
	"rotator/catalog"
	"rotator/clients"
	"rotator/workflows"
)

// stagingTTL is how long a staging Secret is meant to live: the rotation
// deletes it as soon as it has copied the keys.
const stagingTTL = time.Hour

func (a *app) stageKeysCmd() *cobra.Command {
	var by string
	cmd := &cobra.Command{
		Use:   "stage-keys TARGET < keys.env",
		Short: "Stage new API keys for a rotation waiting for them, from stdin",
		Long: "stage-keys reads the new keys from stdin, one per line as KEY=value (the Secret's\n" +
			"data keys, e.g. openai-api-key=sk-...), never from flags or arguments, so they stay\n" +
			"out of shell history and process lists. It writes them to the target's Vault path\n" +
			"<path>/staged, or without Vault to a short-lived Secret <secret>-staged, then sends\n" +
			"keys-staged to the rotation and prints the providers' verdict. A refused key\n" +
			"changes nothing: stage a corrected set again.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if by == "" {
				return errors.New("--by: is required: say who stages the keys (defaults to $USER)")
			}
			cat, t, err := a.target(args[0])
			if err != nil {
				return err
			}
			if t.Kind != catalog.KindAPIKeys {
				return fmt.Errorf("target %s is of kind %s: stage-keys is for apikeys targets", t.Name, t.Kind)
			}
			keys, err := readKeys(cmd.InOrStdin())
			if err != nil {
				return err
			}
			if err := activities.CheckKeys(t, keys); err != nil {
				return err
			}
			// The rotation must be waiting before anything is written, so
			// that a mistake leaves no keys lying around.
			c, err := a.dial()
			if err != nil {
				return err
			}
			id := workflows.WorkflowID(t.Name)
			st, err := a.status(cmd.Context(), c, t.Name)
			if err != nil {
				return err
			}
			if st.Step != workflows.StepAwaitKeys {
				return fmt.Errorf("the rotation of %s is in step %s, not %s: nothing was staged (start one with 'starter rotate %s')",
					t.Name, st.Step, workflows.StepAwaitKeys, t.Name)
			}
			kube, err := clients.Kube(5, 10)
			if err != nil {
				return err
			}
			staging := activities.Staging{Kube: kube}
			if t.Vault != nil {
				v, stop, err := clients.Vault(cmd.Context(), cat.Vault, nil)
				if err != nil {
					return err
				}
				defer stop()
				staging.Vault = v
			}
			where, err := staging.Write(cmd.Context(), t, keys, stagingTTL)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "staged %d keys for %s in %s\n", len(keys), t.Name, where)
			_, err = a.update(cmd.Context(), c, t.Name, workflows.UpdateKeysStaged, workflows.Decision{By: by}, defaultDecisionTimeout)
			var nf *serviceerror.NotFound
			if errors.As(err, &nf) {
				return fmt.Errorf("the rotation of %s ended meanwhile; the keys stay staged in %s for the next one", t.Name, where)
			}
			if err != nil {
				return a.explain(t.Name, "keys-staged", err)
			}
			fmt.Fprintf(a.out, "%s: the providers accepted the keys; the rotation goes on (starter status %s)\n", id, t.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&by, "by", envOr("USER", ""), "who stages the keys (recorded in the rotation)")
	return cmd
}

// readKeys parses KEY=value lines; blank lines and # comments are skipped.
// Errors name the line, never its value.
func readKeys(r io.Reader) (map[string][]byte, error) {
	keys := map[string][]byte{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 64*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok || k == "":
			return nil, fmt.Errorf("stdin line %d: want KEY=value, e.g. openai-api-key=<new key>", n)
		case keys[k] != nil:
			return nil, fmt.Errorf("stdin line %d: %s is given twice", n, k)
		}
		keys[k] = []byte(strings.Trim(v, `"'`))
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return nil, fmt.Errorf("stdin line %d: longer than 64 KiB: an API key is a few hundred characters at most; check what is piped in", n+1)
	} else if err != nil {
		return nil, fmt.Errorf("read stdin: %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("stdin: no keys: pipe lines KEY=value, e.g. printf 'openai-api-key=%s\\n' \"$NEW_KEY\" | starter stage-keys TARGET")
	}
	return keys, nil
}
