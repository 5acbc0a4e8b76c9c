package activities

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// secretRefPaths returns the JSON pointer (relative to the pod spec) of
// every place a pod spec names the Secret: env secretKeyRef, envFrom
// secretRef, secret volumes and projected secret sources, in regular and
// init containers.
func secretRefPaths(spec *corev1.PodSpec, secret string) []string {
	var paths []string
	containers := func(field string, cs []corev1.Container) {
		for i, c := range cs {
			for j, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == secret {
					paths = append(paths, fmt.Sprintf("/%s/%d/env/%d/valueFrom/secretKeyRef/name", field, i, j))
				}
			}
			for j, e := range c.EnvFrom {
				if e.SecretRef != nil && e.SecretRef.Name == secret {
					paths = append(paths, fmt.Sprintf("/%s/%d/envFrom/%d/secretRef/name", field, i, j))
				}
			}
		}
	}
	containers("initContainers", spec.InitContainers)
	containers("containers", spec.Containers)
	for i, v := range spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret {
			paths = append(paths, fmt.Sprintf("/volumes/%d/secret/secretName", i))
		}
		if v.Projected != nil {
			for j, s := range v.Projected.Sources {
				if s.Secret != nil && s.Secret.Name == secret {
					paths = append(paths, fmt.Sprintf("/volumes/%d/projected/sources/%d/secret/name", i, j))
				}
			}
		}
	}
	return paths
}

// secretNames lists every Secret a pod spec names, once each, sorted.
func secretNames(spec *corev1.PodSpec) []string {
	var names []string
	add := func(n string) {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				add(e.ValueFrom.SecretKeyRef.Name)
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				add(e.SecretRef.Name)
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			add(v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, p := range v.Projected.Sources {
				if p.Secret != nil {
					add(p.Secret.Name)
				}
			}
		}
	}
	slices.Sort(names)
	return names
}

// keyRef is a data key a pod spec reads from a Secret by name, where a
// missing key keeps the pod from starting: a kubelet refuses a container
// whose secretKeyRef names no such key, and a volume whose items do.
type keyRef struct {
	Key   string `json:"key"`
	Where string `json:"where"`
}

// keyRefs lists the keys of the Secret a pod spec needs, those marked
// optional left out.
func keyRefs(spec *corev1.PodSpec, secret string) []keyRef {
	var out []keyRef
	required := func(optional *bool) bool { return optional == nil || !*optional }
	containers := func(field string, cs []corev1.Container) {
		for _, c := range cs {
			for _, e := range c.Env {
				if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil && r.SecretKeyRef.Name == secret && required(r.SecretKeyRef.Optional) {
					out = append(out, keyRef{Key: r.SecretKeyRef.Key, Where: fmt.Sprintf("%s %s env %s", field, c.Name, e.Name)})
				}
			}
		}
	}
	containers("init container", spec.InitContainers)
	containers("container", spec.Containers)
	for _, v := range spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret && required(v.Secret.Optional) {
			for _, it := range v.Secret.Items {
				out = append(out, keyRef{Key: it.Key, Where: "volume " + v.Name})
			}
		}
		if v.Projected != nil {
			for _, p := range v.Projected.Sources {
				if p.Secret != nil && p.Secret.Name == secret && required(p.Secret.Optional) {
					for _, it := range p.Secret.Items {
						out = append(out, keyRef{Key: it.Key, Where: "projected volume " + v.Name})
					}
				}
			}
		}
	}
	return out
}

// patchOp is one RFC 6902 operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// repointPatch builds one JSON patch that moves every reference in a pod
// template from one Secret to another. Each replace is guarded by a test of
// the old value, so a concurrent edit of the workload makes the patch fail
// with a conflict instead of overwriting the wrong field; the activity then
// retries against the new state.
func repointPatch(templatePath string, spec *corev1.PodSpec, annotations map[string]string, from, to, cause string) ([]byte, int, error) {
	paths := secretRefPaths(spec, from)
	if len(paths) == 0 {
		return nil, 0, nil
	}
	full := make([]string, len(paths))
	for i, p := range paths {
		full[i] = templatePath + "/spec" + p
	}
	b, err := guardedReplace(full, annotations, from, to, cause)
	return b, len(paths), err
}

// seenPatch builds the repoint patch from what preflight saw of a workload,
// without reading it again. Its first op tests the resourceVersion, so the
// patch applies only to the very object preflight read; any change since
// makes it fail like a failed test op, and promote reads the workload.
func seenPatch(s Seen, from, to, cause string) ([]byte, error) {
	full := make([]string, len(s.Paths))
	for i, p := range s.Paths {
		full[i] = templatePath(s.Workload.Kind) + "/spec" + p
	}
	var annotations map[string]string
	if s.Annotated {
		// Only nil versus non-nil matters to the patch: add one key or
		// the whole map.
		annotations = map[string]string{}
	}
	return guardedPatch([]patchOp{{Op: "test", Path: "/metadata/resourceVersion", Value: s.ResourceVersion}},
		full, annotations, from, to, cause)
}

// guardedReplace replaces the value at each path, each guarded by a test of
// the old value, and records the cause in the change-cause annotation.
func guardedReplace(paths []string, annotations map[string]string, from, to, cause string) ([]byte, error) {
	return guardedPatch(nil, paths, annotations, from, to, cause)
}

// guardedPatch is guardedReplace after the ops given first.
func guardedPatch(first []patchOp, paths []string, annotations map[string]string, from, to, cause string) ([]byte, error) {
	ops := make([]patchOp, 0, len(first)+2*len(paths)+1)
	ops = append(ops, first...)
	for _, p := range paths {
		ops = append(ops, patchOp{Op: "test", Path: p, Value: from}, patchOp{Op: "replace", Path: p, Value: to})
	}
	if annotations == nil {
		ops = append(ops, patchOp{Op: "add", Path: "/metadata/annotations", Value: map[string]string{AnnotationChangeCause: cause}})
	} else {
		ops = append(ops, patchOp{Op: "add", Path: "/metadata/annotations/" + escapePointer(AnnotationChangeCause), Value: cause})
	}
	b, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encode patch: %w", err)
	}
	return b, nil
}

// escapePointer escapes a JSON pointer token (RFC 6901).
func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
