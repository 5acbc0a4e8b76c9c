package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"rotator/activities"
	"rotator/catalog"
)

var keys *activities.APIKeys

// RotateAPIKeys rotates the LLM provider API keys of one Secret the way the
// runbook's "Rotate LLM Provider API Keys" does, with the checks it lacks:
// the engineer stages the keys obtained from the consoles outside Temporal
// and signals keys-staged; each key is tried against its provider before
// anything changes; the consumers move to a new immutable Secret; the
// catalog's probe checks the application; after grace the old keys are
// revoked through the providers' admin APIs, or an engineer approves that
// they were revoked in the consoles.
func RotateAPIKeys(ctx workflow.Context, in RotateInput) (Status, error) {
	return run(ctx, in, apiKeysSteps())
}

// apiKeysSteps are the kind's hooks into the skeleton.
func apiKeysSteps() kindSteps {
	return kindSteps{
		kind: catalog.KindAPIKeys,
		preflight: func(ctx workflow.Context, r *rotation) error {
			if err := workflow.ExecuteActivity(short(ctx), keys.PreflightKeys, r.plan).Get(ctx, &r.plan); err != nil {
				return err
			}
			if manual := r.plan.APIKeys.NeedsApproval(); len(manual) > 0 {
				r.approvalRequired = fmt.Sprintf(
					"revoke the old %s key%s (fingerprint %s, Secret %s) in the provider console%s, then: starter approve %s --reason 'old keys revoked'",
					strings.Join(manual, " and "), plural(len(manual)), r.plan.Current.Fingerprint, r.plan.Current.Name, plural(len(manual)), r.in.Target)
			}
			return nil
		},
		obtain: awaitKeys,
		verify: func(ctx workflow.Context, r *rotation) error {
			if !r.plan.APIKeys.Probe {
				return nil
			}
			return workflow.ExecuteActivity(login(ctx), keys.Probe, r.plan).Get(ctx, nil)
		},
		revoke: func(ctx workflow.Context, r *rotation) error {
			var res activities.RevokeResult
			if err := workflow.ExecuteActivity(provider(ctx), keys.RevokeOldKeys, r.plan).Get(ctx, &res); err != nil {
				return err
			}
			r.st.Revoked = res.Revoked
			return nil
		},
		cleanup: func(ctx workflow.Context, r *rotation) error {
			if r.plan.APIKeys == nil {
				return nil
			}
			return workflow.ExecuteActivity(short(ctx), keys.DiscardStagedKeys, r.plan).Get(ctx, nil)
		},
	}
}

// awaitKeys waits for keys-staged and has the providers check the keys. A
// refused key is reported in status and to the sender of the Update, and
// the rotation waits for better keys: nothing has changed yet.
func awaitKeys(ctx workflow.Context, r *rotation) error {
	deadline := workflow.Now(ctx).Add(r.plan.APIKeys.StageTimeout)
	where := "Secret " + r.plan.Namespace + "/" + r.plan.APIKeys.StagingSecret
	if r.plan.Vault != nil {
		where = "Vault " + r.plan.Vault.Mount + "/" + r.plan.Vault.Path + "/staged"
	}
	for told := false; ; told = true {
		r.st.Reminder = fmt.Sprintf("obtain new keys in the provider consoles, then: starter stage-keys %s < keys.env (keys go to %s), before %s",
			r.in.Target, where, deadline.Format(time.RFC3339))
		if !told {
			r.notify(ctx, catalog.EventAwaitingKeys, r.st.Reminder, deadline)
		}
		ok, err := workflow.AwaitWithTimeout(ctx, deadline.Sub(workflow.Now(ctx)), func() bool {
			return r.keysRequested > r.keysChecked || r.st.Aborted != nil
		})
		if err != nil {
			return err
		}
		if r.st.Aborted != nil {
			return errAborted
		}
		if !ok {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"no keys were staged within %s: nothing was changed; start a new rotation when the keys are ready", r.plan.APIKeys.StageTimeout),
				activities.ErrNotStaged, nil)
		}
		n := r.keysRequested
		var staged activities.StagedKeys
		err = workflow.ExecuteActivity(provider(ctx), keys.VerifyStagedKeys, r.plan).Get(ctx, &staged)
		r.keysChecked = n
		if err == nil {
			r.st.KeysError, r.st.Reminder = "", ""
			r.st.StagedKeys = staged.Fingerprints
			return nil
		}
		// Refused or missing keys are the engineer's to fix: the rotation
		// waits for the next keys-staged instead of ending.
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || !slices.Contains(keysRefusals, app.Type()) {
			return err
		}
		r.st.KeysError = app.Message()
		workflow.GetLogger(ctx).Warn("staged keys refused; waiting for new ones", "target", r.in.Target, "reason", app.Message())
	}
}

// keysRefusals are the verdicts on staged keys that leave the rotation
// waiting for new ones.
var keysRefusals = []string{activities.ErrKeyRejected, activities.ErrNotStaged, activities.ErrBadInput}

// provider calls a provider API: rate limits (429) and outages (5xx) are
// retried with backoff for up to half an hour.
func provider(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    2 * time.Minute,
		ScheduleToCloseTimeout: 30 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    2 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	})
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
