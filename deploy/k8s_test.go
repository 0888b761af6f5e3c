package deploy

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// manifests are the objects an overlay builds, each decoded strictly into its API type.
type manifests struct {
	deployments  []*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
	services     []*corev1.Service
	configMaps   []*corev1.ConfigMap
	budgets      []*policyv1.PodDisruptionBudget
	policies     []*networkingv1.NetworkPolicy
}

// build runs kustomize on the overlay at dir, as `kubectl apply -k` would, and decodes every
// object it makes into its Kubernetes API type, refusing any field the type does not have: a
// misspelt or misplaced field is an error here, not a setting the cluster silently drops.
func build(fsys filesys.FileSystem, dir string) (*manifests, error) {
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	m := &manifests{}
	for _, r := range res.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			return nil, err
		}
		kind, name := r.GetKind(), r.GetName()
		var into any
		switch kind {
		case "Deployment":
			d := &appsv1.Deployment{}
			m.deployments, into = append(m.deployments, d), d
		case "StatefulSet":
			s := &appsv1.StatefulSet{}
			m.statefulSets, into = append(m.statefulSets, s), s
		case "Service":
			s := &corev1.Service{}
			m.services, into = append(m.services, s), s
		case "ConfigMap":
			c := &corev1.ConfigMap{}
			m.configMaps, into = append(m.configMaps, c), c
		case "PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			m.budgets, into = append(m.budgets, p), p
		case "NetworkPolicy":
			p := &networkingv1.NetworkPolicy{}
			m.policies, into = append(m.policies, p), p
		default:
			return nil, fmt.Errorf("%s %s: no API type to check it against; add its kind to build", kind, name)
		}
		if err := yaml.UnmarshalStrict(b, into); err != nil {
			return nil, fmt.Errorf("%s %s: %w", kind, name, err)
		}
	}
	return m, nil
}

// overlay is what each overlay must hold beyond what every one must.
type overlay struct {
	name string
	// minReplicas is the fewest replicas each Whistle Deployment may run.
	minReplicas int32
	// streamReplicas is the --replicas every service creates the streams with: the NATS nodes.
	streamReplicas int
}

var overlays = []overlay{
	{name: "single-node", minReplicas: 1, streamReplicas: 1},
	{name: "production", minReplicas: 2, streamReplicas: 3},
}

// workload is a pod template and whose it is, for the checks that apply to every pod.
type workload struct {
	what     string
	template corev1.PodTemplateSpec
}

// checkManifests returns what is wrong with an overlay's objects.
func checkManifests(o overlay, m *manifests) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	var workloads []workload
	for _, d := range m.deployments {
		workloads = append(workloads, workload{"Deployment " + d.Name, d.Spec.Template})
		for _, c := range d.Spec.Template.Spec.Containers {
			if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
				bad("Deployment %s: container %s is not ready by /healthz", d.Name, c.Name)
			}
		}
		if !slices.ContainsFunc(m.budgets, func(b *policyv1.PodDisruptionBudget) bool { return selects(b.Spec.Selector, d.Spec.Template.Labels) }) {
			bad("Deployment %s: no PodDisruptionBudget selects its pods", d.Name)
		}
	}
	for _, s := range m.statefulSets {
		workloads = append(workloads, workload{"StatefulSet " + s.Name, s.Spec.Template})
	}
	for _, w := range workloads {
		errs = append(errs, checkPod(w)...)
	}

	whistle := 0
	for _, d := range m.deployments {
		name := d.Spec.Template.Labels["app.kubernetes.io/component"]
		if d.Spec.Template.Labels["app.kubernetes.io/name"] != "whistle" {
			continue
		}
		whistle++
		if d.Spec.Replicas == nil || *d.Spec.Replicas < o.minReplicas {
			bad("Deployment %s: %d replicas, want at least %d", d.Name, ptrOr(d.Spec.Replicas, 1), o.minReplicas)
		}
		errs = append(errs, checkWhistleContainer(d, name, o, m)...)
		errs = append(errs, checkBudget(d, m.budgets)...)
		errs = append(errs, checkEgress(d, m)...)
	}
	if whistle != len(processes) {
		bad("%d Whistle Deployments, want one for each of %v", whistle, processes)
	}
	return errs
}

// ptrOr is *p, or def when p is nil.
func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// selects reports whether sel selects a pod labelled with lbls.
func selects(sel *metav1.LabelSelector, lbls map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && !s.Empty() && s.Matches(labels.Set(lbls))
}

// checkPod checks what every pod must have: requests and limits of CPU and memory, a readiness
// probe, and a user that is not root and can gain no privilege nor write its root file system.
func checkPod(w workload) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(w.what+": "+format, args...)) }
	pod := w.template.Spec
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[r]; !ok {
				bad("container %s requests no %s", c.Name, r)
			}
			if _, ok := c.Resources.Limits[r]; !ok {
				bad("container %s has no %s limit", c.Name, r)
			}
		}
		if c.ReadinessProbe == nil {
			bad("container %s has no readiness probe", c.Name)
		}
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		nonRoot := sc.RunAsNonRoot
		if nonRoot == nil {
			nonRoot = psc.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			bad("container %s may run as root (runAsNonRoot is not true)", c.Name)
		}
		user := sc.RunAsUser
		if user == nil {
			user = psc.RunAsUser
		}
		if user != nil && *user == 0 {
			bad("container %s runs as user 0", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			bad("container %s may escalate its privileges", c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			bad("container %s may write its root file system", c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			bad("container %s is privileged", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			bad("container %s keeps its capabilities", c.Name)
		}
		if c.Image == "" || strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image[strings.LastIndex(c.Image, "/")+1:], ":") {
			bad("container %s runs image %q, want one with a version tag", c.Name, c.Image)
		}
	}
	return errs
}

// checkWhistleContainer checks that a Whistle Deployment runs `whistle serve NAME` with its own
// Redis user and the shared token key; a service's, with its own NATS user and the streams'
// replicas of the overlay's NATS; the gateway's, with no NATS and each service's pods by the
// name of a headless Service.
func checkWhistleContainer(d *appsv1.Deployment, name string, o overlay, m *manifests) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("Deployment "+d.Name+": "+format, args...))
	}
	if !slices.Contains(processes, name) {
		bad("app.kubernetes.io/component %q names neither a service nor the gateway", name)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		bad("%d containers, want whistle alone", len(d.Spec.Template.Spec.Containers))
		return errs
	}
	c := d.Spec.Template.Spec.Containers[0]
	if len(c.Args) < 2 || c.Args[0] != "serve" || c.Args[1] != name {
		bad("runs %q, want serve %s", c.Args, name)
	}
	if !hasFlag(c.Args, "--http", "0.0.0.0:7080") {
		bad("serves /healthz elsewhere than 0.0.0.0:7080: %q", c.Args)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if name == gatewayName {
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "WHISTLE_NATS_") {
				bad("needs no NATS but is given %s", e.Name)
			}
		}
		for _, a := range c.Args[min(2, len(c.Args)):] {
			if f, _, _ := strings.Cut(a, "="); strings.HasPrefix(f, "--") && !slices.Contains(gatewayFlags, f) {
				bad("is given %s, a flag serve gateway refuses", f)
			}
		}
		for _, svc := range services {
			flag := "--" + svc + "-addr"
			i := slices.Index(c.Args, flag)
			if i < 0 || i+1 >= len(c.Args) {
				bad("is given no %s", flag)
			} else if err := checkServiceAddr(m, d.Namespace, c.Args[i+1], svc); err != nil {
				bad("its %s %q does not resolve to the %s service's pods on their gRPC port: %v", flag, c.Args[i+1], svc, err)
			}
		}
		if !servedBy(m, d, 7080) {
			bad("no Service sends people to its HTTP port 7080, where the console and Open311 answer")
		}
	} else {
		if !hasFlag(c.Args, "--replicas", strconv.Itoa(o.streamReplicas)) {
			bad("creates the streams with other than --replicas %d, its overlay's NATS nodes: %q", o.streamReplicas, c.Args)
		}
		if env["WHISTLE_NATS_USER"].Value != name {
			bad("connects to NATS as %q, want its own user %s", env["WHISTLE_NATS_USER"].Value, name)
		}
		if ref := env["WHISTLE_NATS_PASSWORD"].ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "whistle-nats-users" || ref.SecretKeyRef.Key != name {
			bad("its NATS password is not key %s of the Secret whistle-nats-users", name)
		}
	}
	if ref := env["WHISTLE_REDIS_URL"].ValueFrom; ref == nil || ref.SecretKeyRef == nil {
		bad("its Redis URL comes from no Secret")
	} else if ref.SecretKeyRef.Name != "whistle-redis" || ref.SecretKeyRef.Key != name+"-url" {
		bad("its Redis URL is key %s of the Secret %s, not %s-url of whistle-redis, its own Redis user's", ref.SecretKeyRef.Key, ref.SecretKeyRef.Name, name)
	}
	mounted := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == "whistle-token-key" {
			mounted = slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
				return m.Name == v.Name && m.MountPath == "/var/lib/whistle" && m.ReadOnly
			})
		}
	}
	if !mounted {
		bad("the Secret whistle-token-key is not its data folder /var/lib/whistle, read-only")
	}
	return errs
}

// deploymentOf returns the Whistle Deployment of m in namespace ns that runs component, or nil.
func deploymentOf(m *manifests, ns, component string) *appsv1.Deployment {
	for _, d := range m.deployments {
		if d.Namespace == ns && d.Spec.Template.Labels["app.kubernetes.io/name"] == "whistle" &&
			d.Spec.Template.Labels["app.kubernetes.io/component"] == component {
			return d
		}
	}
	return nil
}

// grpcPort returns the port a service's Deployment serves its gRPC API on: its --grpc's.
func grpcPort(d *appsv1.Deployment) (int, error) {
	for _, c := range d.Spec.Template.Spec.Containers {
		if i := slices.Index(c.Args, "--grpc"); i >= 0 && i+1 < len(c.Args) {
			_, port, err := net.SplitHostPort(c.Args[i+1])
			if err != nil {
				return 0, fmt.Errorf("Deployment %s: --grpc %q: %w", d.Name, c.Args[i+1], err)
			}
			return strconv.Atoi(port)
		}
	}
	return 0, fmt.Errorf("Deployment %s has no --grpc", d.Name)
}

// checkServiceAddr checks that addr, dns:///HOST:PORT, names a headless Service of m, in
// namespace ns (HOST is its name, or its name and namespace), that lists the ready pods of svc's
// Deployment alone, and that PORT is the port their --grpc listens on.
//
// The gateway shares its calls round robin among the addresses a name resolves to (grpcx.Dial).
// A headless Service's name resolves to the address of every ready pod; a ClusterIP Service's to
// one virtual IP, over which the gateway would keep one HTTP/2 connection to one pod and send it
// every call. The dns scheme is written out so that the name is resolved by DNS whatever a
// client's default resolver is (grpc.Dial's passes the name through whole). Since the name gives
// the pods' own addresses, which no port of the Service maps, PORT must be the pods' port, and the
// Service must carry that port for its endpoints to list the pods on it.
func checkServiceAddr(m *manifests, ns, addr, svc string) error {
	hostPort, ok := strings.CutPrefix(addr, "dns:///")
	if !ok {
		return fmt.Errorf("want dns:///NAME:PORT, NAME a headless Service, so that DNS resolves it to every ready pod")
	}
	host, portText, err := net.SplitHostPort(hostPort)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return err
	}
	name, rest, _ := strings.Cut(host, ".")
	if rest != "" && rest != ns && !strings.HasPrefix(rest, ns+".svc") {
		return fmt.Errorf("%s is not in the namespace %s", host, ns)
	}
	d := deploymentOf(m, ns, svc)
	if d == nil {
		return fmt.Errorf("no Deployment runs %s", svc)
	}
	want, err := grpcPort(d)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(m.services, func(s *corev1.Service) bool { return s.Name == name && s.Namespace == ns })
	if i < 0 {
		return fmt.Errorf("no Service is named %s", name)
	}
	s := m.services[i]
	if !selects(&metav1.LabelSelector{MatchLabels: s.Spec.Selector}, d.Spec.Template.Labels) {
		return fmt.Errorf("Service %s does not select the pods of Deployment %s", s.Name, d.Name)
	}
	if s.Spec.ClusterIP != corev1.ClusterIPNone {
		return fmt.Errorf("Service %s is not headless (clusterIP: None): its name resolves to one virtual IP, "+
			"so the gateway keeps one HTTP/2 connection to one pod and spreads none of its calls over the others", s.Name)
	}
	if s.Spec.PublishNotReadyAddresses {
		return fmt.Errorf("Service %s lists pods that are not ready (publishNotReadyAddresses), and the gateway would send them calls", s.Name)
	}
	if port != want {
		return fmt.Errorf("port %d is not %d, where the pods' --grpc listens: a headless Service's name resolves to "+
			"the pods' own addresses, and no port of the Service maps one port to another", port, want)
	}
	if !slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool { return targetPort(sp, d) == want }) {
		return fmt.Errorf("Service %s has no port to %d, where the pods' --grpc listens, so its endpoints do not list the pods on it", s.Name, want)
	}
	return nil
}

// targetPort returns the port of d's pods a Service's port sends to: its targetPort, by number or
// by the name of a container's port, or the port itself when none is given.
func targetPort(sp corev1.ServicePort, d *appsv1.Deployment) int {
	if sp.TargetPort.Type == intstr.String {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == sp.TargetPort.StrVal {
					return int(cp.ContainerPort)
				}
			}
		}
		return 0
	}
	if t := sp.TargetPort.IntValue(); t != 0 {
		return t
	}
	return int(sp.Port)
}

// servedBy reports whether a Service of m in d's namespace selects d's pods and sends one of its
// ports to their port.
func servedBy(m *manifests, d *appsv1.Deployment, port int) bool {
	return slices.ContainsFunc(m.services, func(s *corev1.Service) bool {
		return s.Namespace == d.Namespace && selects(&metav1.LabelSelector{MatchLabels: s.Spec.Selector}, d.Spec.Template.Labels) &&
			slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool { return targetPort(sp, d) == port })
	})
}

// checkBudget checks that a PodDisruptionBudget keeps a replica of the service up without
// stopping a node from ever being drained.
func checkBudget(d *appsv1.Deployment, budgets []*policyv1.PodDisruptionBudget) []error {
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	for _, b := range budgets {
		if !selects(b.Spec.Selector, d.Spec.Template.Labels) {
			continue
		}
		switch {
		case b.Spec.MinAvailable != nil && b.Spec.MinAvailable.IntValue() >= int(replicas):
			return []error{fmt.Errorf("PodDisruptionBudget %s: minAvailable %s of %d replicas of %s blocks every drain", b.Name, b.Spec.MinAvailable, replicas, d.Name)}
		case b.Spec.MaxUnavailable != nil && b.Spec.MaxUnavailable.IntValue() < 1:
			return []error{fmt.Errorf("PodDisruptionBudget %s: maxUnavailable %s blocks every drain", b.Name, b.Spec.MaxUnavailable)}
		}
	}
	return nil
}

// allowedPeer is a destination a Whistle service may reach, and on which ports.
type allowedPeer struct {
	what  string
	match func(networkingv1.NetworkPolicyPeer) bool
	ports []int
}

// podsNamed matches a peer that selects, in the policy's own namespace, the pods whose
// app.kubernetes.io/name is name.
func podsNamed(name string) func(networkingv1.NetworkPolicyPeer) bool {
	return func(p networkingv1.NetworkPolicyPeer) bool {
		return p.NamespaceSelector == nil && p.IPBlock == nil && p.PodSelector != nil &&
			len(p.PodSelector.MatchExpressions) == 0 && len(p.PodSelector.MatchLabels) == 1 &&
			p.PodSelector.MatchLabels["app.kubernetes.io/name"] == name
	}
}

// commonPeers are the destinations every Whistle process may reach, the services and the gateway.
var commonPeers = []allowedPeer{
	{what: "Redis", match: podsNamed("redis"), ports: []int{6379}},
	{what: "the collector", match: podsNamed("otel-collector"), ports: []int{4317}},
	{what: "DNS", ports: []int{53}, match: func(p networkingv1.NetworkPolicyPeer) bool {
		return p.IPBlock == nil && p.NamespaceSelector != nil && p.PodSelector != nil &&
			maps1(p.NamespaceSelector.MatchLabels, "kubernetes.io/metadata.name", "kube-system") &&
			len(p.NamespaceSelector.MatchExpressions) == 0 && len(p.PodSelector.MatchExpressions) == 0 &&
			maps1(p.PodSelector.MatchLabels, "k8s-app", "kube-dns")
	}},
}

// egressPeers are the only destinations a Whistle service may reach.
var egressPeers = append([]allowedPeer{{what: "NATS", match: podsNamed("nats"), ports: []int{4222}}}, commonPeers...)

// gatewayPeers are the only destinations the gateway may reach: each service's pods on the port
// of its gRPC API, which its Deployment in m says, and the common ones; NATS is not one of them.
func gatewayPeers(m *manifests, ns string) ([]allowedPeer, error) {
	var peers []allowedPeer
	for _, svc := range services {
		d := deploymentOf(m, ns, svc)
		if d == nil {
			return nil, fmt.Errorf("no Deployment runs %s", svc)
		}
		port, err := grpcPort(d)
		if err != nil {
			return nil, err
		}
		peers = append(peers, allowedPeer{what: "the " + svc + " service's gRPC API", ports: []int{port},
			match: func(p networkingv1.NetworkPolicyPeer) bool {
				return p.NamespaceSelector == nil && p.IPBlock == nil && p.PodSelector != nil &&
					len(p.PodSelector.MatchExpressions) == 0 && len(p.PodSelector.MatchLabels) == 2 &&
					p.PodSelector.MatchLabels["app.kubernetes.io/name"] == "whistle" &&
					p.PodSelector.MatchLabels["app.kubernetes.io/component"] == svc
			}})
	}
	return append(peers, commonPeers...), nil
}

// webhookPeer is the destination of the notification webhook a Deployment posts to (its
// --webhook-url), which only such a Deployment may reach besides egressPeers: an address block
// narrower than a /8, on the URL's port alone. ok is false when it posts to none.
func webhookPeer(d *appsv1.Deployment) (peer allowedPeer, ok bool, err error) {
	var raw string
	for _, c := range d.Spec.Template.Spec.Containers {
		if i := slices.Index(c.Args, "--webhook-url"); i >= 0 && i+1 < len(c.Args) {
			raw = c.Args[i+1]
		}
	}
	if raw == "" {
		return allowedPeer{}, false, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return allowedPeer{}, false, fmt.Errorf("--webhook-url %q is not an http or https URL", raw)
	}
	port := 443
	if u.Scheme == "http" {
		port = 80
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return allowedPeer{}, false, fmt.Errorf("--webhook-url %q: %w", raw, err)
		}
	}
	return allowedPeer{what: "the webhook", ports: []int{port}, match: func(p networkingv1.NetworkPolicyPeer) bool {
		if p.IPBlock == nil || p.PodSelector != nil || p.NamespaceSelector != nil {
			return false
		}
		_, block, err := net.ParseCIDR(p.IPBlock.CIDR)
		if err != nil {
			return false
		}
		ones, _ := block.Mask.Size()
		return ones >= 8
	}}, true, nil
}

// maps1 reports whether m is exactly {k: v}.
func maps1(m map[string]string, k, v string) bool { return len(m) == 1 && m[k] == v }

// checkEgress checks that the NetworkPolicies selecting a service's pods restrict its egress,
// and allow nothing but NATS, Redis, the collector and DNS, each on its port alone, and all
// four of them, and, for a service that posts notifications to a webhook, the webhook's address
// block on its port; and that those selecting the gateway's allow nothing but each service's
// gRPC API, Redis, the collector and DNS, and all of them. Policies add up, so every one that
// selects the pods counts.
func checkEgress(d *appsv1.Deployment, m *manifests) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("Deployment "+d.Name+": "+format, args...))
	}
	allowed, allowedText := egressPeers, "NATS, Redis, the collector, DNS or a webhook it posts to"
	if d.Spec.Template.Labels["app.kubernetes.io/component"] == gatewayName {
		var err error
		if allowed, err = gatewayPeers(m, d.Namespace); err != nil {
			bad("%v", err)
		}
		allowedText = "a service's gRPC API, Redis, the collector or DNS"
	} else {
		hook, posts, err := webhookPeer(d)
		if err != nil {
			bad("%v", err)
		}
		if posts {
			allowed = append(slices.Clone(egressPeers), hook)
		}
	}
	restricted := false
	reached := map[string]bool{}
	for _, p := range m.policies {
		if p.Namespace != d.Namespace || !selectsPods(p.Spec.PodSelector, d.Spec.Template.Labels) {
			continue
		}
		if !slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
			continue // this policy says nothing of egress
		}
		restricted = true
		for i, rule := range p.Spec.Egress {
			if len(rule.To) == 0 {
				bad("NetworkPolicy %s egress rule %d allows every destination", p.Name, i)
				continue
			}
			if len(rule.Ports) == 0 {
				bad("NetworkPolicy %s egress rule %d allows every port", p.Name, i)
			}
			for _, peer := range rule.To {
				k := slices.IndexFunc(allowed, func(a allowedPeer) bool { return a.match(peer) })
				if k < 0 {
					bad("NetworkPolicy %s egress rule %d allows %s, which is not %s", p.Name, i, describePeer(peer), allowedText)
					continue
				}
				ok := len(rule.Ports) > 0
				for _, port := range rule.Ports {
					if port.Port == nil || port.EndPort != nil || !slices.Contains(allowed[k].ports, port.Port.IntValue()) {
						bad("NetworkPolicy %s egress rule %d opens port %v of %s, want %v", p.Name, i, port.Port, allowed[k].what, allowed[k].ports)
						ok = false
					}
				}
				if ok {
					reached[allowed[k].what] = true
				}
			}
		}
	}
	if !restricted {
		bad("no NetworkPolicy restricts its egress")
		return errs
	}
	for _, a := range allowed {
		if !reached[a.what] {
			bad("its NetworkPolicies do not let it reach %s", a.what)
		}
	}
	return errs
}

// selectsPods reports whether a NetworkPolicy's podSelector, where empty selects every pod,
// selects a pod labelled lbls.
func selectsPods(sel metav1.LabelSelector, lbls map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(&sel)
	return err == nil && s.Matches(labels.Set(lbls))
}

// describePeer names a NetworkPolicy peer for a message.
func describePeer(p networkingv1.NetworkPolicyPeer) string {
	b, _ := yaml.Marshal(p)
	return strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", " ")
}

// k8sDir is deploy/k8s on disk.
func k8sDir(t *testing.T) string { return filepath.Join(deployDir(t), "k8s") }

func TestEachOverlayBuildsIntoObjectsThatKeepTheRules(t *testing.T) {
	t.Parallel()
	for _, o := range overlays {
		t.Run(o.name, func(t *testing.T) {
			t.Parallel()
			m, err := build(filesys.MakeFsOnDisk(), filepath.Join(k8sDir(t), "overlays", o.name))
			if err != nil {
				t.Fatal(err)
			}
			if errs := checkManifests(o, m); len(errs) > 0 {
				t.Errorf("overlay %s:\n%s", o.name, joinErrors(errs))
			}
		})
	}
}

func TestABrokenManifestFailsItsOverlaysCheck(t *testing.T) {
	t.Parallel()
	const (
		intake     = "base/intake.yaml"
		routing    = "base/routing.yaml"
		department = "base/department.yaml"
		escalation = "base/escalation.yaml"
		gw         = "base/gateway.yaml"
		prod       = "overlays/production"
		single     = "overlays/single-node"
	)
	tests := []struct {
		name    string
		overlay string
		edit    edit
		want    string
	}{
		{"a misspelt field", prod, edit{intake, "          readinessProbe:", "          readinesProbe:"}, `unknown field "readinesProbe"`},
		{"readiness on another path", prod, edit{routing, "          readinessProbe:\n            httpGet:\n              path: /healthz", "          readinessProbe:\n            httpGet:\n              path: /metrics"}, "container whistle is not ready by /healthz"},
		{"no readiness probe", single, edit{"overlays/single-node/redis.yaml", "          readinessProbe:\n            exec:\n              command: [\"redis-cli\", \"ping\"]\n            periodSeconds: 5\n", ""}, "StatefulSet redis: container redis has no readiness probe"},
		{"no limits", single, edit{department, "            limits:\n              cpu: \"1\"\n              memory: 1Gi\n", ""}, "Deployment whistle-department: container whistle has no cpu limit"},
		{"no requests", single, edit{escalation, "            requests:\n              cpu: 250m\n              memory: 256Mi\n", ""}, "container whistle requests no cpu"},
		{"root allowed", prod, edit{intake, "          securityContext:\n            runAsNonRoot: true", "          securityContext:\n            runAsNonRoot: false"}, "whistle-intake: container whistle may run as root"},
		{"user 0", single, edit{"overlays/single-node/redis.yaml", "runAsUser: 999", "runAsUser: 0"}, "container redis runs as user 0"},
		{"privilege escalation", prod, edit{routing, "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true"}, "may escalate its privileges"},
		{"a writable root", prod, edit{"base/otel-collector.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"}, "Deployment otel-collector: container otel-collector may write its root file system"},
		{"one replica in production", prod, edit{"overlays/production/whistle-deployment.yaml", "  replicas: 3", "  replicas: 1"}, "1 replicas, want at least 2"},
		{"no budget", prod, edit{escalation, "  minAvailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: whistle\n      app.kubernetes.io/component: escalation\n", "  minAvailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: whistle\n      app.kubernetes.io/component: escalator\n"}, "Deployment whistle-escalation: no PodDisruptionBudget selects its pods"},
		{"a budget that blocks drains", single, edit{single + "/kustomization.yaml", "      - op: remove\n        path: /spec/minAvailable\n      - op: add\n        path: /spec/maxUnavailable\n        value: 1\n", "      - op: replace\n        path: /spec/minAvailable\n        value: 1\n"}, "blocks every drain"},
		{"egress to anywhere", prod, edit{intake, "  egress:\n", "  egress:\n    - {}\n"}, "egress rule 0 allows every destination"},
		{"egress to the internet", prod, edit{routing, "  egress:\n", "  egress:\n    - to:\n        - ipBlock:\n            cidr: 0.0.0.0/0\n      ports:\n        - port: 443\n"}, "which is not NATS, Redis, the collector, DNS or a webhook it posts to"},
		{"egress unrestricted", single, edit{department, "  policyTypes: [Ingress, Egress]", "  policyTypes: [Ingress]"}, "whistle-department: no NetworkPolicy restricts its egress"},
		{"NATS unreachable", prod, edit{escalation, "    - to:\n        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: nats\n      ports:\n        - port: 4222\n          protocol: TCP\n", ""}, "whistle-escalation: its NetworkPolicies do not let it reach NATS"},
		{"a shared Redis user", prod, edit{"base/routing.yaml", "                  key: routing-url\n", "                  key: intake-url\n"}, "not routing-url of whistle-redis"},
		{"Redis on every port", prod, edit{intake, "              app.kubernetes.io/name: redis\n      ports:\n        - port: 6379\n          protocol: TCP\n", "              app.kubernetes.io/name: redis\n"}, "allows every port"},
		{"streams of three replicas on one node", single, edit{single + "/kustomization.yaml", "        path: /spec/template/spec/containers/0/args/9\n        value: \"1\"", "        path: /spec/template/spec/containers/0/args/9\n        value: \"3\""}, "other than --replicas 1"},
		{"an image without a version", prod, edit{prod + "/kustomization.yaml", `newTag: "1.0.0"`, `newTag: latest`}, "want one with a version tag"},
		{"a shared NATS user", prod, edit{routing, "            - name: WHISTLE_NATS_USER\n              value: routing", "            - name: WHISTLE_NATS_USER\n              value: tools"}, `connects to NATS as "tools"`},
		{"the gateway ready by another path", single, edit{gw, "path: /healthz", "path: /console/"}, "Deployment whistle-gateway: container whistle is not ready by /healthz"},
		{"the gateway in front of the wrong service", prod, edit{gw, `--routing-addr, "dns:///whistle-routing-pods:7070"`, `--routing-addr, "dns:///whistle-intake-pods:7070"`},
			`its --routing-addr "dns:///whistle-intake-pods:7070" does not resolve to the routing service's pods on their gRPC port: Service whistle-intake-pods does not select the pods of Deployment whistle-routing`},
		{"the gateway on a service's HTTP port", single, edit{gw, `"dns:///whistle-department-pods:7070"`, `"dns:///whistle-department-pods:7080"`}, "port 7080 is not 7070, where the pods' --grpc listens"},
		{"the gateway in front of no Service", prod, edit{gw, `"dns:///whistle-escalation-pods:7070"`, `"dns:///escalation:7070"`}, "no Service is named escalation"},
		{"the gateway through a service's ClusterIP Service", prod, edit{gw, `"dns:///whistle-intake-pods:7070"`, `"dns:///whistle-intake:7070"`},
			`its --intake-addr "dns:///whistle-intake:7070" does not resolve to the intake service's pods on their gRPC port: Service whistle-intake is not headless (clusterIP: None): its name resolves to one virtual IP, so the gateway keeps one HTTP/2 connection to one pod and spreads none of its calls over the others`},
		{"the gateway without the dns scheme", single, edit{gw, `"dns:///whistle-routing-pods:7070"`, `"whistle-routing-pods:7070"`}, "want dns:///NAME:PORT, NAME a headless Service"},
		{"a headless Service listing pods that are not ready", prod, edit{escalation, "  clusterIP: None\n", "  clusterIP: None\n  publishNotReadyAddresses: true\n"},
			"Service whistle-escalation-pods lists pods that are not ready"},
		{"a headless Service without the gRPC port", prod, edit{department, "  clusterIP: None\n  selector:\n    app.kubernetes.io/name: whistle\n    app.kubernetes.io/component: department\n  ports:\n    - name: grpc\n      port: 7070\n      targetPort: grpc\n",
			"  clusterIP: None\n  selector:\n    app.kubernetes.io/name: whistle\n    app.kubernetes.io/component: department\n  ports:\n    - name: grpc\n      port: 7070\n      targetPort: http\n"},
			"Service whistle-department-pods has no port to 7070"},
		{"the streams' patch on the gateway", single, edit{single + "/kustomization.yaml", "labelSelector: app.kubernetes.io/name=whistle,app.kubernetes.io/component!=gateway", "labelSelector: app.kubernetes.io/name=whistle"},
			`whistle-gateway: its --routing-addr "1" does not resolve to the routing service's pods on their gRPC port`},
		{"the gateway reaching NATS", prod, edit{gw, "  egress:\n", "  egress:\n    - to:\n        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: nats\n      ports:\n        - port: 4222\n"},
			"which is not a service's gRPC API, Redis, the collector or DNS"},
		{"a service out of the gateway's reach", prod, edit{gw, "        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: whistle\n              app.kubernetes.io/component: escalation\n", ""},
			"whistle-gateway: its NetworkPolicies do not let it reach the escalation service's gRPC API"},
		{"the gateway let through to the services' HTTP port", prod, edit{gw, "      ports:\n        - port: 7070\n", "      ports:\n        - port: 7080\n"}, "opens port 7080 of the intake service's gRPC API, want [7070]"},
		{"the gateway behind no Service", single, edit{gw, "  selector:\n    app.kubernetes.io/name: whistle\n    app.kubernetes.io/component: gateway\n", "  selector:\n    app.kubernetes.io/name: whistle\n    app.kubernetes.io/component: gate\n"},
			"whistle-gateway: no Service sends people to its HTTP port 7080"},
		{"the gateway with a NATS user", prod, edit{gw, "          env:\n", "          env:\n            - name: WHISTLE_NATS_USER\n              value: tools\n"}, "whistle-gateway: needs no NATS but is given WHISTLE_NATS_USER"},
		{"the gateway sharing a Redis user", prod, edit{gw, "key: gateway-url", "key: intake-url"}, "not gateway-url of whistle-redis"},
		{"the gateway given a service's flag", prod, edit{gw, "args: [serve, gateway, --data, /var/lib/whistle,", `args: [serve, gateway, --data, /var/lib/whistle, --replicas, "3",`}, "whistle-gateway: is given --replicas, a flag serve gateway refuses"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			copyTree(t, k8sDir(t), dir)
			tc.edit.apply(t, dir)
			o := overlays[slices.IndexFunc(overlays, func(o overlay) bool { return "overlays/"+o.name == tc.overlay })]
			m, err := build(filesys.MakeFsOnDisk(), filepath.Join(dir, tc.overlay))
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				got = joinErrors(checkManifests(o, m))
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("the broken overlay gave:\n%s\nwant a problem naming %q", got, tc.want)
			}
		})
	}
}

func TestTheManifestsReferOnlyToSecretsTheREADMESaysToMake(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range overlays {
		m, err := build(filesys.MakeFsOnDisk(), filepath.Join(k8sDir(t), "overlays", o.name))
		if err != nil {
			t.Fatal(err)
		}
		var pods []corev1.PodSpec
		for _, d := range m.deployments {
			pods = append(pods, d.Spec.Template.Spec)
		}
		for _, s := range m.statefulSets {
			pods = append(pods, s.Spec.Template.Spec)
		}
		for _, p := range pods {
			var names []string
			for _, c := range p.Containers {
				for _, e := range c.Env {
					if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
						names = append(names, e.ValueFrom.SecretKeyRef.Name+" "+e.ValueFrom.SecretKeyRef.Key)
					}
				}
			}
			for _, v := range p.Volumes {
				if v.Secret != nil {
					for _, it := range v.Secret.Items {
						names = append(names, v.Secret.SecretName+" "+it.Key)
					}
				}
			}
			for _, n := range names {
				secret, key, _ := strings.Cut(n, " ")
				if !strings.Contains(string(readme), "secret generic "+secret) || !strings.Contains(string(readme), "--from-literal="+key+"=") && !strings.Contains(string(readme), "--from-file="+key+"=") {
					t.Errorf("overlay %s reads key %s of the Secret %s, which README's Deploying does not make", o.name, key, secret)
				}
			}
		}
	}
}

func TestTheWebhookComponentLetsTheDepartmentAloneReachItsWebhook(t *testing.T) {
	t.Parallel()
	const (
		policy    = "components/webhook/webhook-policy.yaml"
		component = "components/webhook/kustomization.yaml"
	)
	tests := []struct {
		name string
		edit *edit
		want string // a problem the check names; empty for none
	}{
		{"as shipped", nil, ""},
		{"to every address", &edit{policy, "cidr: 203.0.113.0/24", "cidr: 0.0.0.0/0"}, "which is not NATS, Redis, the collector, DNS or a webhook it posts to"},
		{"on another port", &edit{policy, "port: 443", "port: 8443"}, "opens port 8443 of the webhook"},
		{"the webhook unreachable", &edit{component, "resources:\n  - webhook-policy.yaml\n", ""}, "whistle-department: its NetworkPolicies do not let it reach the webhook"},
		{"a way out without a webhook", &edit{component, "patches:\n  - path: webhook-deployment.yaml\n    target:\n      kind: Deployment\n      name: whistle-department\n", ""},
			"which is not NATS, Redis, the collector, DNS or a webhook it posts to"},
	}
	production := overlays[slices.IndexFunc(overlays, func(o overlay) bool { return o.name == "production" })]
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			copyTree(t, k8sDir(t), dir)
			if tc.edit != nil {
				tc.edit.apply(t, dir)
			}
			// The production overlay with the component, as a city would add it.
			overlay := filepath.Join(dir, "overlays", "production-webhook")
			if err := os.MkdirAll(overlay, 0o755); err != nil {
				t.Fatal(err)
			}
			kust := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: whistle\nresources:\n  - ../production\ncomponents:\n  - ../../components/webhook\n"
			if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kust), 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := build(filesys.MakeFsOnDisk(), overlay)
			if err != nil {
				t.Fatal(err)
			}
			got := joinErrors(checkManifests(production, m))
			switch {
			case tc.want == "" && got != "":
				t.Fatalf("the overlay with the webhook:\n%s", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Fatalf("the broken component gave:\n%s\nwant a problem naming %q", got, tc.want)
			case tc.want != "":
				return
			}
			posts := 0
			for _, d := range m.deployments {
				if _, ok, _ := webhookPeer(d); !ok {
					continue
				}
				posts++
				env := d.Spec.Template.Spec.Containers[0].Env
				signed := slices.ContainsFunc(env, func(e corev1.EnvVar) bool {
					return e.Name == "WHISTLE_WEBHOOK_SECRET" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
						e.ValueFrom.SecretKeyRef.Name == "whistle-webhook" && e.ValueFrom.SecretKeyRef.Key == "secret"
				})
				if d.Name != "whistle-department" || !signed {
					t.Errorf("Deployment %s posts to the webhook (signed with key secret of the Secret whistle-webhook: %t); want the department alone, signed", d.Name, signed)
				}
			}
			if posts != 1 {
				t.Errorf("%d Deployments post to the webhook, want the department's", posts)
			}
			readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(readme), "secret generic whistle-webhook --from-literal=secret=") {
				t.Error("README's Deploying does not say how to make the Secret whistle-webhook")
			}
		})
	}
}
