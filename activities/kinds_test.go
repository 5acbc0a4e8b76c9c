package activities

import (
	"errors"
	"testing"

	"go.temporal.io/sdk/temporal"

	"rotator/catalog"
)

// TestEveryCatalogKindHasMaterial fails when the catalog gains a kind that
// this worker cannot make a new version of: the stage step would refuse
// every rotation of it, with the bad-input error checked last.
func TestEveryCatalogKindHasMaterial(t *testing.T) {
	for _, kind := range catalog.Kinds() {
		m, ok := kindMaterials(kind)
		switch {
		case !ok:
			t.Errorf("kind %s: not in kindMaterials: add its material (see jwt.go) and a case in kinds.go", kind)
		case m.generate == nil:
			t.Errorf("kind %s: kindMaterial.generate is nil", kind)
		case m.written == nil:
			t.Errorf("kind %s: kindMaterial.written is nil", kind)
		}
	}
	_, err := materialOf("vapor")
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || app.Message() != "kind vapor has no stage step in this worker" {
		t.Fatalf("materialOf(vapor) = %v, want the non-retryable no-stage-step error", err)
	}
}
