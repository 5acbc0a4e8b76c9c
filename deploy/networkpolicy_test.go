package deploy_test

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"rotator/catalog"
)

// endpoint is one side of a connection as a NetworkPolicy sees it: a pod
// (namespace and labels) or an address outside the cluster's pods.
type endpoint struct {
	what      string // for messages
	namespace string
	pod       map[string]string
	ip        string
	port      int32
	protocol  corev1.Protocol
}

func (e endpoint) String() string {
	where := e.ip
	if e.ip == "" {
		where = fmt.Sprintf("pod %v in %s", e.pod, e.namespace)
	}
	return fmt.Sprintf("%s (%s, %s/%d)", e.what, where, e.protocol, e.port)
}

// peerMatches follows the NetworkPolicy API: a podSelector alone means pods
// of the policy's namespace, a namespaceSelector pods of the matching
// namespaces, both together pods matching both; an ipBlock matches
// addresses (what it does for pod addresses is left to the CNI, so it is
// taken to match none here).
func peerMatches(t *testing.T, policyNS string, p networkingv1.NetworkPolicyPeer, e endpoint) bool {
	t.Helper()
	if p.IPBlock != nil {
		if e.ip == "" {
			return false
		}
		addr := netip.MustParseAddr(e.ip)
		if !netip.MustParsePrefix(p.IPBlock.CIDR).Contains(addr) {
			return false
		}
		for _, ex := range p.IPBlock.Except {
			if netip.MustParsePrefix(ex).Contains(addr) {
				return false
			}
		}
		return true
	}
	if e.ip != "" {
		return false
	}
	sel := func(s *metav1.LabelSelector, l map[string]string) bool {
		ls, err := metav1.LabelSelectorAsSelector(s)
		if err != nil {
			t.Fatal(err)
		}
		return ls.Matches(labels.Set(l))
	}
	nsLabels := map[string]string{"kubernetes.io/metadata.name": e.namespace}
	switch {
	case p.NamespaceSelector == nil:
		return e.namespace == policyNS && sel(p.PodSelector, e.pod)
	case p.PodSelector == nil:
		return sel(p.NamespaceSelector, nsLabels)
	default:
		return sel(p.NamespaceSelector, nsLabels) && sel(p.PodSelector, e.pod)
	}
}

// portMatches: no ports means every port; a port without protocol is TCP.
func portMatches(ports []networkingv1.NetworkPolicyPort, e endpoint) (int, bool) {
	if len(ports) == 0 {
		return -1, true
	}
	for i, p := range ports {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if proto != e.protocol || p.Port == nil {
			continue
		}
		lo, hi := p.Port.IntVal, p.Port.IntVal
		if p.EndPort != nil {
			hi = *p.EndPort
		}
		if e.port >= lo && e.port <= hi {
			return i, true
		}
	}
	return -1, false
}

// used records which rule and which of its ports let something through.
type used map[[2]int]bool

func egressAllows(t *testing.T, np networkingv1.NetworkPolicy, e endpoint, u used) bool {
	t.Helper()
	ok := false
	for i, r := range np.Spec.Egress {
		port, pm := portMatches(r.Ports, e)
		if !pm {
			continue
		}
		to := len(r.To) == 0
		for _, p := range r.To {
			to = to || peerMatches(t, np.Namespace, p, e)
		}
		if to {
			ok = true
			u[[2]int{i, port}] = true
		}
	}
	return ok
}

func ingressAllows(t *testing.T, np networkingv1.NetworkPolicy, from endpoint, port int32) bool {
	t.Helper()
	for _, r := range np.Spec.Ingress {
		if _, pm := portMatches(r.Ports, endpoint{port: port, protocol: corev1.ProtocolTCP}); !pm {
			continue
		}
		ok := len(r.From) == 0
		for _, p := range r.From {
			ok = ok || peerMatches(t, np.Namespace, p, from)
		}
		if ok {
			return true
		}
	}
	return false
}

// Addresses for the rules on ipBlocks (documentation ranges and the usual
// Service and node ranges; nothing here connects to them).
const (
	publicIP      = "203.0.113.7"
	publicIPv6    = "2001:db8::7"
	serviceIP     = "10.96.0.1"
	controlPlane  = "172.18.0.2"
	metadataIP    = "169.254.169.254"
	privateHostIP = "10.0.0.5"
)

// destination turns host:port into what the worker's pod connects to: a
// Service <name>.<namespace>.svc[.cluster.local] is the pods of that
// namespace; anything else is taken to be on the internet.
func destination(t *testing.T, what, host string, port int) endpoint {
	t.Helper()
	e := endpoint{what: what, port: int32(port), protocol: corev1.ProtocolTCP}
	labels := strings.Split(strings.TrimSuffix(host, ".cluster.local"), ".")
	switch {
	case len(labels) == 3 && labels[2] == "svc":
		e.namespace, e.pod = labels[1], map[string]string{"app": labels[0]}
	case net.ParseIP(host) != nil || host == "localhost":
		t.Fatalf("%s: %s is an address; in a cluster name a Service (<name>.<namespace>.svc) or a public host", what, host)
	default:
		e.ip = publicIP
	}
	return e
}

func hostPort(t *testing.T, what, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q: %v", what, addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s %q: port: %v", what, addr, err)
	}
	return h, n
}

func urlHostPort(t *testing.T, what, raw string) (string, int) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		t.Fatalf("%s %q is not a URL: %v", what, raw, err)
	}
	if u.Port() != "" {
		return hostPort(t, what, u.Host)
	}
	if u.Scheme == "http" {
		return u.Hostname(), 80
	}
	return u.Hostname(), 443
}

// workerDestinations lists everything the worker connects to, from the
// Deployment's environment and the cluster catalog.
func workerDestinations(t *testing.T, d *appsv1.Deployment, c *catalog.Catalog) []endpoint {
	t.Helper()
	env := containerEnv(d)
	var out []endpoint
	for _, proto := range []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP} {
		out = append(out, endpoint{what: "DNS", namespace: "kube-system", pod: map[string]string{"k8s-app": "kube-dns"}, port: 53, protocol: proto})
	}
	h, p := hostPort(t, "TEMPORAL_ADDRESS", env["TEMPORAL_ADDRESS"])
	out = append(out, destination(t, "Temporal (TEMPORAL_ADDRESS)", h, p))
	h, p = urlHostPort(t, "VAULT_ADDR", env["VAULT_ADDR"])
	out = append(out, destination(t, "Vault (VAULT_ADDR)", h, p))
	for _, addr := range []endpoint{
		{what: "the API server (Service)", ip: serviceIP, port: 443},
		{what: "the API server (endpoints)", ip: controlPlane, port: 6443},
	} {
		addr.protocol = corev1.ProtocolTCP
		out = append(out, addr)
	}
	for _, tg := range c.Targets {
		if pg := tg.Postgres; pg != nil {
			out = append(out, destination(t, "target "+tg.Name+" postgres.host", pg.Host, pg.Port))
		}
		if r := tg.Redis; r != nil {
			h, p := hostPort(t, "target "+tg.Name+" redis.address", r.Address)
			out = append(out, destination(t, "target "+tg.Name+" redis.address", h, p))
		}
		if a := tg.APIKeys; a != nil {
			for _, pr := range a.Providers {
				h, p := urlHostPort(t, "target "+tg.Name+" provider "+pr.Name, pr.BaseURL)
				out = append(out, destination(t, "target "+tg.Name+" provider "+pr.Name, h, p))
				if e := destination(t, "", h, p); e.ip == publicIP {
					e.what, e.ip = "target "+tg.Name+" provider "+pr.Name+" over IPv6", publicIPv6
					out = append(out, e)
				}
			}
			if a.Probe != nil {
				h, p := urlHostPort(t, "target "+tg.Name+" apiKeys.probe.url", a.Probe.URL)
				out = append(out, destination(t, "target "+tg.Name+" apiKeys.probe", h, p))
			}
		}
		if tls := tg.TLS; tls != nil && tls.Handshake != nil {
			h, p := hostPort(t, "target "+tg.Name+" tls.handshake.address", tls.Handshake.Address)
			out = append(out, destination(t, "target "+tg.Name+" tls.handshake", h, p))
		}
	}
	return out
}

// TestDeploymentNetworkPolicy checks deploy/base/networkpolicy.yaml against
// what the worker connects to (TEMPORAL_ADDRESS and VAULT_ADDR in the
// Deployment, PostgreSQL servers and providers in the cluster catalog, DNS
// and the API server): all of it is allowed, every rule and port of the
// policy is needed by one of them, what lies beside them is refused, and
// only the metrics port takes connections.
func TestDeploymentNetworkPolicy(t *testing.T) {
	d, policies := baseDeployment(t)
	if len(policies) != 1 {
		t.Fatalf("deploy/base needs one NetworkPolicy (networkpolicy.yaml, listed in kustomization.yaml); found %d", len(policies))
	}
	np := policies[0]
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	if np.Namespace != d.Namespace || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Fatalf("NetworkPolicy %s/%s selects %v, which must pick the worker's pods (%s, labels %v) and no others", np.Namespace, np.Name, sel, d.Namespace, d.Spec.Template.Labels)
	}
	types := map[networkingv1.PolicyType]bool{}
	for _, pt := range np.Spec.PolicyTypes {
		types[pt] = true
	}
	if !types[networkingv1.PolicyTypeIngress] || !types[networkingv1.PolicyTypeEgress] {
		t.Errorf("policyTypes = %v: want Ingress and Egress, so that both directions are denied but for the rules", np.Spec.PolicyTypes)
	}

	u := used{}
	for _, e := range workerDestinations(t, d, loadCatalog(t, "deploy/base/rotator.yaml")) {
		if !egressAllows(t, np, e, u) {
			t.Errorf("the worker cannot reach %s: add an egress rule", e)
		}
	}
	for i, r := range np.Spec.Egress {
		if len(r.Ports) == 0 {
			t.Errorf("egress rule %d allows every port: name them", i)
		}
		if len(r.To) == 0 {
			t.Errorf("egress rule %d allows every destination: name them", i)
		}
		for j, p := range r.Ports {
			if !u[[2]int{i, j}] {
				t.Errorf("egress rule %d, port %v: nothing the worker connects to needs it (TEMPORAL_ADDRESS, VAULT_ADDR, the catalog, DNS, the API server): remove it", i, p.Port)
			}
		}
	}
	// The providers' rule is for the internet: once the API server rule is
	// narrowed, 443 to a private address or the metadata service is refused.
	providerRule := false
	for i := range np.Spec.Egress {
		one := np
		one.Spec.Egress = np.Spec.Egress[i : i+1]
		reach := func(ip string) bool {
			return egressAllows(t, one, endpoint{ip: ip, port: 443, protocol: corev1.ProtocolTCP}, used{})
		}
		providerRule = providerRule || (reach(publicIP) && reach(publicIPv6) && !reach(metadataIP) && !reach(privateHostIP) && !reach(serviceIP) && !reach("fd00::1"))
	}
	if !providerRule {
		t.Error("no egress rule allows 443 to the internet (the providers) while refusing private addresses and the metadata service (169.254.0.0/16)")
	}
	for _, e := range []endpoint{
		{what: "the cloud metadata service", ip: metadataIP, port: 80},
		{what: "a database outside the catalog", ip: privateHostIP, port: 5432},
		{what: "ssh on the internet", ip: publicIP, port: 22},
		{what: "http on the internet", ip: publicIP, port: 80},
		{what: "Temporal's history service", namespace: "temporal", pod: map[string]string{"app": "history"}, port: 7234},
		{what: "Vault's cluster port", namespace: "vault", pod: map[string]string{"app": "vault"}, port: 8201},
		{what: "an application of the target namespace", namespace: "llm-orchestrator", pod: map[string]string{"app": "orchestrator"}, port: 8080},
		{what: "PostgreSQL in a namespace without targets", namespace: "default", pod: map[string]string{"app": "postgres"}, port: 5432},
		{what: "another pod of kube-system", namespace: "kube-system", pod: map[string]string{"k8s-app": "metrics-server"}, port: 443},
		{what: "a pod beside the worker", namespace: "rotator", pod: map[string]string{"app": "other"}, port: 8080},
	} {
		e.protocol = corev1.ProtocolTCP
		if egressAllows(t, np, e, used{}) {
			t.Errorf("the worker may connect to %s: it must not", e)
		}
	}

	c := d.Spec.Template.Spec.Containers[0]
	var metricsPort int32
	for _, p := range c.Ports {
		if p.Name == "http" {
			metricsPort = p.ContainerPort
		}
	}
	for i, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			if p.Port == nil || p.Port.IntVal != metricsPort || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) || p.EndPort != nil {
				t.Errorf("ingress rule %d opens %v: only the metrics port (http, %d/TCP) may take connections", i, p.Port, metricsPort)
			}
		}
		if len(r.Ports) == 0 {
			t.Errorf("ingress rule %d opens every port: only the metrics port (http, %d/TCP) may take connections", i, metricsPort)
		}
	}
	prometheus := endpoint{namespace: "monitoring", pod: map[string]string{"app.kubernetes.io/name": "prometheus"}}
	if !ingressAllows(t, np, prometheus, metricsPort) {
		t.Errorf("Prometheus (a pod of namespace monitoring) cannot scrape port %d", metricsPort)
	}
	for _, port := range []int32{22, 2345, 6060, 9090} {
		if ingressAllows(t, np, prometheus, port) {
			t.Errorf("port %d of the worker takes connections: only the metrics port may", port)
		}
	}
}
