package activities

import (
	"context"
	"slices"

	"rotator/catalog"
)

// material is the data of the new version, as the plan's kind makes it
// (see kindMaterial.generate).
func (k *Kube) material(ctx context.Context, p Plan) (map[string][]byte, error) {
	m, err := materialOf(p.Kind)
	if err != nil {
		return nil, err
	}
	return m.generate(ctx, k, p)
}

// writtenKeys are the data keys a new version of the target gets from the
// rotation itself; rotatedKeys adds those of the current version it must
// not carry over (a dual-key Secret's previous key is replaced, never
// kept). Every other key of the current version is carried over as it is.
func writtenKeys(t catalog.Target, emergency bool) []string {
	m, ok := kindMaterials(t.Kind)
	if !ok {
		return nil
	}
	return m.written(t, emergency)
}

func rotatedKeys(t catalog.Target) []string {
	keys := writtenKeys(t, false)
	m, _ := kindMaterials(t.Kind)
	for _, r := range m.replaced {
		if !slices.Contains(keys, r) {
			keys = append(keys, r)
		}
	}
	return keys
}

// secretKeys are the keys among rotatedKeys whose values are secret: a
// carried key that embeds one of them would keep the old secret alive.
func secretKeys(t catalog.Target) []string {
	if m, ok := kindMaterials(t.Kind); ok && m.secret != nil {
		return m.secret
	}
	return rotatedKeys(t)
}

// carried is the part of the current version's data a new version keeps.
func carried(t catalog.Target, current map[string][]byte) map[string][]byte {
	rotated := rotatedKeys(t)
	out := make(map[string][]byte, len(current))
	for k, v := range current {
		if !slices.Contains(rotated, k) {
			out[k] = v
		}
	}
	return out
}
