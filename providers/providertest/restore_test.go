package providertest_test

import (
	"net"
	"strings"
	"testing"

	"rotator/providers/providertest"
)

// A fixed listener and project id are used as given, and a snapshot of the
// keys restores into a new server with the same ids, statuses and hints.
func TestOptionsAndRestore(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := providertest.NewOpenAI(providertest.WithListener(l), providertest.WithProjectID("proj_fixed"))
	defer a.Close()
	if a.URL != "http://"+l.Addr().String() || a.ProjectID() != "proj_fixed" {
		t.Fatalf("URL %s project %s; want http://%s and proj_fixed", a.URL, a.ProjectID(), l.Addr())
	}
	live := a.AddKey("sk-proj-" + strings.Repeat("a", 40))
	gone := a.AddKey("sk-proj-" + strings.Repeat("b", 40))
	a.SetKeyStatus(gone, providertest.StatusDeleted)

	b := providertest.NewOpenAI()
	defer b.Close()
	for _, k := range a.Keys() {
		b.RestoreKey(k)
	}
	if got, want := b.Keys(), a.Keys(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("restored %+v, want %+v", got, want)
	}
	if b.KeyStatus(live) != providertest.StatusActive || b.KeyStatus(gone) != providertest.StatusDeleted {
		t.Errorf("statuses %s, %s after restore", b.KeyStatus(live), b.KeyStatus(gone))
	}
	if b.KeyHint(live) != a.KeyHint(live) {
		t.Errorf("hint %q, want %q", b.KeyHint(live), a.KeyHint(live))
	}
}
