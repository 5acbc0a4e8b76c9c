package deploy_test

import (
	"encoding/json"
	"flag"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"sigs.k8s.io/yaml"

	"rotator/activities"
	"rotator/clients"
	"rotator/codec"
	"rotator/vault"
)

// baseDeployment returns deploy/base's Deployment and NetworkPolicies.
func baseDeployment(t *testing.T) (*appsv1.Deployment, []networkingv1.NetworkPolicy) {
	t.Helper()
	var d *appsv1.Deployment
	var nps []networkingv1.NetworkPolicy
	for _, o := range baseManifests(t) {
		switch o.Kind {
		case "Deployment":
			d = &appsv1.Deployment{}
			o.decode(t, d)
		case "NetworkPolicy":
			var np networkingv1.NetworkPolicy
			o.decode(t, &np)
			nps = append(nps, np)
		}
	}
	if d == nil {
		t.Fatal("deploy/base has no Deployment")
	}
	return d, nps
}

// withComponent applies deploy/components/<name> to the Deployment as
// kustomize does (strategic merge patches from files, JSON 6902 patches
// inline) and returns the result and the component's own resources.
// TestComponentsRender renders the same with kubectl kustomize.
func withComponent(t *testing.T, d *appsv1.Deployment, name string) (*appsv1.Deployment, []object) {
	t.Helper()
	dir := filepath.Join("deploy/components", name)
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
		Patches    []struct {
			Path   string `json:"path"`
			Patch  string `json:"patch"`
			Target *struct {
				Group   string `json:"group"`
				Version string `json:"version"`
				Kind    string `json:"kind"`
				Name    string `json:"name"`
			} `json:"target"`
		} `json:"patches"`
	}
	if err := yaml.UnmarshalStrict(readFile(t, filepath.Join(dir, "kustomization.yaml")), &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	if k.Kind != "Component" || k.APIVersion != "kustomize.config.k8s.io/v1alpha1" {
		t.Fatalf("%s: kind %s, apiVersion %s; want a kustomize Component (kustomize.config.k8s.io/v1alpha1)", dir, k.Kind, k.APIVersion)
	}
	doc, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range k.Patches {
		switch {
		case p.Path != "":
			objs := parseManifests(t, filepath.Join(dir, p.Path), readFile(t, filepath.Join(dir, p.Path)))
			if len(objs) != 1 || objs[0].Kind != "Deployment" || objs[0].Name != d.Name || objs[0].Namespace != d.Namespace {
				t.Fatalf("%s/%s must patch the Deployment %s/%s alone", dir, p.Path, d.Namespace, d.Name)
			}
			if doc, err = strategicpatch.StrategicMergePatch(doc, objs[0].raw, appsv1.Deployment{}); err != nil {
				t.Fatalf("%s/%s: %v", dir, p.Path, err)
			}
		case p.Target != nil && p.Target.Group == "apps" && p.Target.Kind == "Deployment" && p.Target.Name == d.Name:
			raw, err := yaml.YAMLToJSON([]byte(p.Patch))
			if err != nil {
				t.Fatal(err)
			}
			ops, err := jsonpatch.DecodePatch(raw)
			if err != nil {
				t.Fatalf("%s: patch: %v", dir, err)
			}
			if doc, err = ops.Apply(doc); err != nil {
				t.Fatalf("%s: patch: %v", dir, err)
			}
		default:
			t.Fatalf("%s: a patch this test cannot apply: %+v", dir, p)
		}
	}
	out := &appsv1.Deployment{}
	if err := json.Unmarshal(doc, out); err != nil {
		t.Fatal(err)
	}
	var res []object
	for _, r := range k.Resources {
		res = append(res, parseManifests(t, r, readFile(t, filepath.Join(dir, r)))...)
	}
	return out, res
}

// secretFile checks that file is a key of the Secret secretName, mounted
// read-only, not optional, readable by the worker's group alone (0440 with
// fsGroup 65532).
func secretFile(t *testing.T, d *appsv1.Deployment, file, secretName, key string) {
	t.Helper()
	ps := d.Spec.Template.Spec
	c := ps.Containers[0]
	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if path.Dir(file) == m.MountPath {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Errorf("%s is in no mount of the container (mounts: %+v): mount the Secret %s at %s", file, c.VolumeMounts, secretName, path.Dir(file))
		return
	}
	if !mount.ReadOnly || mount.SubPath != "" {
		t.Errorf("mount %s: want readOnly and no subPath (a subPath mount misses the Secret's updates)", mount.MountPath)
	}
	i := slices.IndexFunc(ps.Volumes, func(v corev1.Volume) bool { return v.Name == mount.Name })
	if i < 0 || ps.Volumes[i].Secret == nil || ps.Volumes[i].Secret.SecretName != secretName {
		t.Errorf("the volume %s mounted at %s is not the Secret %s", mount.Name, mount.MountPath, secretName)
		return
	}
	s := ps.Volumes[i].Secret
	if s.Optional != nil && *s.Optional {
		t.Errorf("the Secret %s is optional: without it the worker must not start", secretName)
	}
	if s.DefaultMode == nil || *s.DefaultMode != 0o440 {
		t.Errorf("the Secret %s has defaultMode %v, want 0440 (the worker's group reads it, no one else)", secretName, s.DefaultMode)
	}
	if !slices.ContainsFunc(s.Items, func(k corev1.KeyToPath) bool { return k.Key == key && k.Path == path.Base(file) && k.Mode == nil }) {
		t.Errorf("the Secret %s's items %+v do not put its key %s at %s", secretName, s.Items, key, path.Base(file))
	}
	if psc := ps.SecurityContext; psc == nil || psc.FSGroup == nil || psc.RunAsGroup == nil || *psc.FSGroup != *psc.RunAsGroup {
		t.Errorf("pod securityContext %+v: set fsGroup to the worker's group (65532), or it cannot read files of mode 0440", psc)
	}
}

func containerEnv(d *appsv1.Deployment) map[string]string {
	env := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	return env
}

// setContainerEnv puts the container's variables with a prefix into this
// process's environment for the test, and clears the others.
func setContainerEnv(t *testing.T, d *appsv1.Deployment, prefix string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, prefix) {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	t.Setenv("HOME", t.TempDir()) // no temporal.toml of this machine
	for k, v := range containerEnv(d) {
		if strings.HasPrefix(k, prefix) {
			t.Setenv(k, v)
		}
	}
}

// TestDeploymentCodecRequired: deploy/base encrypts payloads and requires
// it. The keyring comes from the Secret rotator-codec where
// ROTATOR_CODEC_KEYS_FILE points, and ROTATOR_CODEC_REQUIRED is true as the
// worker parses it.
func TestDeploymentCodecRequired(t *testing.T) {
	d, _ := baseDeployment(t)
	env := containerEnv(d)
	file := env[codec.EnvKeysFile]
	if file == "" {
		t.Fatalf("the worker does not set %s: payload encryption must be on in deploy/base", codec.EnvKeysFile)
	}
	secretFile(t, d, file, "rotator-codec", "keys")
	if _, inline := env[codec.EnvKeys]; inline {
		t.Errorf("the worker sets %s: the keys must stay out of the environment; use %s", codec.EnvKeys, codec.EnvKeysFile)
	}
	setContainerEnv(t, d, "ROTATOR_CODEC_")
	if on, err := codec.Required(); err != nil || !on {
		t.Errorf("%s=%q: the worker reads %v, %v; want true, so that it refuses to run, or to accept payloads, without encryption", codec.EnvRequired, env[codec.EnvRequired], on, err)
	}
}

// TestDeploymentTemporalMTLS: deploy/base alone connects without TLS (a
// plain Temporal); with deploy/components/temporal-mtls the worker reads
// its client certificate, key and the server's CA, as envconfig reads them,
// from the Secret rotator-temporal-tls.
func TestDeploymentTemporalMTLS(t *testing.T) {
	base, _ := baseDeployment(t)
	setContainerEnv(t, base, "TEMPORAL_")
	p, err := clients.Temporal{}.ClientProfile()
	if err != nil {
		t.Fatal(err)
	}
	if p.TLS != nil || p.APIKey != "" {
		t.Errorf("deploy/base alone must connect as to a plain Temporal; its TLS settings are %+v", p.TLS)
	}

	d, _ := withComponent(t, base, "temporal-mtls")
	setContainerEnv(t, d, "TEMPORAL_")
	if p, err = (clients.Temporal{}).ClientProfile(); err != nil {
		t.Fatalf("the worker's Temporal settings with temporal-mtls: %v", err)
	}
	if p.TLS == nil || p.TLS.Disabled {
		t.Fatalf("with temporal-mtls the worker connects without TLS: %+v", p.TLS)
	}
	for _, f := range []struct{ what, path, key string }{
		{"client certificate", p.TLS.ClientCertPath, "tls.crt"},
		{"client key", p.TLS.ClientKeyPath, "tls.key"},
		{"server CA", p.TLS.ServerCACertPath, "ca.crt"},
	} {
		if f.path == "" {
			t.Errorf("with temporal-mtls the worker has no %s path", f.what)
			continue
		}
		secretFile(t, d, f.path, "rotator-temporal-tls", f.key)
	}
	if containerEnv(d)["TEMPORAL_ADDRESS"] != containerEnv(base)["TEMPORAL_ADDRESS"] {
		t.Error("temporal-mtls changes TEMPORAL_ADDRESS; it must only add TLS")
	}
}

// TestDeploymentTemporalCloud: with deploy/components/temporal-cloud the
// worker reads its API key from the Secret rotator-temporal-api-key through
// --api-key-file (never from the environment), and may reach 7233 on the
// internet, which deploy/base's policy refuses.
func TestDeploymentTemporalCloud(t *testing.T) {
	base, basePolicies := baseDeployment(t)
	d, res := withComponent(t, base, "temporal-cloud")
	args := d.Spec.Template.Spec.Containers[0].Args
	if !slices.Equal(args[:len(base.Spec.Template.Spec.Containers[0].Args)], base.Spec.Template.Spec.Containers[0].Args) {
		t.Errorf("temporal-cloud replaces the worker's arguments %v with %v; it must append to them", base.Spec.Template.Spec.Containers[0].Args, args)
	}
	// The worker's own flag set reads the arguments.
	tc := clients.TemporalFromEnv()
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("catalog", "", "")
	tc.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("the worker's flags refuse %v: %v", args, err)
	}
	if tc.APIKeyFile == "" {
		t.Fatalf("with temporal-cloud the worker has no --api-key-file (args %v)", args)
	}
	secretFile(t, d, tc.APIKeyFile, "rotator-temporal-api-key", "api-key")
	for k := range containerEnv(d) {
		if k == "TEMPORAL_API_KEY" {
			t.Error("temporal-cloud sets TEMPORAL_API_KEY: the key would show in the process environment; use --api-key-file")
		}
	}

	cloud := endpoint{what: "Temporal Cloud", ip: publicIP, port: 7233, protocol: corev1.ProtocolTCP}
	for _, np := range basePolicies {
		if egressAllows(t, np, cloud, used{}) {
			t.Errorf("deploy/base's NetworkPolicy %s already allows %s", np.Name, cloud)
		}
	}
	var allowed bool
	for _, o := range res {
		if o.Kind != "NetworkPolicy" {
			continue
		}
		var np networkingv1.NetworkPolicy
		o.decode(t, &np)
		if np.Namespace != d.Namespace {
			t.Errorf("NetworkPolicy %s is in %s, not the worker's namespace %s", np.Name, np.Namespace, d.Namespace)
		}
		allowed = allowed || egressAllows(t, np, cloud, used{})
		if len(np.Spec.Ingress) > 0 || slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			t.Errorf("NetworkPolicy %s opens ingress: the component only adds egress to Temporal Cloud", np.Name)
		}
		for _, e := range []endpoint{
			{what: "another port on the internet", ip: publicIP, port: 8233, protocol: corev1.ProtocolTCP},
			{what: "the metadata service", ip: metadataIP, port: 7233, protocol: corev1.ProtocolTCP},
		} {
			if egressAllows(t, np, e, used{}) {
				t.Errorf("NetworkPolicy %s allows %s", np.Name, e)
			}
		}
	}
	if !allowed {
		t.Errorf("with temporal-cloud the worker still cannot reach %s: add a NetworkPolicy for it", cloud)
	}
}

// kustomizeImage is an entry of a kustomization's images.
type kustomizeImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName"`
	NewTag  string `json:"newTag"`
	Digest  string `json:"digest"`
}

// TestDeploymentImage: the worker's image is set in one place, the
// kustomization's images entry, by tag or by digest (sha256:<64 hex>).
func TestDeploymentImage(t *testing.T) {
	d, _ := baseDeployment(t)
	var k struct {
		Images []kustomizeImage `json:"images"`
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/base/kustomization.yaml"), &k); err != nil {
		t.Fatal(err)
	}
	image := d.Spec.Template.Spec.Containers[0].Image
	i := slices.IndexFunc(k.Images, func(im kustomizeImage) bool { return im.Name == image })
	if i < 0 {
		t.Fatalf("kustomization.yaml has no images entry for the Deployment's image %q", image)
	}
	im := k.Images[i]
	switch {
	case im.Digest != "" && !imageDigest.MatchString(im.Digest):
		t.Errorf("images[%s].digest = %q: want sha256: and 64 lowercase hex digits", im.Name, im.Digest)
	case im.Digest == "" && (im.NewTag == "" || im.NewTag == "latest"):
		t.Errorf("images[%s]: newTag %q: pin the image by a tag (not latest) or, better, by digest", im.Name, im.NewTag)
	}
	if strings.ContainsAny(image, ":@") {
		t.Errorf("the Deployment's image %q carries a tag or digest: set them in kustomization.yaml's images only", image)
	}
}

// TestComponentsRender renders an overlay of deploy/base with both
// components with the devstack's kubectl kustomize, as a user's overlay
// would, and finds in the worker's container what withComponent computed.
func TestComponentsRender(t *testing.T) {
	ds := needDevstack(t)
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rel := func(p string) string {
		r, err := filepath.Rel(dir, filepath.Join(abs, p))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	overlay := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [" + rel("deploy/base") + "]\n" +
		"components: [" + rel("deploy/components/temporal-mtls") + ", " + rel("deploy/components/temporal-cloud") + "]\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(overlay), 0o600); err != nil {
		t.Fatal(err)
	}
	out := run(t, nil, nil, ds.kubectl, "kustomize", dir)
	var got *appsv1.Deployment
	policies := 0
	for _, o := range parseManifests(t, "kubectl kustomize (overlay)", out) {
		switch o.Kind {
		case "Deployment":
			got = &appsv1.Deployment{}
			o.decode(t, got)
		case "NetworkPolicy":
			policies++
		}
	}
	if got == nil || policies != 2 {
		t.Fatalf("the overlay renders Deployment %v and %d NetworkPolicies; want the Deployment and 2 (rotator, rotator-temporal-cloud)", got != nil, policies)
	}
	base, _ := baseDeployment(t)
	want, _ := withComponent(t, base, "temporal-mtls")
	want, _ = withComponent(t, want, "temporal-cloud")
	gc, wc := got.Spec.Template.Spec.Containers[0], want.Spec.Template.Spec.Containers[0]
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, f := range []struct {
		what      string
		got, want any
	}{
		{"args", gc.Args, wc.Args},
		{"env", gc.Env, wc.Env},
		{"volumeMounts", gc.VolumeMounts, wc.VolumeMounts},
	} {
		if js(f.got) != js(f.want) {
			t.Errorf("%s: kustomize renders\n %s\nwithComponent computes\n %s", f.what, js(f.got), js(f.want))
		}
	}
	secrets := func(d *appsv1.Deployment) string {
		var vs []corev1.Volume
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Secret != nil {
				vs = append(vs, v)
			}
		}
		return js(vs)
	}
	if g, w := secrets(got), secrets(want); g != w {
		t.Errorf("Secret volumes: kustomize renders\n %s\nwithComponent computes\n %s", g, w)
	}
}

// TestDeploymentFingerprintKeyAndVaultToken: deploy/base keys the
// fingerprints with a Secret every worker shares, and logs in to Vault
// with a projected token of audience vault where the catalog's default
// token path points, never with the API server's token.
func TestDeploymentFingerprintKeyAndVaultToken(t *testing.T) {
	d, _ := baseDeployment(t)
	env := containerEnv(d)
	file := env[activities.EnvFingerprintKeyFile]
	if file == "" {
		t.Fatalf("the worker does not set %s: fingerprints would differ between workers", activities.EnvFingerprintKeyFile)
	}
	secretFile(t, d, file, "rotator-fingerprint-key", "key")
	if addr := env["VAULT_ADDR"]; !strings.HasPrefix(addr, "https://") {
		t.Errorf("VAULT_ADDR %q: the worker refuses plain http to a host that is not loopback", addr)
	}
	var mount, mountPath string
	for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		if strings.HasPrefix(vault.DefaultServiceAccountTokenPath, m.MountPath+"/") {
			mount, mountPath = m.Name, m.MountPath
		}
	}
	var found bool
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name != mount || v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if tok := src.ServiceAccountToken; tok != nil && tok.Audience == vault.DefaultAudience &&
				path.Join(mountPath, tok.Path) == vault.DefaultServiceAccountTokenPath {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no projected serviceAccountToken of audience %q at %s (volume %q)", vault.DefaultAudience, vault.DefaultServiceAccountTokenPath, mount)
	}
}
