package postgres

import (
	"strings"
	"testing"
)

func TestMissingRights(t *testing.T) {
	admin := map[string]bool{"app_a": true}
	has := func(r string) (bool, error) { return admin[r], nil }
	roles := []string{"app_a", "app_b"}
	for _, tc := range []struct {
		name              string
		super, createRole bool
		version           int
		want              []string
	}{
		{"superuser", true, false, 160004, nil},
		{"no CREATEROLE", false, false, 150010, []string{`role rot has neither CREATEROLE nor SUPERUSER`, `ALTER ROLE "rot" CREATEROLE`}},
		{"CREATEROLE before 16", false, true, 150010, nil},
		{"CREATEROLE from 16 without ADMIN OPTION", false, true, 160004, []string{"no ADMIN OPTION on app_b", `GRANT "app_b" TO "rot" WITH ADMIN OPTION`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := missingRights("rot", tc.super, tc.createRole, tc.version, has, roles)
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.want) == 0 && got != "" {
				t.Fatalf("missing %q, want nothing", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q, want it to say %q", got, w)
				}
			}
		})
	}
}
