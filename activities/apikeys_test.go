package activities

import (
	"context"
	"strings"
	"testing"

	"rotator/catalog"
)

// A probe URL's token (user info or query) must not reach the error.
func TestProbeErrorHidesURLSecrets(t *testing.T) {
	cat, err := catalog.Parse([]byte(`targets:
  - name: llm
    kind: apikeys
    namespace: ns
    secret: keys
    apiKeys:
      providers: [{name: openai}]
      probe: {url: "http://user:pw-SECRET@127.0.0.1:1/execute?token=q-SECRET"}
`))
	if err != nil {
		t.Fatal(err)
	}
	a := &APIKeys{Catalog: cat}
	err = a.Probe(context.Background(), planOf(t, cat, "llm"))
	if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "GET http://127.0.0.1:1/execute") {
		t.Fatalf("probe error: %v", err)
	}
}
