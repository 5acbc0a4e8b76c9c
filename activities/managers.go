package activities

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// manager is another tool that manages an object: a change rotator makes
// behind its back is undone at its next sync, and what it recreates may be
// a version rotator retired.
type manager struct {
	// ID is what a target lists in acknowledgedManagers: helm, argocd,
	// flux, cert-manager, operator, or an app.kubernetes.io/managed-by
	// label's value in lower case.
	ID string
	// Name says which one, for the error.
	Name string
}

// The IDs of the managers rotator knows by name.
const (
	managerHelm        = "helm"
	managerArgoCD      = "argocd"
	managerFlux        = "flux"
	managerCertManager = "cert-manager"
	managerOperator    = "operator"
)

// Where the managers leave their marks.
const (
	annotationHelmRelease  = "meta.helm.sh/release-name"
	annotationArgoTracking = "argocd.argoproj.io/tracking-id"
	labelArgoInstance      = "argocd.argoproj.io/instance"
	labelFluxKustomization = "kustomize.toolkit.fluxcd.io/name"
	labelFluxHelmRelease   = "helm.toolkit.fluxcd.io/name"
	annotationCertificate  = "cert-manager.io/certificate-name"
)

// fieldManagers are the server-side field managers of the tools that sync
// objects, as they appear in metadata.managedFields.
var fieldManagers = map[string]string{
	"helm":                          managerHelm,
	"argocd-controller":             managerArgoCD,
	"argocd-application-controller": managerArgoCD,
	"kustomize-controller":          managerFlux,
	"helm-controller":               managerFlux,
}

// managersOf finds every manager of an object: a controller owner (an
// ExternalSecret, a SealedSecret, an operator's resource), the labels and
// annotations Helm, Argo CD, Flux and cert-manager set, the
// app.kubernetes.io/managed-by label, and their field managers.
func managersOf(meta metav1.Object) []manager {
	var out []manager
	add := func(id, name string) {
		if !slices.ContainsFunc(out, func(m manager) bool { return m.ID == id }) {
			out = append(out, manager{ID: id, Name: name})
		}
	}
	if c := metav1.GetControllerOf(meta); c != nil {
		add(managerOperator, fmt.Sprintf("%s %s (%s)", c.Kind, c.Name, c.APIVersion))
	}
	labels, annotations := meta.GetLabels(), meta.GetAnnotations()
	if r := annotations[annotationHelmRelease]; r != "" {
		add(managerHelm, "Helm release "+r)
	}
	if v := labels[LabelManagedBy]; v != "" && v != ManagedByValue {
		if strings.EqualFold(v, "Helm") {
			add(managerHelm, "Helm")
		} else {
			add(strings.ToLower(v), fmt.Sprintf("%q (label %s)", v, LabelManagedBy))
		}
	}
	if id := annotations[annotationArgoTracking]; id != "" {
		app, _, _ := strings.Cut(id, ":")
		add(managerArgoCD, "Argo CD application "+app)
	}
	if app := labels[labelArgoInstance]; app != "" {
		add(managerArgoCD, "Argo CD application "+app)
	}
	if k := labels[labelFluxKustomization]; k != "" {
		add(managerFlux, "Flux Kustomization "+k)
	}
	if h := labels[labelFluxHelmRelease]; h != "" {
		add(managerFlux, "Flux HelmRelease "+h)
	}
	if c := annotations[annotationCertificate]; c != "" {
		add(managerCertManager, "cert-manager Certificate "+c)
	}
	for _, f := range meta.GetManagedFields() {
		if id, ok := fieldManagers[f.Manager]; ok {
			add(id, fmt.Sprintf("%s (field manager %s)", id, f.Manager))
		}
	}
	return out
}

// managerRisk says what goes wrong when rotator changes what the manager
// manages: on the Secret (isSecret) or on a consumer's template.
func managerRisk(m manager, isSecret bool, secret string) string {
	switch {
	case m.ID == managerCertManager:
		return "cert-manager issues into this Secret itself, so the two would replace each other's certificates: let cert-manager renew it and remove the target"
	case m.ID == managerOperator && isSecret:
		return "its controller writes the Secret from its own source and would overwrite or recreate it: rotate the value at that source instead"
	case m.ID == managerOperator:
		return fmt.Sprintf("its controller reconciles the template and would put Secret %s back, a version rotator retires", secret)
	case m.ID == managerHelm && isSecret:
		return "the next helm upgrade or rollback recreates it with the value from the chart's values, and the release's workloads keep reading it"
	case isSecret:
		return "its next sync recreates it with the value in Git, and the workloads it deploys keep reading it"
	case m.ID == managerHelm:
		return fmt.Sprintf("the next helm upgrade or rollback puts Secret %s back into its template, a version rotator retires", secret)
	default:
		return fmt.Sprintf("its next sync (at once with self-heal) puts Secret %s back into its template, a version rotator retires", secret)
	}
}

// unacknowledged returns the managers the target has not acknowledged.
func unacknowledged(ms []manager, acknowledges func(string) bool) []manager {
	return slices.DeleteFunc(slices.Clone(ms), func(m manager) bool { return acknowledges(m.ID) })
}
