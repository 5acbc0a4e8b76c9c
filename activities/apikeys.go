package activities

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"rotator/catalog"
	"rotator/providers"
)

// APIKeys holds what the steps of an LLM API key rotation need: the
// cluster (Secrets with the keys and the admin keys), Vault (staged keys),
// and an HTTP client for the providers and the probe. Keys are read inside
// each call and never returned.
type APIKeys struct {
	Kube    kubernetes.Interface
	Catalog *catalog.Catalog
	Vault   *vaultapi.Client
	// HTTP is used for provider APIs and the probe; nil means a client
	// with a 30 s timeout.
	HTTP *http.Client
	// Fingerprints makes the fingerprints of the staged keys.
	Fingerprints Fingerprinter
}

func (a *APIKeys) http() *http.Client {
	if a.HTTP != nil {
		return a.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// plan checks the plan against the catalog (see checkPlan) and returns its
// apikeys target.
func (a *APIKeys) plan(p Plan) (catalog.Target, error) {
	t, err := checkPlan(a.Catalog, p)
	if err != nil {
		return t, err
	}
	if t.APIKeys == nil {
		return t, badInput("target %s is of kind %s, not apikeys", t.Name, t.Kind)
	}
	return t, nil
}

// PreflightKeys checks an apikeys target: the current Secret holds every
// provider's key, and where an admin key is configured, the admin API
// works and knows the current key, whose id retire will revoke.
func (a *APIKeys) PreflightKeys(ctx context.Context, plan Plan) (Plan, error) {
	t, err := a.plan(plan)
	if err != nil {
		return plan, err
	}
	cur, err := a.Kube.CoreV1().Secrets(plan.Namespace).Get(ctx, plan.Current.Name, metav1.GetOptions{})
	if err != nil {
		return plan, classify(fmt.Errorf("read current Secret %s: %w", plan.Current.Name, err))
	}
	if err := checkLabels(t, cur); err != nil {
		return plan, err
	}
	kp := &APIKeysPlan{StageTimeout: t.APIKeys.StageTimeout.Duration, Probe: t.APIKeys.Probe != nil}
	if plan.Vault == nil {
		kp.StagingSecret = StagingSecretName(plan.Base)
	}
	for i, p := range t.APIKeys.Providers {
		key, ok := cur.Data[p.Key]
		if !ok || len(key) == 0 {
			return plan, badInput("target %s: apiKeys.providers[%d].key: Secret %s has no data key %q: fix the key name in rotator.yaml or add it to the Secret",
				t.Name, i, cur.Name, p.Key)
		}
		pp := ProviderPlan{Name: p.Name, Key: p.Key, BaseURL: p.BaseURL, Admin: p.Admin != nil}
		if p.Admin != nil {
			id, err := a.findKeyID(ctx, p, key)
			if err != nil {
				return plan, err
			}
			pp.OldKeyID = id
		}
		kp.Providers = append(kp.Providers, pp)
	}
	if err := a.recordKeyIDs(ctx, cur, kp); err != nil {
		return plan, err
	}
	plan.APIKeys = kp
	activity.GetLogger(ctx).Info("api keys preflight passed", "target", t.Name, "providers", len(kp.Providers),
		"revoke_by_admin_api", len(kp.Providers)-len(kp.NeedsApproval()))
	return plan, nil
}

func (a *APIKeys) client(p catalog.Provider) (*providers.Client, error) {
	c, err := providers.New(p.Name, p.BaseURL, a.http())
	if err != nil {
		return nil, badInput("provider %s: %v", p.Name, err)
	}
	return c, nil
}

// findKeyID asks the provider's admin API which key id the current key is.
func (a *APIKeys) findKeyID(ctx context.Context, p catalog.Provider, key []byte) (string, error) {
	admin, err := a.adminKey(ctx, p)
	if err != nil {
		return "", err
	}
	c, err := a.client(p)
	if err != nil {
		return "", err
	}
	id, err := c.FindKeyID(ctx, admin, string(key))
	if err != nil {
		return "", providerError(err, "check the admin key in Secret "+p.Admin.Secret.Namespace+"/"+p.Admin.Secret.Name+
			" and the project, or remove admin from the provider and revoke old keys in the console")
	}
	return id, nil
}

func (a *APIKeys) adminKey(ctx context.Context, p catalog.Provider) (providers.AdminKey, error) {
	ref := p.Admin.Secret
	s, err := a.Kube.CoreV1().Secrets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return providers.AdminKey{}, badInput("provider %s: admin.secret: Secret %s/%s does not exist: create it with the admin key under %q",
			p.Name, ref.Namespace, ref.Name, p.Admin.Key)
	}
	if err != nil {
		return providers.AdminKey{}, classify(fmt.Errorf("read admin Secret %s/%s: %w", ref.Namespace, ref.Name, err))
	}
	v := bytes.TrimSpace(s.Data[p.Admin.Key])
	if len(v) == 0 {
		return providers.AdminKey{}, badInput("provider %s: admin.key: Secret %s/%s has no data key %q", p.Name, ref.Namespace, ref.Name, p.Admin.Key)
	}
	return providers.AdminKey{Key: string(v), ProjectID: p.Admin.ProjectID}, nil
}

// VerifyStagedKeys checks every staged key against its provider before
// anything changes. A key the provider refuses fails for good, naming the
// provider; rate limits and provider outages are retried.
func (a *APIKeys) VerifyStagedKeys(ctx context.Context, plan Plan) (StagedKeys, error) {
	t, err := a.plan(plan)
	if err != nil {
		return StagedKeys{}, err
	}
	keys, err := Staging{Kube: a.Kube, Vault: a.Vault}.read(ctx, plan, t)
	if err != nil {
		return StagedKeys{}, err
	}
	cur, err := a.Kube.CoreV1().Secrets(plan.Namespace).Get(ctx, plan.Current.Name, metav1.GetOptions{})
	if err != nil {
		return StagedKeys{}, classify(fmt.Errorf("read current Secret %s: %w", plan.Current.Name, err))
	}
	if err := checkLabels(t, cur); err != nil {
		return StagedKeys{}, err
	}
	out := StagedKeys{Fingerprints: map[string]string{}}
	var rejected, retry []error
	for _, p := range t.APIKeys.Providers {
		key := keys[p.Key]
		if subtle.ConstantTimeCompare(key, cur.Data[p.Key]) == 1 {
			rejected = append(rejected, fmt.Errorf("%s: the staged %s is the key in use now: create a new key in the %s console", p.Name, p.Key, p.Name))
			continue
		}
		c, err := a.client(p)
		if err != nil {
			return out, err
		}
		if err := c.VerifyKey(ctx, string(key)); err != nil {
			if providers.IsPermanent(err) {
				rejected = append(rejected, fmt.Errorf("%s refused the staged %s: %w", p.Name, p.Key, err))
			} else {
				retry = append(retry, err)
			}
			continue
		}
		out.Fingerprints[p.Name] = a.Fingerprints.Of(key)
	}
	if len(rejected) > 0 {
		return out, temporal.NewNonRetryableApplicationError(
			errors.Join(rejected...).Error()+"; nothing was changed: stage correct keys with starter stage-keys "+plan.Target,
			ErrKeyRejected, nil)
	}
	if len(retry) > 0 {
		return out, fmt.Errorf("verify staged keys: %w", errors.Join(retry...))
	}
	activity.GetLogger(ctx).Info("staged keys accepted by their providers", "target", plan.Target, "fingerprints", out.Fingerprints)
	return out, nil
}

// Probe runs the catalog's HTTP check once consumers use the new keys: the
// runbook's curl to the application's endpoint.
func (a *APIKeys) Probe(ctx context.Context, plan Plan) error {
	t, err := a.plan(plan)
	if err != nil {
		return err
	}
	pr := t.APIKeys.Probe
	if pr == nil {
		return nil
	}
	var body io.Reader
	if pr.Body != "" {
		body = strings.NewReader(pr.Body)
	}
	req, err := http.NewRequestWithContext(ctx, pr.Method, pr.URL, body)
	if err != nil {
		return badInput("target %s: apiKeys.probe: %v", t.Name, err)
	}
	if pr.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	// A probe URL may carry a token in its user info or query: errors and
	// logs name only scheme, host and path.
	shown := *req.URL
	shown.User, shown.RawQuery, shown.Fragment = nil, "", ""
	where := pr.Method + " " + shown.String()
	resp, err := a.http().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the full URL
		}
		return fmt.Errorf("probe %s: %w", where, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != pr.ExpectStatus {
		return fmt.Errorf("probe %s answered %d, want %d", where, resp.StatusCode, pr.ExpectStatus)
	}
	activity.GetLogger(ctx).Info("probe passed", "target", t.Name, "probe", where, "status", resp.StatusCode)
	return nil
}

// RevokeOldKeys revokes, through each provider's admin API, the key that
// was in use before the rotation (OpenAI deletes the project key,
// Anthropic sets it inactive). Revoking a key already revoked succeeds, so
// a retry is safe.
func (a *APIKeys) RevokeOldKeys(ctx context.Context, plan Plan) (RevokeResult, error) {
	t, err := a.plan(plan)
	if err != nil {
		return RevokeResult{}, err
	}
	if plan.APIKeys == nil {
		return RevokeResult{}, badInput("target %s has no api keys plan: PreflightKeys did not run", plan.Target)
	}
	if err := a.checkKeyIDs(ctx, t, plan); err != nil {
		return RevokeResult{}, err
	}
	var res RevokeResult
	for _, pp := range plan.APIKeys.Providers {
		if !pp.Admin || pp.OldKeyID == "" {
			continue
		}
		var p catalog.Provider
		for _, c := range t.APIKeys.Providers {
			if c.Name == pp.Name {
				p = c
			}
		}
		if p.Admin == nil {
			return res, badInput("target %s: provider %s has no admin key in rotator.yaml any more: revoke key %s in the console", t.Name, pp.Name, pp.OldKeyID)
		}
		admin, err := a.adminKey(ctx, p)
		if err != nil {
			return res, err
		}
		c, err := a.client(p)
		if err != nil {
			return res, err
		}
		if err := c.RevokeKey(ctx, admin, pp.OldKeyID); err != nil {
			return res, providerError(err, "revoke key "+pp.OldKeyID+" in the "+pp.Name+" console")
		}
		activity.GetLogger(ctx).Info("revoked old API key", "target", t.Name, "provider", pp.Name, "key_id", pp.OldKeyID)
		res.Revoked = append(res.Revoked, pp.Name+":"+pp.OldKeyID)
	}
	return res, nil
}

// apiKeysMaterial is the keys an engineer obtained from the provider
// consoles and staged (see Staging), one data key per provider; they are
// discarded once a version holds them.
func apiKeysMaterial() kindMaterial {
	return kindMaterial{
		checkPlan: checkAPIKeys,
		generate: func(ctx context.Context, k *Kube, p Plan) (map[string][]byte, error) {
			t, err := k.Catalog.Target(p.Target)
			if err != nil {
				return nil, badInput("target: %v", err)
			}
			return k.staging().read(ctx, p, t)
		},
		written: func(t catalog.Target, _ bool) []string {
			var keys []string
			if t.APIKeys != nil {
				for _, p := range t.APIKeys.Providers {
					keys = append(keys, p.Key)
				}
			}
			return keys
		},
		discard: func(ctx context.Context, s Staging, p Plan) error { return s.discardStaged(ctx, p) },
	}
}

// DiscardStagedKeys deletes keys still staged when a rotation ends without
// using them.
func (a *APIKeys) DiscardStagedKeys(ctx context.Context, plan Plan) error {
	if _, err := a.plan(plan); err != nil {
		return err
	}
	return Staging{Kube: a.Kube, Vault: a.Vault}.discard(ctx, plan)
}

// providerError makes a provider's refusal permanent, with the fix.
func providerError(err error, fix string) error {
	if providers.IsPermanent(err) {
		return temporal.NewNonRetryableApplicationError(err.Error()+": "+fix, ErrBadInput, nil)
	}
	return err
}
