package catalog

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"rotator/providers"
)

// KindAPIKeys rotates the API keys of LLM providers, which an engineer
// obtains from each provider's console.
const KindAPIKeys Kind = "apikeys"

// Defaults of an apikeys target.
const (
	// DefaultStageTimeout is how long an API-key rotation waits for the
	// engineer to stage the new keys before it gives up, changing nothing.
	DefaultStageTimeout = 72 * time.Hour
	// DefaultAdminKey is the data key of a provider admin Secret.
	DefaultAdminKey = "admin-key"
)

// APIKeys configures an apikeys target: one Secret holding the keys of
// several LLM providers, each obtained by an engineer from the provider's
// console.
type APIKeys struct {
	Providers []Provider `json:"providers"`
	// Probe is the HTTP check run after promote (the runbook's curl).
	Probe *Probe `json:"probe,omitempty"`
	// StageTimeout bounds the wait for the engineer's keys (default 72h).
	StageTimeout Duration `json:"stageTimeout,omitzero"`
}

// Provider is one LLM provider whose key the Secret holds.
type Provider struct {
	// Name is openai or anthropic.
	Name string `json:"name"`
	// Key is the Secret's data key (default <name>-api-key).
	Key string `json:"key,omitempty"`
	// BaseURL is the provider's API (default its public one).
	BaseURL string `json:"baseURL,omitempty"`
	// Admin, when set, lets rotator revoke the old key at retire;
	// without it the engineer revokes it and approves.
	Admin *ProviderAdmin `json:"admin,omitempty"`
}

// ProviderAdmin is where a provider's admin key is kept.
type ProviderAdmin struct {
	Secret SecretRef `json:"secret"`
	// Key is the data key of the admin key (default admin-key).
	Key string `json:"key,omitempty"`
	// ProjectID is the OpenAI project that owns the keys.
	ProjectID string `json:"projectID,omitempty"`
}

// Probe is an HTTP request that must succeed once consumers run on the new
// keys.
type Probe struct {
	URL string `json:"url"`
	// Method is GET (default), HEAD or POST.
	Method string `json:"method,omitempty"`
	// Body is sent with POST.
	Body string `json:"body,omitempty"`
	// ExpectStatus is the status a healthy answer has (default 200).
	ExpectStatus int `json:"expectStatus,omitempty"`
}

// apiKeysKind registers the apikeys kind: its section lists the
// providers, so it is required.
func apiKeysKind() kindSpec {
	return kindSpec{
		kind:     KindAPIKeys,
		section:  "apiKeys",
		example:  "apiKeys: {providers: [{name: openai}, {name: anthropic}]}",
		has:      func(t *Target) bool { return t.APIKeys != nil },
		every:    180 * 24 * time.Hour,
		defaults: apiKeysDefaults,
		check:    apiKeysCheck,
	}
}

func apiKeysDefaults(t *Target) {
	a := t.APIKeys
	if !a.StageTimeout.set {
		a.StageTimeout.Duration = DefaultStageTimeout
	}
	for i := range a.Providers {
		p := &a.Providers[i]
		if p.Key == "" && p.Name != "" {
			p.Key = p.Name + "-api-key"
		}
		if p.BaseURL == "" {
			p.BaseURL = providers.DefaultBaseURL(p.Name)
		}
		if p.Admin != nil && p.Admin.Key == "" {
			p.Admin.Key = DefaultAdminKey
		}
	}
	if a.Probe != nil {
		if a.Probe.Method == "" {
			a.Probe.Method = "GET"
		}
		if a.Probe.ExpectStatus == 0 {
			a.Probe.ExpectStatus = 200
		}
	}
}

func apiKeysCheck(t *Target, fail failFunc) {
	// A catalog written back after parsing carries the key derived
	// below, which must read the same again.
	if t.Key != "" && (len(t.APIKeys.Providers) == 0 || t.Key != t.APIKeys.Providers[0].Key) {
		fail("key", "an apikeys Secret holds one key per provider: remove key and set apiKeys.providers[i].key instead")
	}
	t.APIKeys.check(fail)
	if len(t.APIKeys.Providers) > 0 {
		// The first provider's key stands for the version in
		// fingerprints and status.
		t.Key = t.APIKeys.Providers[0].Key
	}
}

func (a *APIKeys) check(fail failFunc) {
	if len(a.Providers) == 0 {
		fail("apiKeys.providers", "is empty: list the providers whose keys the Secret holds, e.g. [{name: openai}, {name: anthropic}]")
	}
	names, keys := map[string]int{}, map[string]int{}
	for i, p := range a.Providers {
		field := fmt.Sprintf("apiKeys.providers[%d]", i)
		switch {
		case p.Name == "":
			fail(field+".name", "is required: use one of %s", strings.Join(providers.Names(), ", "))
		case !slices.Contains(providers.Names(), p.Name):
			fail(field+".name", "%q is not a provider rotator knows: use one of %s", truncate(p.Name), strings.Join(providers.Names(), ", "))
		default:
			if prev, dup := names[p.Name]; dup {
				fail(field+".name", "%s is also providers[%d]: list each provider once", p.Name, prev)
			}
			names[p.Name] = i
		}
		if msgs := validation.IsConfigMapKey(p.Key); len(msgs) > 0 {
			fail(field+".key", "%q is not a valid Secret data key: %s", truncate(p.Key), strings.Join(msgs, "; "))
		} else if prev, dup := keys[p.Key]; dup {
			fail(field+".key", "%q is also the key of providers[%d]: each provider needs its own data key", p.Key, prev)
		}
		keys[p.Key] = i
		if p.Name != "" && p.BaseURL != "" {
			if u, err := url.Parse(p.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				fail(field+".baseURL", "%q is not an http(s) URL: use e.g. %s", truncate(p.BaseURL), providers.DefaultBaseURL(p.Name))
			} else if !encryptedOrLoopback(u) {
				fail(field+".baseURL", "%q is plain http to a host that is not loopback: the admin key and the new keys would travel in clear text; use https://, e.g. %s", truncate(p.BaseURL), providers.DefaultBaseURL(p.Name))
			}
		}
		if p.Admin != nil {
			checkSecretRef(field+".admin.secret", p.Admin.Secret, fail)
			if msgs := validation.IsConfigMapKey(p.Admin.Key); len(msgs) > 0 {
				fail(field+".admin.key", "%q is not a valid Secret data key: %s", truncate(p.Admin.Key), strings.Join(msgs, "; "))
			}
			if p.Name == providers.OpenAI && p.Admin.ProjectID == "" {
				fail(field+".admin.projectID", "is required for openai: the id (proj_...) of the project that owns the keys, from the project's settings page")
			}
			if p.Name != providers.OpenAI && p.Admin.ProjectID != "" {
				fail(field+".admin.projectID", "is only used by openai: remove it")
			}
		}
	}
	checkDuration(fail, "apiKeys.stageTimeout", a.StageTimeout, minStageTimeout, "e.g. stageTimeout: 72h")
	if pr := a.Probe; pr != nil {
		if u, err := url.Parse(pr.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			fail("apiKeys.probe.url", "%q is not an http(s) URL: use the endpoint that exercises the keys, e.g. https://orchestrator.example.com/api/v1/workflows/execute", truncate(pr.URL))
		} else if !encryptedOrLoopback(u) {
			fail("apiKeys.probe.url", "%q is plain http to a host that is not loopback: what the probe sends and reads would travel in clear text; use https://", truncate(pr.URL))
		}
		if !slices.Contains([]string{"GET", "HEAD", "POST"}, pr.Method) {
			fail("apiKeys.probe.method", "%q is not supported: use GET, HEAD or POST", truncate(pr.Method))
		}
		if pr.Body != "" && pr.Method != "POST" {
			fail("apiKeys.probe.body", "is only sent with method POST: set method: POST or remove body")
		}
		if pr.ExpectStatus < 100 || pr.ExpectStatus > 599 {
			fail("apiKeys.probe.expectStatus", "%d is not an HTTP status: use e.g. 200", pr.ExpectStatus)
		}
	}
}
