package deploy

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/strvals"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/topology"
)

// The names every manifest agrees on.
const (
	namespace = "numaspread"
	image     = "ghcr.io/numaspread/numaspread:0.1.0"
	chartDir  = "helm/numaspread"
	// The pod-template annotation with the checksum of the restart-only
	// configuration ([nri], [topology], [metrics]).
	checksumAnnotation = "checksum/restart-only-config"
)

// ---------------------------------------------------------------------------
// OpenShift objects. github.com/openshift/api is not served by the Go module
// proxy this project builds from, so these mirror the documented fields of
// the real types (machineconfiguration.openshift.io/v1 KubeletConfig and
// MachineConfig, security.openshift.io/v1 SecurityContextConstraints) that
// the manifests use or may use. Strict decoding against them catches typos in
// the manifests' own keys; it is not a check against the full OpenShift API.
// The KubeletConfig's kubeletConfig field is decoded strictly into the real
// k8s.io/kubelet KubeletConfiguration type.

type osKubeletConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		MachineConfigPoolSelector *metav1.LabelSelector `json:"machineConfigPoolSelector,omitempty"`
		KubeletConfig             *runtime.RawExtension `json:"kubeletConfig,omitempty"`
		AutoSizingReserved        *bool                 `json:"autoSizingReserved,omitempty"`
		LogLevel                  *int32                `json:"logLevel,omitempty"`
	} `json:"spec"`
}

type osMachineConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		OSImageURL      string               `json:"osImageURL,omitempty"`
		Config          runtime.RawExtension `json:"config"`
		KernelArguments []string             `json:"kernelArguments,omitempty"`
		Extensions      []string             `json:"extensions,omitempty"`
		FIPS            bool                 `json:"fips,omitempty"`
		KernelType      string               `json:"kernelType,omitempty"`
	} `json:"spec"`
}

// ignitionConfig is the part of an Ignition v3 config a MachineConfig uses here.
type ignitionConfig struct {
	Ignition struct {
		Version string `json:"version"`
	} `json:"ignition"`
	Storage struct {
		Files []struct {
			Path      string `json:"path"`
			Mode      *int   `json:"mode,omitempty"`
			Overwrite *bool  `json:"overwrite,omitempty"`
			Contents  struct {
				Source string `json:"source"`
			} `json:"contents"`
		} `json:"files"`
	} `json:"storage"`
}

type strategyType struct {
	Type string `json:"type"`
}

type osSCC struct {
	metav1.TypeMeta          `json:",inline"`
	metav1.ObjectMeta        `json:"metadata"`
	Priority                 *int32              `json:"priority"`
	AllowPrivilegedContainer bool                `json:"allowPrivilegedContainer"`
	AllowPrivilegeEscalation *bool               `json:"allowPrivilegeEscalation,omitempty"`
	AllowHostDirVolumePlugin bool                `json:"allowHostDirVolumePlugin"`
	AllowHostNetwork         bool                `json:"allowHostNetwork"`
	AllowHostPorts           bool                `json:"allowHostPorts"`
	AllowHostPID             bool                `json:"allowHostPID"`
	AllowHostIPC             bool                `json:"allowHostIPC"`
	ReadOnlyRootFilesystem   bool                `json:"readOnlyRootFilesystem"`
	RequiredDropCapabilities []corev1.Capability `json:"requiredDropCapabilities"`
	AllowedCapabilities      []corev1.Capability `json:"allowedCapabilities"`
	DefaultAddCapabilities   []corev1.Capability `json:"defaultAddCapabilities"`
	RunAsUser                strategyType        `json:"runAsUser"`
	SELinuxContext           strategyType        `json:"seLinuxContext"`
	FSGroup                  strategyType        `json:"fsGroup"`
	SupplementalGroups       strategyType        `json:"supplementalGroups"`
	SeccompProfiles          []string            `json:"seccompProfiles"`
	Volumes                  []string            `json:"volumes"`
	Users                    []string            `json:"users"`
	Groups                   []string            `json:"groups"`
}

// ---------------------------------------------------------------------------
// Loading.

// object is one decoded manifest object.
type object struct {
	apiVersion, kind, name, namespace string
	typed                             any // a pointer to the API type
}

func (o object) String() string { return o.kind + "/" + o.name }

// bundle is the set of objects one way of deploying produces.
type bundle struct {
	source string
	objs   []object
}

func (b bundle) find(kind, name string) (object, bool) {
	for _, o := range b.objs {
		if o.kind == kind && o.name == name {
			return o, true
		}
	}
	return object{}, false
}

// only returns the single object of a kind.
func (b bundle) only(t *testing.T, kind string) object {
	t.Helper()
	var out []object
	for _, o := range b.objs {
		if o.kind == kind {
			out = append(out, o)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%s: %d objects of kind %s, want 1", b.source, len(out), kind)
	}
	return out[0]
}

// newTyped returns the API type for apiVersion/kind.
func newTyped(apiVersion, kind string) (any, bool) {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return &corev1.Namespace{}, true
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1 ResourceQuota":
		return &corev1.ResourceQuota{}, true
	case "apps/v1 DaemonSet":
		return &appsv1.DaemonSet{}, true
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		return &rbacv1.ClusterRole{}, true
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		return &rbacv1.RoleBinding{}, true
	case "kubelet.config.k8s.io/v1beta1 KubeletConfiguration":
		return &kubeletv1beta1.KubeletConfiguration{}, true
	case "machineconfiguration.openshift.io/v1 KubeletConfig":
		return &osKubeletConfig{}, true
	case "machineconfiguration.openshift.io/v1 MachineConfig":
		return &osMachineConfig{}, true
	case "security.openshift.io/v1 SecurityContextConstraints":
		return &osSCC{}, true
	}
	return nil, false
}

// decode decodes one YAML document strictly: unknown and duplicate fields
// are errors.
func decode(doc []byte) (object, error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return object{}, err
	}
	typed, ok := newTyped(meta.APIVersion, meta.Kind)
	if !ok {
		return object{}, fmt.Errorf("no API type known for %s %s", meta.APIVersion, meta.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, typed); err != nil {
		return object{}, fmt.Errorf("%s %s: %w", meta.Kind, meta.Metadata.Name, err)
	}
	// The nested parts of OpenShift objects, strictly too.
	switch v := typed.(type) {
	case *osKubeletConfig:
		if v.Spec.KubeletConfig == nil {
			return object{}, fmt.Errorf("KubeletConfig %s: no spec.kubeletConfig", meta.Metadata.Name)
		}
		var kc kubeletv1beta1.KubeletConfiguration
		if err := yaml.UnmarshalStrict(v.Spec.KubeletConfig.Raw, &kc); err != nil {
			return object{}, fmt.Errorf("KubeletConfig %s: spec.kubeletConfig: %w", meta.Metadata.Name, err)
		}
	case *osMachineConfig:
		var ign ignitionConfig
		if err := yaml.UnmarshalStrict(v.Spec.Config.Raw, &ign); err != nil {
			return object{}, fmt.Errorf("MachineConfig %s: spec.config: %w", meta.Metadata.Name, err)
		}
	}
	return object{apiVersion: meta.APIVersion, kind: meta.Kind, name: meta.Metadata.Name,
		namespace: meta.Metadata.Namespace, typed: typed}, nil
}

// splitDocs splits a multi-document YAML stream, dropping empty documents.
func splitDocs(stream []byte) [][]byte {
	var out [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), stream...), []byte("\n---")) {
		// "---" may be followed by a comment or spaces on its line.
		if i := bytes.IndexByte(d, '\n'); i >= 0 && len(bytes.TrimSpace(d[:i])) > 0 && bytes.HasPrefix(bytes.TrimSpace(d[:i]), []byte("#")) {
			d = d[i:]
		}
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			out = append(out, d)
		}
	}
	return out
}

func stripComments(d []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(d, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

func decodeStream(t *testing.T, source string, stream []byte) bundle {
	t.Helper()
	b := bundle{source: source}
	for _, doc := range splitDocs(stream) {
		o, err := decode(doc)
		if err != nil {
			t.Fatalf("%s: %v\n%s", source, err, doc)
		}
		if _, dup := b.find(o.kind, o.name); dup {
			t.Fatalf("%s: %s twice", source, o)
		}
		b.objs = append(b.objs, o)
	}
	return b
}

// kustomize builds a kustomization folder under kubernetes/ with
// kustomize's own library.
func kustomize(t *testing.T, dir string) bundle {
	t.Helper()
	return kustomizePath(t, filepath.Join("kubernetes", dir), "kustomize "+dir)
}

func kustomizePath(t *testing.T, path, source string) bundle {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), path)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", path, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decodeStream(t, source, out)
}

// kustomizeOverlay builds an overlay of an operator's own, in a temporary
// folder: resources and components are folders under kubernetes/.
func kustomizeOverlay(t *testing.T, resources, components []string) bundle {
	t.Helper()
	dir := t.TempDir()
	// Relative paths: kustomize refuses absolute ones.
	rel := func(dirs []string) string {
		var b strings.Builder
		for _, d := range dirs {
			p, err := filepath.Abs(filepath.Join("kubernetes", d))
			if err == nil {
				p, err = filepath.Rel(dir, p)
			}
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString("  - " + p + "\n")
		}
		return b.String()
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n" + rel(resources) +
		"components:\n" + rel(components)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	return kustomizePath(t, dir, "kustomize "+strings.Join(append(resources, components...), " + "))
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return ch
}

// renderHelm renders the chart as `helm template RELEASE -n numaspread`
// does: values coalesced over values.yaml and checked against
// values.schema.json, then the templates rendered by Helm's engine in strict
// mode (a missing value is an error).
func renderHelm(t *testing.T, release string, values map[string]any) (bundle, error) {
	t.Helper()
	return renderChart(t, loadChart(t), release, values)
}

// renderChart is renderHelm with a chart the test may have changed.
func renderChart(t *testing.T, ch *chart.Chart, release string, values map[string]any) (bundle, error) {
	t.Helper()
	// Helm's built-in default is an old Kubernetes; render for the one
	// whose API types (k8s.io/api v0.37) the tests decode with.
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = chartutil.KubeVersion{Version: "v1.37.0", Major: "1", Minor: "37"}
	if !chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, caps.KubeVersion.String()) {
		t.Fatalf("chart kubeVersion %s excludes %s", ch.Metadata.KubeVersion, caps.KubeVersion)
	}
	vals, err := chartutil.ToRenderValues(ch, values, chartutil.ReleaseOptions{
		Name: release, Namespace: namespace, Revision: 1, IsInstall: true}, caps)
	if err != nil {
		return bundle{}, err
	}
	files, err := engine.Engine{Strict: true}.Render(ch, vals)
	if err != nil {
		return bundle{}, err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var stream bytes.Buffer
	for _, n := range names {
		if !strings.HasSuffix(n, ".yaml") {
			continue // NOTES.txt, _helpers.tpl
		}
		stream.WriteString("\n---\n" + files[n])
	}
	source := "helm " + release
	if len(values) > 0 {
		source += " (" + strings.Join(keys(values), ", ") + ")"
	}
	return decodeStream(t, source, stream.Bytes()), nil
}

func mustRenderHelm(t *testing.T, release string, values map[string]any) bundle {
	t.Helper()
	b, err := renderHelm(t, release, values)
	if err != nil {
		t.Fatalf("helm render: %v", err)
	}
	return b
}

// ---------------------------------------------------------------------------
// What every deployment must look like.

// want is what one bundle is expected to deploy.
type want struct {
	name        string // object name prefix (the Helm release's fullname)
	config      config.Config
	metricsPort int // 0: metrics off
	socketDir   string
	hostSysfs   string // the host's sysfs; its devices/system is mounted
	openshift   bool
	seLinuxType string // the pod's SELinux type, "" for none
	image       string
}

// defaultWant is the base: every key at its default, sysfs where the
// DaemonSet mounts the host's.
func defaultWant(t *testing.T) want {
	cfg, err := config.Default().With("topology.sysfs", "/host/sys")
	if err != nil {
		t.Fatal(err)
	}
	return want{name: "numaspread", config: cfg, socketDir: "/var/run/nri", hostSysfs: "/sys", image: image}
}

// withMetrics: metrics on at port. The address is a flag
// (--metrics-address), so the ConfigMap is the same with metrics on or off
// and an operator edits one file whichever way it is deployed.
func (w want) withMetrics(port int) want {
	w.metricsPort = port
	return w
}

// checkBundle asserts everything the issue asks of a deployment.
func checkBundle(t *testing.T, b bundle, w want) {
	t.Helper()
	for _, o := range b.objs {
		clusterScoped := map[string]bool{"Namespace": true, "ClusterRole": true, "KubeletConfig": true,
			"MachineConfig": true, "SecurityContextConstraints": true}[o.kind]
		if clusterScoped && o.namespace != "" {
			t.Errorf("%s: cluster-scoped %s has namespace %q", b.source, o, o.namespace)
		}
		if !clusterScoped && o.namespace != namespace {
			t.Errorf("%s: %s is in namespace %q, want %q", b.source, o, o.namespace, namespace)
		}
		if o.kind == "Role" || o.kind == "ClusterRoleBinding" || (o.kind == "ClusterRole" && !w.openshift) {
			t.Errorf("%s: %s: numaspread needs no RBAC", b.source, o)
		}
	}

	dsObj := b.only(t, "DaemonSet")
	ds := dsObj.typed.(*appsv1.DaemonSet)
	pod := ds.Spec.Template.Spec
	src := b.source
	// The names: the DaemonSet and its ServiceAccount are the release's
	// fullname, its ConfigMap that with -config.
	if ds.Name != w.name || pod.ServiceAccountName != w.name {
		t.Errorf("%s: DaemonSet %q, ServiceAccount %q, want both named %q", src, ds.Name, pod.ServiceAccountName, w.name)
	}

	// Selection and scheduling.
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labelSet(ds.Spec.Template.Labels)) {
		t.Errorf("%s: selector %v does not select the pod template's labels %v", src, ds.Spec.Selector, ds.Spec.Template.Labels)
	}
	if pod.PriorityClassName != "system-node-critical" {
		t.Errorf("%s: priorityClassName %q", src, pod.PriorityClassName)
	}
	if pod.NodeSelector["numaspread.io/enabled"] != "true" || pod.NodeSelector["kubernetes.io/os"] != "linux" {
		t.Errorf("%s: nodeSelector %v: nodes must opt in with numaspread.io/enabled=true", src, pod.NodeSelector)
	}
	if len(pod.Tolerations) != 1 || pod.Tolerations[0].Operator != corev1.TolerationOpExists || pod.Tolerations[0].Key != "" {
		t.Errorf("%s: tolerations %v, want one that tolerates every taint", src, pod.Tolerations)
	}
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType ||
		ds.Spec.UpdateStrategy.RollingUpdate == nil || ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable == nil ||
		*ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable != intstr.FromInt32(1) {
		t.Errorf("%s: updateStrategy %+v", src, ds.Spec.UpdateStrategy)
	}

	// No API access, no host namespaces.
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: the pod mounts a service account token", src)
	}
	saObj, ok := b.find("ServiceAccount", pod.ServiceAccountName)
	if !ok {
		t.Errorf("%s: ServiceAccount %q is not deployed", src, pod.ServiceAccountName)
	} else if sa := saObj.typed.(*corev1.ServiceAccount); sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("%s: ServiceAccount %s mounts a token", src, sa.Name)
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("%s: host namespaces: network %v pid %v ipc %v", src, pod.HostNetwork, pod.HostPID, pod.HostIPC)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.SeccompProfile == nil ||
		pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: the pod's seccomp profile is not RuntimeDefault", src)
	}
	gotSELinux := ""
	if pod.SecurityContext != nil && pod.SecurityContext.SELinuxOptions != nil {
		o := *pod.SecurityContext.SELinuxOptions
		gotSELinux = o.Type
		if o.User != "" || o.Role != "" || o.Level != "" {
			t.Errorf("%s: SELinux options %+v, want a type only", src, o)
		}
	}
	if w.openshift && w.seLinuxType == "" {
		w.seLinuxType = "spc_t"
	}
	if gotSELinux != w.seLinuxType {
		t.Errorf("%s: SELinux type %q, want %q", src, gotSELinux, w.seLinuxType)
	}

	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("%s: %d containers, %d init containers; want 1, 0", src, len(pod.Containers), len(pod.InitContainers))
	}
	c := pod.Containers[0]
	if c.Image != w.image {
		t.Errorf("%s: image %q, want %q", src, c.Image, w.image)
	}
	wantArgs := []string{"run", "--config=/etc/numaspread/config.toml"}
	if w.metricsPort != 0 {
		wantArgs = append(wantArgs, "--metrics-address=:"+strconv.Itoa(w.metricsPort))
	}
	if !reflect.DeepEqual(c.Args, wantArgs) || len(c.Command) != 0 {
		t.Errorf("%s: command %q args %q, want args %q", src, c.Command, c.Args, wantArgs)
	}

	// The container's security context.
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatalf("%s: no container securityContext", src)
	case sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.RunAsNonRoot == nil || *sc.RunAsNonRoot:
		t.Errorf("%s: runAsUser %v runAsNonRoot %v: the NRI socket is root-only, so root (runAsNonRoot false) it is", src, sc.RunAsUser, sc.RunAsNonRoot)
	case sc.Privileged == nil || *sc.Privileged:
		t.Errorf("%s: privileged", src)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("%s: allowPrivilegeEscalation is not false", src)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("%s: readOnlyRootFilesystem is not true", src)
	case sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0:
		t.Errorf("%s: capabilities %+v, want drop [ALL] and no add", src, sc.Capabilities)
	}

	// Resources: requests, a memory limit, no CPU limit (throttling).
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: resources %v: want CPU and memory requests and a memory limit", src, c.Resources)
	}
	if _, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		t.Errorf("%s: a CPU limit would throttle NRI replies", src)
	}
	if c.Resources.Limits.Memory().Cmp(*c.Resources.Requests.Memory()) < 0 {
		t.Errorf("%s: memory limit below the request", src)
	}

	// NODE_NAME from the downward API.
	var nodeName *corev1.EnvVar
	for i := range c.Env {
		if c.Env[i].Name == "NODE_NAME" {
			nodeName = &c.Env[i]
		}
	}
	if nodeName == nil || nodeName.ValueFrom == nil || nodeName.ValueFrom.FieldRef == nil || nodeName.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("%s: NODE_NAME is not spec.nodeName from the downward API: %+v", src, nodeName)
	}

	// Volumes: exactly the socket folder, /sys/devices/system and the
	// ConfigMap, all read-only.
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
		if !m.ReadOnly {
			t.Errorf("%s: mount %s at %s is writable", src, m.Name, m.MountPath)
		}
		if m.SubPath != "" {
			t.Errorf("%s: mount %s uses subPath, which never sees updates", src, m.Name)
		}
		if m.MountPropagation != nil && *m.MountPropagation != corev1.MountPropagationNone {
			t.Errorf("%s: mount %s propagates mounts", src, m.Name)
		}
	}
	if len(vols) != 3 || len(mounts) != 3 {
		t.Errorf("%s: volumes %v mounts %v, want nri-socket, sysfs, config", src, keys(vols), keys(mounts))
	}
	checkHostPath(t, src, vols["nri-socket"], mounts["nri-socket"], w.socketDir, w.socketDir, corev1.HostPathDirectoryOrCreate)
	// Not all of /sys: a read-only bind mount is not recursive, and /sys has
	// writable submounts (/sys/fs/cgroup, ...). devices/system is all that
	// discovery reads (TestSysfsMountCoversDiscovery).
	checkHostPath(t, src, vols["sysfs"], mounts["sysfs"], filepath.Join(w.hostSysfs, "devices/system"), "/host/sys/devices/system", corev1.HostPathDirectory)
	cmVol := vols["config"]
	if cmVol.ConfigMap == nil || mounts["config"].MountPath != "/etc/numaspread" {
		t.Fatalf("%s: the config volume %+v is not a ConfigMap mounted at /etc/numaspread", src, cmVol)
	}
	if cmVol.ConfigMap.Name != w.name+"-config" {
		t.Errorf("%s: the config volume mounts ConfigMap %q, want %q", src, cmVol.ConfigMap.Name, w.name+"-config")
	}

	// The ConfigMap's TOML parses with the project's own parser, equals what
	// is expected, and agrees with the mounts.
	cmObj, ok := b.find("ConfigMap", cmVol.ConfigMap.Name)
	if !ok {
		t.Fatalf("%s: ConfigMap %s is not deployed", src, cmVol.ConfigMap.Name)
	}
	cm := cmObj.typed.(*corev1.ConfigMap)
	if len(cm.Data) != 1 || len(cm.BinaryData) != 0 {
		t.Errorf("%s: ConfigMap %s has keys %v, want config.toml only", src, cm.Name, keys(cm.Data))
	}
	text, ok := cm.Data["config.toml"]
	if !ok {
		t.Fatalf("%s: ConfigMap %s has no config.toml", src, cm.Name)
	}
	cfg, err := config.Parse("ConfigMap "+cm.Name+" config.toml", []byte(text))
	if err != nil {
		t.Fatalf("%s: the ConfigMap's TOML does not parse: %v\n%s", src, err, text)
	}
	if !cfg.Equal(w.config) {
		t.Errorf("%s: the ConfigMap's configuration differs from the expected one: %q", src, config.Diff(w.config, cfg))
	}
	if filepath.Dir(cfg.NRI.Socket) != mounts["nri-socket"].MountPath {
		t.Errorf("%s: nri.socket %s is not in the mounted socket folder %s", src, cfg.NRI.Socket, mounts["nri-socket"].MountPath)
	}
	if filepath.Join(cfg.Topology.Sysfs, "devices/system") != mounts["sysfs"].MountPath {
		t.Errorf("%s: topology.sysfs %s does not hold the mounted devices/system (%s)", src, cfg.Topology.Sysfs, mounts["sysfs"].MountPath)
	}

	// Metrics: a named port, the probes and scrape annotations exactly when on.
	if w.metricsPort == 0 {
		if len(c.Ports) != 0 || c.LivenessProbe != nil || c.ReadinessProbe != nil || c.StartupProbe != nil {
			t.Errorf("%s: metrics are off but the container has ports %v or probes", src, c.Ports)
		}
		if _, ok := ds.Spec.Template.Annotations["prometheus.io/scrape"]; ok {
			t.Errorf("%s: scrape annotation with metrics off", src)
		}
		return
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || int(c.Ports[0].ContainerPort) != w.metricsPort ||
		c.Ports[0].Protocol != corev1.ProtocolTCP || c.Ports[0].HostPort != 0 {
		t.Errorf("%s: ports %+v, want metrics %d/TCP, no host port", src, c.Ports, w.metricsPort)
	}
	checkProbe(t, src, "liveness", c.LivenessProbe, "/healthz")
	checkProbe(t, src, "readiness", c.ReadinessProbe, "/readyz")
	a := ds.Spec.Template.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(w.metricsPort) || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("%s: scrape annotations %v", src, a)
	}
}

func checkHostPath(t *testing.T, src string, v corev1.Volume, m corev1.VolumeMount, host, mountPath string, typ corev1.HostPathType) {
	t.Helper()
	if v.HostPath == nil || v.HostPath.Path != host || v.HostPath.Type == nil || *v.HostPath.Type != typ {
		t.Errorf("%s: volume %s is %+v, want hostPath %s (%s)", src, v.Name, v.VolumeSource.HostPath, host, typ)
	}
	if m.MountPath != mountPath || !m.ReadOnly {
		t.Errorf("%s: volume %s is mounted at %s (read-only %v), want %s read-only", src, v.Name, m.MountPath, m.ReadOnly, mountPath)
	}
}

func checkProbe(t *testing.T, src, what string, p *corev1.Probe, path string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: no HTTP %s probe", src, what)
		return
	}
	if p.HTTPGet.Path != path || p.HTTPGet.Port != intstr.FromString("metrics") || p.HTTPGet.Host != "" ||
		(p.HTTPGet.Scheme != "" && p.HTTPGet.Scheme != corev1.URISchemeHTTP) {
		t.Errorf("%s: %s probe %+v, want GET %s on port \"metrics\"", src, what, p.HTTPGet, path)
	}
	if p.TimeoutSeconds < 1 || p.PeriodSeconds < 1 || p.FailureThreshold < 1 {
		t.Errorf("%s: %s probe timing %+v", src, what, p)
	}
}

type labelSet map[string]string

func (l labelSet) Has(k string) bool              { _, ok := l[k]; return ok }
func (l labelSet) Get(k string) string            { return l[k] }
func (l labelSet) Lookup(k string) (string, bool) { v, ok := l[k]; return v, ok }

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ---------------------------------------------------------------------------
// Tests.

// TestEveryManifestDecodesStrictly decodes every YAML file under
// kubernetes/ (patches too) into the API types, unknown fields failing.
func TestEveryManifestDecodesStrictly(t *testing.T) {
	n := 0
	err := filepath.WalkDir("kubernetes", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if d.Name() == "kustomization.yaml" {
			return nil // krusty reads these in the tests below
		}
		b := decodeStream(t, p, data)
		if len(b.objs) == 0 {
			t.Errorf("%s: no objects", p)
		}
		n += len(b.objs)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("decoded only %d objects", n)
	}
}

func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec: {template: {spec: {hostNetwrok: true}}}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n",
		"apiVersion: machineconfiguration.openshift.io/v1\nkind: KubeletConfig\nmetadata: {name: x}\nspec: {kubeletConfig: {cpuManagerPolcy: none}}\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
	} {
		if _, err := decode([]byte(doc)); err == nil {
			t.Errorf("decoded without error:\n%s", doc)
		}
	}
}

func TestKustomizeBase(t *testing.T) {
	b := kustomize(t, "base")
	checkBundle(t, b, defaultWant(t))
	ns := b.only(t, "Namespace").typed.(*corev1.Namespace)
	if ns.Name != namespace || ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("namespace %s labels %v: host paths need the privileged Pod Security level", ns.Name, ns.Labels)
	}
	if got := kindsOf(b); !reflect.DeepEqual(got, []string{"ConfigMap", "DaemonSet", "Namespace", "ServiceAccount"}) {
		t.Errorf("base objects %v", got)
	}
}

func TestKustomizeMetricsOverlay(t *testing.T) {
	b := kustomize(t, "overlays/metrics")
	checkBundle(t, b, defaultWant(t).withMetrics(9464))
}

func TestKustomizeOpenShiftOverlay(t *testing.T) {
	b := kustomize(t, "overlays/openshift")
	w := defaultWant(t)
	w.openshift = true
	checkBundle(t, b, w)
	checkOpenShift(t, b, "numaspread", "numaspread", map[string]string{"custom-kubelet": "numaspread"})
}

// checkOpenShift checks the OpenShift objects: the kubelet prerequisites,
// CRI-O's NRI switch, and an SCC that admits the pod and grants no more.
func checkOpenShift(t *testing.T, b bundle, name, sa string, poolSelector map[string]string) {
	t.Helper()
	kcObj := b.only(t, "KubeletConfig").typed.(*osKubeletConfig)
	var kc kubeletv1beta1.KubeletConfiguration
	if err := yaml.UnmarshalStrict(kcObj.Spec.KubeletConfig.Raw, &kc); err != nil {
		t.Fatal(err)
	}
	if kc.CPUManagerPolicy != "none" || kc.MemoryManagerPolicy != "None" {
		t.Errorf("%s: KubeletConfig sets cpuManagerPolicy %q memoryManagerPolicy %q", b.source, kc.CPUManagerPolicy, kc.MemoryManagerPolicy)
	}
	if kcObj.Spec.MachineConfigPoolSelector == nil || !reflect.DeepEqual(kcObj.Spec.MachineConfigPoolSelector.MatchLabels, poolSelector) {
		t.Errorf("%s: KubeletConfig pool selector %v", b.source, kcObj.Spec.MachineConfigPoolSelector)
	}

	mc := b.only(t, "MachineConfig").typed.(*osMachineConfig)
	if mc.Labels["machineconfiguration.openshift.io/role"] != "worker" {
		t.Errorf("%s: MachineConfig role %v", b.source, mc.Labels)
	}
	var ign ignitionConfig
	if err := yaml.UnmarshalStrict(mc.Spec.Config.Raw, &ign); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ign.Ignition.Version, "3.") || len(ign.Storage.Files) != 1 {
		t.Fatalf("%s: MachineConfig ignition %+v", b.source, ign)
	}
	f := ign.Storage.Files[0]
	crio, err := os.ReadFile("runtime/crio-nri.conf")
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "data:text/plain;charset=utf-8;base64,"
	data, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(f.Contents.Source, prefix))
	if !strings.HasPrefix(f.Contents.Source, prefix) || err != nil || !bytes.Equal(data, crio) {
		t.Errorf("%s: MachineConfig file is not runtime/crio-nri.conf (err %v)", b.source, err)
	}
	if !strings.HasPrefix(f.Path, "/etc/crio/crio.conf.d/") || f.Mode == nil || *f.Mode != 0o644 {
		t.Errorf("%s: MachineConfig file %s mode %v", b.source, f.Path, f.Mode)
	}

	scc := b.only(t, "SecurityContextConstraints").typed.(*osSCC)
	if scc.Name != name || scc.AllowPrivilegedContainer || scc.AllowPrivilegeEscalation == nil || *scc.AllowPrivilegeEscalation ||
		scc.AllowHostNetwork || scc.AllowHostPID || scc.AllowHostIPC || scc.AllowHostPorts || !scc.AllowHostDirVolumePlugin ||
		!reflect.DeepEqual(scc.RequiredDropCapabilities, []corev1.Capability{"ALL"}) || len(scc.AllowedCapabilities) != 0 ||
		scc.SELinuxContext.Type != "RunAsAny" || scc.RunAsUser.Type != "RunAsAny" || len(scc.Users)+len(scc.Groups) != 0 {
		t.Errorf("%s: SCC %+v", b.source, scc)
	}
	role, ok := b.find("ClusterRole", name+"-scc")
	if !ok {
		t.Fatalf("%s: no ClusterRole %s-scc", b.source, name)
	}
	rules := role.typed.(*rbacv1.ClusterRole).Rules
	if len(rules) != 1 || !reflect.DeepEqual(rules[0].Verbs, []string{"use"}) ||
		!reflect.DeepEqual(rules[0].ResourceNames, []string{name}) || !reflect.DeepEqual(rules[0].Resources, []string{"securitycontextconstraints"}) {
		t.Errorf("%s: the SCC role grants %+v, want only use of SCC %s", b.source, rules, name)
	}
	rbObj, ok := b.find("RoleBinding", name+"-scc")
	if !ok {
		t.Fatalf("%s: no RoleBinding %s-scc", b.source, name)
	}
	rb := rbObj.typed.(*rbacv1.RoleBinding)
	if rb.RoleRef.Kind != "ClusterRole" || rb.RoleRef.Name != name+"-scc" || len(rb.Subjects) != 1 ||
		rb.Subjects[0].Kind != "ServiceAccount" || rb.Subjects[0].Name != sa || rb.Subjects[0].Namespace != namespace {
		t.Errorf("%s: RoleBinding %+v", b.source, rb)
	}
}

func kindsOf(b bundle) []string {
	var out []string
	for _, o := range b.objs {
		out = append(out, o.kind)
	}
	sort.Strings(out)
	return out
}

func TestHelmDefault(t *testing.T) {
	checkBundle(t, mustRenderHelm(t, "numaspread", nil), defaultWant(t))
}

func TestHelmMetrics(t *testing.T) {
	b := mustRenderHelm(t, "numaspread", map[string]any{"metrics": map[string]any{"enabled": true}})
	checkBundle(t, b, defaultWant(t).withMetrics(9464))
}

func TestHelmOpenShift(t *testing.T) {
	b := mustRenderHelm(t, "numaspread", map[string]any{"openshift": map[string]any{"enabled": true}})
	w := defaultWant(t)
	w.openshift = true
	checkBundle(t, b, w)
	checkOpenShift(t, b, "numaspread", "numaspread", map[string]string{"custom-kubelet": "numaspread"})
}

// TestHelmValues sets every config key, the plugin index (as a number, as
// --set gives it), the image, the socket, the metrics port and the
// scheduling values, and checks they all arrive.
func TestHelmValues(t *testing.T) {
	values := map[string]any{
		"image": map[string]any{"repository": "registry.example/numaspread", "tag": "v9", "pullPolicy": "Always"},
		"config": map[string]any{
			"nri": map[string]any{"socket": "/run/containerd/nri/nri.sock", "plugin_name": "spread", "plugin_index": 5},
			"policy": map[string]any{
				"mode": "packed", "spread": "minimal", "max_numa_nodes": 2, "full_cores": "require",
				"reserved_cpus": "0,1", "strict_reserved": true, "allowed_cpus": "0-31", "min_shared_cpus": 2,
				"memory": "all", "on_insufficient": "shared", "annotations": false,
			},
			"log": map[string]any{"level": "debug", "format": "json"},
		},
		"metrics":      map[string]any{"enabled": true, "port": 9500, "prometheusAnnotations": true},
		"hostSysfs":    "/host-sys",
		"nodeSelector": map[string]any{"numaspread.io/enabled": "true", "pool": "numa"},
		"resources": map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "96Mi"},
			"limits": map[string]any{"memory": "512Mi"}},
		"podAnnotations": map[string]any{"example.com/team": "infra"},
	}
	b := mustRenderHelm(t, "prod", values)

	w := want{name: "prod-numaspread", socketDir: "/run/containerd/nri", hostSysfs: "/host-sys",
		image: "registry.example/numaspread:v9"}
	cfg := config.Default()
	for _, kv := range [][2]string{
		{"nri.socket", "/run/containerd/nri/nri.sock"}, {"nri.plugin_name", "spread"}, {"nri.plugin_index", "05"},
		{"topology.sysfs", "/host/sys"},
		{"policy.mode", "packed"}, {"policy.spread", "minimal"}, {"policy.max_numa_nodes", "2"},
		{"policy.full_cores", "require"}, {"policy.reserved_cpus", "0-1"}, {"policy.strict_reserved", "true"},
		{"policy.allowed_cpus", "0-31"}, {"policy.min_shared_cpus", "2"}, {"policy.memory", "all"},
		{"policy.on_insufficient", "shared"}, {"policy.annotations", "false"},
		{"log.level", "debug"}, {"log.format", "json"},
	} {
		var err error
		if cfg, err = cfg.With(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	w.config = cfg
	w = w.withMetrics(9500)
	checkBundle(t, b, w)

	ds := b.only(t, "DaemonSet").typed.(*appsv1.DaemonSet)
	if ds.Name != "prod-numaspread" || ds.Spec.Template.Spec.ServiceAccountName != "prod-numaspread" {
		t.Errorf("names %s / %s", ds.Name, ds.Spec.Template.Spec.ServiceAccountName)
	}
	c := ds.Spec.Template.Spec.Containers[0]
	if c.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("pull policy %s", c.ImagePullPolicy)
	}
	if q := c.Resources.Limits[corev1.ResourceMemory]; q.Cmp(resource.MustParse("512Mi")) != 0 {
		t.Errorf("memory limit %s", q.String())
	}
	if ds.Spec.Template.Spec.NodeSelector["pool"] != "numa" {
		t.Errorf("nodeSelector %v", ds.Spec.Template.Spec.NodeSelector)
	}
	if ds.Spec.Template.Annotations["example.com/team"] != "infra" {
		t.Errorf("pod annotations %v", ds.Spec.Template.Annotations)
	}
}

// TestHelmSchemaRejects shows values.schema.json stopping bad values at
// install time, before any node sees them.
func TestHelmSchemaRejects(t *testing.T) {
	for name, values := range map[string]map[string]any{
		"unknown config key": {"config": map[string]any{"policy": map[string]any{"spred": "all"}}},
		"bad choice":         {"config": map[string]any{"policy": map[string]any{"mode": "fast"}}},
		"bad cpulist":        {"config": map[string]any{"policy": map[string]any{"reserved_cpus": "zero"}}},
		"bad index":          {"config": map[string]any{"nri": map[string]any{"plugin_index": "100"}}},
		"index out of range": {"config": map[string]any{"nri": map[string]any{"plugin_index": 100}}},
		"relative socket":    {"config": map[string]any{"nri": map[string]any{"socket": "nri.sock"}}},
		"metrics.address":    {"config": map[string]any{"metrics": map[string]any{"address": ":1"}}},
		"unknown top key":    {"metrcs": map[string]any{"enabled": true}},
		"bad port":           {"metrics": map[string]any{"port": 0}},
		// null deletes the key when Helm coalesces values (--set k=null).
		"config key removed": {"config": map[string]any{"policy": map[string]any{"memory": nil}}},
		"negative cpu":       {"config": map[string]any{"policy": map[string]any{"reserved_cpus": -1}}},
		"bad SELinux type":   {"seLinuxType": "system_u:system_r:spc_t:s0"},
		"quota pods":         {"priorityClassQuota": map[string]any{"pods": "lots"}},
		// Two numaspread pods on a node would both set cpusets.
		"maxSurge":          {"updateStrategy": map[string]any{"rollingUpdate": map[string]any{"maxSurge": 1}}},
		"maxSurge only":     {"updateStrategy": map[string]any{"rollingUpdate": map[string]any{"maxSurge": "100%", "maxUnavailable": nil}}},
		"Recreate":          {"updateStrategy": map[string]any{"type": "Recreate"}},
		"maxUnavailable 0":  {"updateStrategy": map[string]any{"rollingUpdate": map[string]any{"maxUnavailable": 0}}},
		"maxUnavailable 0%": {"updateStrategy": map[string]any{"rollingUpdate": map[string]any{"maxUnavailable": "0%"}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := renderHelm(t, "numaspread", values); err == nil || !strings.Contains(err.Error(), "schema") {
				t.Errorf("rendered, or failed for another reason: %v", err)
			}
		})
	}
}

// TestHelmMissingConfigKey: `helm upgrade --reuse-values` renders a newer
// chart with the previous release's values, which lack the keys the newer
// chart added. Every config key is required: the schema refuses its
// absence, and so do the templates when the schema is not consulted, with a
// message that names the key and the way out; neither renders `key = null`.
func TestHelmMissingConfigKey(t *testing.T) {
	cfg := loadChart(t).Values["config"].(map[string]any)
	n := 0
	for _, section := range keys(cfg) {
		for _, key := range keys(cfg[section].(map[string]any)) {
			n++
			name := "config." + section + "." + key
			t.Run(name, func(t *testing.T) {
				// The old values as --reuse-values hands them over: the chart's
				// own values replaced by ones without the key.
				ch := loadChart(t)
				delete(ch.Values["config"].(map[string]any)[section].(map[string]any), key)
				_, err := renderChart(t, ch, "numaspread", nil)
				if err == nil || !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), key) {
					t.Errorf("with the schema: rendered, or an error not naming %s: %v", key, err)
				}
				ch.Schema = nil
				_, err = renderChart(t, ch, "numaspread", nil)
				if err == nil || !strings.Contains(err.Error(), name+" is missing") || !strings.Contains(err.Error(), "--reset-then-reuse-values") {
					t.Errorf("without the schema: rendered, or an error not naming %s: %v", name, err)
				}
			})
		}
	}
	if n != 16 {
		t.Errorf("%d config keys in values.yaml, want 16 (numaspread.checkConfig lists them)", n)
	}
}

// TestHelmValuesOfChart010: the top-level keys added after chart 0.1.0 are
// optional, so that an upgrade with the old release's values (which lack
// them) still renders, with them off.
func TestHelmValuesOfChart010(t *testing.T) {
	ch := loadChart(t)
	for _, k := range []string{"seLinuxType", "priorityClassQuota"} {
		if _, ok := ch.Values[k]; !ok {
			t.Fatalf("values.yaml has no %s", k)
		}
		delete(ch.Values, k)
	}
	b, err := renderChart(t, ch, "numaspread", nil)
	if err != nil {
		t.Fatal(err)
	}
	checkBundle(t, b, defaultWant(t))
}

// TestHelmRestartOnlyChecksum: the pod template carries a checksum of the
// configuration numaspread reads only at start ([nri], [topology]), so that
// `helm upgrade` changing one of them rolls the pods; [policy] and [log]
// changes leave the pod template alone and reload in place. Metrics are a
// flag (--metrics-address) of the pod template itself.
func TestHelmRestartOnlyChecksum(t *testing.T) {
	sum := func(values map[string]any) string {
		t.Helper()
		ds := mustRenderHelm(t, "numaspread", values).only(t, "DaemonSet").typed.(*appsv1.DaemonSet)
		s := ds.Spec.Template.Annotations[checksumAnnotation]
		if len(s) != 64 {
			t.Errorf("annotation %s = %q, want a sha256", checksumAnnotation, s)
		}
		return s
	}
	set := func(section, key string, v any) map[string]any {
		return map[string]any{"config": map[string]any{section: map[string]any{key: v}}}
	}
	base := sum(nil)
	for _, c := range []struct {
		name    string
		values  map[string]any
		changes bool
	}{
		{"nri.plugin_index", set("nri", "plugin_index", "91"), true},
		{"nri.plugin_index, the same index as a number", set("nri", "plugin_index", 90), false},
		{"nri.plugin_name", set("nri", "plugin_name", "spread"), true},
		{"nri.socket", set("nri", "socket", "/run/containerd/nri/nri.sock"), true},
		{"metrics.enabled (a flag, not the checksum)", map[string]any{"metrics": map[string]any{"enabled": true}}, false},
		{"policy.mode", set("policy", "mode", "packed"), false},
		{"policy.reserved_cpus", set("policy", "reserved_cpus", "0-1"), false},
		{"policy.memory", set("policy", "memory", "all"), false},
		{"log.level", set("log", "level", "debug"), false},
		{"podAnnotations", map[string]any{"podAnnotations": map[string]any{"team": "infra"}}, false},
	} {
		if got := sum(c.values); (got != base) != c.changes {
			t.Errorf("%s: checksum changed %v, want %v", c.name, got != base, c.changes)
		}
	}
	args := func(values map[string]any) []string {
		return mustRenderHelm(t, "numaspread", values).only(t, "DaemonSet").typed.(*appsv1.DaemonSet).Spec.Template.Spec.Containers[0].Args
	}
	on := map[string]any{"metrics": map[string]any{"enabled": true}}
	port := map[string]any{"metrics": map[string]any{"enabled": true, "port": 9500}}
	if reflect.DeepEqual(args(on), args(port)) || reflect.DeepEqual(args(nil), args(on)) {
		t.Error("metrics.enabled and metrics.port do not change the pod template's args")
	}
}

// TestHelmSetCPULists: --set gives a bare number as a number, which the
// schema accepts for the cpulists and the chart renders as a string;
// --set-string with an escaped comma gives a list.
func TestHelmSetCPULists(t *testing.T) {
	for _, c := range []struct {
		set, setString []string
		file           map[string]any // as from a values file (numbers are float64)
		reserved       string
		allowed        string
	}{
		{set: []string{"config.policy.reserved_cpus=2"}, reserved: "2"},
		{set: []string{"config.policy.allowed_cpus=0-31", "config.policy.reserved_cpus=0"}, reserved: "0", allowed: "0-31"},
		{setString: []string{`config.policy.reserved_cpus=0\,8`}, reserved: "0,8"},
		{file: map[string]any{"config": map[string]any{"policy": map[string]any{"reserved_cpus": float64(3), "allowed_cpus": float64(3)}}}, reserved: "3", allowed: "3"},
	} {
		values := map[string]any{}
		for _, kv := range c.set {
			if err := strvals.ParseInto(kv, values); err != nil {
				t.Fatal(err)
			}
		}
		for _, kv := range c.setString {
			if err := strvals.ParseIntoString(kv, values); err != nil {
				t.Fatal(err)
			}
		}
		if c.file != nil {
			values = c.file
		}
		b := mustRenderHelm(t, "numaspread", values)
		w := defaultWant(t)
		var err error
		if w.config, err = w.config.With("policy.reserved_cpus", c.reserved); err != nil {
			t.Fatal(err)
		}
		if c.allowed != "" {
			if w.config, err = w.config.With("policy.allowed_cpus", c.allowed); err != nil {
				t.Fatal(err)
			}
		}
		checkBundle(t, b, w)
	}
}

// TestHelmUpdateStrategy: OnDelete, or RollingUpdate with maxUnavailable
// only. The template drops the rollingUpdate that coalescing with the
// default values leaves under OnDelete, and refuses maxSurge even when the
// schema is not consulted.
func TestHelmUpdateStrategy(t *testing.T) {
	ds := func(b bundle) *appsv1.DaemonSet { return b.only(t, "DaemonSet").typed.(*appsv1.DaemonSet) }
	s := ds(mustRenderHelm(t, "numaspread", map[string]any{"updateStrategy": map[string]any{"type": "OnDelete"}})).Spec.UpdateStrategy
	if s.Type != appsv1.OnDeleteDaemonSetStrategyType || s.RollingUpdate != nil {
		t.Errorf("OnDelete: %+v", s)
	}
	s = ds(mustRenderHelm(t, "numaspread", map[string]any{"updateStrategy": map[string]any{"rollingUpdate": map[string]any{"maxUnavailable": "25%"}}})).Spec.UpdateStrategy
	if s.Type != appsv1.RollingUpdateDaemonSetStrategyType || s.RollingUpdate == nil || s.RollingUpdate.MaxSurge != nil ||
		s.RollingUpdate.MaxUnavailable == nil || *s.RollingUpdate.MaxUnavailable != intstr.FromString("25%") {
		t.Errorf("maxUnavailable 25%%: %+v", s)
	}
	ch := loadChart(t)
	ch.Schema = nil
	_, err := renderChart(t, ch, "numaspread", map[string]any{"updateStrategy": map[string]any{"rollingUpdate": map[string]any{"maxSurge": 1}}})
	if err == nil || !strings.Contains(err.Error(), "maxSurge") {
		t.Errorf("maxSurge without the schema: %v", err)
	}
}

// TestHelmSELinuxType: seLinuxType sets the pod's SELinux type without the
// OpenShift objects; openshift.enabled implies spc_t.
func TestHelmSELinuxType(t *testing.T) {
	w := defaultWant(t)
	w.seLinuxType = "spc_t"
	checkBundle(t, mustRenderHelm(t, "numaspread", map[string]any{"seLinuxType": "spc_t"}), w)
	w.openshift, w.seLinuxType = true, "container_runtime_t"
	checkBundle(t, mustRenderHelm(t, "numaspread", map[string]any{"seLinuxType": "container_runtime_t", "openshift": map[string]any{"enabled": true}}), w)
}

// TestPriorityClassQuota: the chart's optional ResourceQuota and the
// kustomize component admit pods of the DaemonSet's priority class in its
// namespace; the chart's is off by default and needs a priority class.
func TestPriorityClassQuota(t *testing.T) {
	if _, ok := mustRenderHelm(t, "numaspread", nil).find("ResourceQuota", "numaspread-priority-class"); ok {
		t.Error("ResourceQuota rendered by default")
	}
	for _, b := range []bundle{
		mustRenderHelm(t, "numaspread", map[string]any{"priorityClassQuota": map[string]any{"enabled": true}}),
		kustomizeOverlay(t, []string{"base"}, []string{"components/priority-class-quota"}),
	} {
		checkBundle(t, b, defaultWant(t))
		rq := b.only(t, "ResourceQuota").typed.(*corev1.ResourceQuota)
		pod := b.only(t, "DaemonSet").typed.(*appsv1.DaemonSet).Spec.Template.Spec
		want := &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{{
			ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn, Values: []string{pod.PriorityClassName}}}}
		if !reflect.DeepEqual(rq.Spec.ScopeSelector, want) || len(rq.Spec.Scopes) != 0 {
			t.Errorf("%s: quota scope %+v, want %+v", b.source, rq.Spec.ScopeSelector, want)
		}
		if q, ok := rq.Spec.Hard[corev1.ResourcePods]; !ok || len(rq.Spec.Hard) != 1 || q.Cmp(resource.MustParse("100000")) < 0 {
			t.Errorf("%s: quota hard %v, want only pods, far above any node count", b.source, rq.Spec.Hard)
		}
	}
	_, err := renderHelm(t, "numaspread", map[string]any{"priorityClassName": "", "priorityClassQuota": map[string]any{"enabled": true}})
	if err == nil || !strings.Contains(err.Error(), "priorityClassName") {
		t.Errorf("quota without a priority class: %v", err)
	}
}

// TestSysfsMountCoversDiscovery: topology discovery reads nothing of sysfs
// outside devices/system, the only part the DaemonSet mounts, and discovers
// the same machine from that part alone.
func TestSysfsMountCoversDiscovery(t *testing.T) {
	if _, err := os.Stat("/sys/devices/system/cpu/online"); err != nil {
		t.Skipf("no sysfs here: %v", err)
	}
	all := &recordFS{fsys: os.DirFS("/sys")}
	want, err := topology.DiscoverFS(all)
	if err != nil {
		t.Fatal(err)
	}
	if len(all.opened) == 0 {
		t.Fatal("discovery opened nothing")
	}
	for _, p := range all.opened {
		if !strings.HasPrefix(p, "devices/system/") {
			t.Errorf("discovery reads %s, outside the mounted devices/system", p)
		}
	}
	got, err := topology.DiscoverFS(&recordFS{fsys: os.DirFS("/sys"), only: "devices/system/"})
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("discovery from devices/system alone differs (%v)", err)
	}
}

// recordFS records the paths opened; with only set, it hides every path
// outside that prefix (but the folders leading to it).
type recordFS struct {
	fsys   fs.FS
	only   string
	opened []string
}

func (r *recordFS) Open(name string) (fs.File, error) {
	if r.only != "" && !strings.HasPrefix(name+"/", r.only) && !strings.HasPrefix(r.only, name+"/") && name != "." {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if name != "." && name != "devices" {
		r.opened = append(r.opened, name)
	}
	return r.fsys.Open(name)
}

// TestHelmLint runs Helm's own chart linter with the default values and
// with everything on.
func TestHelmLint(t *testing.T) {
	for _, values := range []map[string]any{nil, {"metrics": map[string]any{"enabled": true}, "openshift": map[string]any{"enabled": true}}} {
		l := lint.All(chartDir, values, namespace, false)
		for _, m := range l.Messages {
			t.Logf("helm lint: %s", m)
			if m.Severity >= support.WarningSev {
				t.Errorf("helm lint %v: %s", values, m)
			}
		}
	}
}

// TestHelmMatchesKustomize: the chart renders the same objects as the
// kustomizations (the Namespace aside), up to Helm's own labels and the
// ConfigMap's comments.
func TestHelmMatchesKustomize(t *testing.T) {
	for _, c := range []struct {
		overlay    string
		components []string // an overlay of one's own: overlay + components
		values     map[string]any
	}{
		{"base", nil, nil},
		{"overlays/metrics", nil, map[string]any{"metrics": map[string]any{"enabled": true}}},
		{"overlays/openshift", nil, map[string]any{"openshift": map[string]any{"enabled": true}}},
		{"overlays/metrics", []string{"components/selinux-spc", "components/priority-class-quota"}, map[string]any{
			"metrics": map[string]any{"enabled": true}, "seLinuxType": "spc_t", "priorityClassQuota": map[string]any{"enabled": true}}},
	} {
		t.Run(strings.Join(append([]string{c.overlay}, c.components...), "+"), func(t *testing.T) {
			k := kustomize(t, c.overlay)
			if c.components != nil {
				k = kustomizeOverlay(t, []string{c.overlay}, c.components)
			}
			h := mustRenderHelm(t, "numaspread", c.values)
			var kobjs []object
			for _, o := range k.objs {
				if o.kind != "Namespace" {
					kobjs = append(kobjs, o)
				}
			}
			if got, want := names(h.objs), names(kobjs); !reflect.DeepEqual(got, want) {
				t.Fatalf("helm renders %v, kustomize builds %v", got, want)
			}
			for _, ko := range kobjs {
				ho, _ := h.find(ko.kind, ko.name)
				kt, ht := normalize(t, ko.typed), normalize(t, ho.typed)
				if !apiequality.Semantic.DeepEqual(kt, ht) {
					ky, _ := yaml.Marshal(kt)
					hy, _ := yaml.Marshal(ht)
					t.Errorf("%s differs:\n--- kustomize\n%s\n--- helm\n%s", ko, ky, hy)
				}
			}
		})
	}
}

func names(objs []object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.String())
	}
	sort.Strings(out)
	return out
}

// normalize drops what legitimately differs between the two renderings:
// Helm's bookkeeping labels, the chart's restart-only checksum, and the
// ConfigMap's text (compared parsed, as its differences from the defaults).
func normalize(t *testing.T, typed any) any {
	t.Helper()
	b, err := yaml.Marshal(typed)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if labels := dig(m, "metadata", "labels"); labels != nil {
		for _, k := range []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/version"} {
			delete(labels, k)
		}
	}
	// The chart's restart-only checksum (kustomize has no equivalent: a
	// ConfigMap edit there is followed by a rollout restart by hand).
	if md := dig(m, "spec", "template", "metadata"); md != nil {
		if a := dig(md, "annotations"); a != nil {
			delete(a, checksumAnnotation)
			if len(a) == 0 {
				delete(md, "annotations")
			}
		}
	}
	if cm, ok := typed.(*corev1.ConfigMap); ok {
		cfg, err := config.Parse("ConfigMap", []byte(cm.Data["config.toml"]))
		if err != nil {
			t.Fatal(err)
		}
		m["data"] = config.Diff(config.Default(), cfg)
	}
	return m
}

// dig returns the map at path in nested YAML maps, or nil.
func dig(m map[string]any, path ...string) map[string]any {
	for _, k := range path {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

// TestKubeletSnippet: the plain kubelet fragment is a valid
// KubeletConfiguration with the two policies numaspread needs.
func TestKubeletSnippet(t *testing.T) {
	data, err := os.ReadFile("kubernetes/kubelet/kubelet-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var kc kubeletv1beta1.KubeletConfiguration
	if err := yaml.UnmarshalStrict(data, &kc); err != nil {
		t.Fatal(err)
	}
	if kc.Kind != "KubeletConfiguration" || kc.APIVersion != "kubelet.config.k8s.io/v1beta1" ||
		kc.CPUManagerPolicy != "none" || kc.MemoryManagerPolicy != "None" {
		t.Errorf("kubelet snippet: %s %s cpuManagerPolicy %q memoryManagerPolicy %q", kc.APIVersion, kc.Kind, kc.CPUManagerPolicy, kc.MemoryManagerPolicy)
	}
}

// TestConfigFilesAgree: the kustomize TOML files mean the sample
// configuration (deploy/config.toml) with only the deployment's own keys
// changed, and the chart's copy of the CRI-O snippet is the snippet.
func TestConfigFilesAgree(t *testing.T) {
	sample, err := config.Load("config.toml", true)
	if err != nil {
		t.Fatal(err)
	}
	base := defaultWant(t).config
	if d := config.Diff(sample, base); !reflect.DeepEqual(d, []string{`topology.sysfs: /sys → /host/sys`}) {
		t.Errorf("base config differs from deploy/config.toml in %q", d)
	}
	if _, err := os.Stat("kubernetes/overlays/metrics/config.toml"); err == nil {
		t.Error("overlays/metrics has a config.toml of its own: the overlay passes --metrics-address, so the base's file is the one to edit")
	}
	a, _ := os.ReadFile("runtime/crio-nri.conf")
	b, _ := os.ReadFile(filepath.Join(chartDir, "files/crio-nri.conf"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Error("helm/numaspread/files/crio-nri.conf is not a copy of runtime/crio-nri.conf")
	}
}

// TestImageNamesAgree: the Makefile's image, the manifests' image and the
// chart's appVersion are one.
func TestImageNamesAgree(t *testing.T) {
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var fromMake string
	for _, l := range strings.Split(string(mk), "\n") {
		if k, v, ok := strings.Cut(l, "?="); ok && strings.TrimSpace(k) == "IMAGE" {
			fromMake = strings.TrimSpace(v)
		}
	}
	if fromMake != image {
		t.Errorf("Makefile IMAGE %q, manifests use %q", fromMake, image)
	}
	ch := loadChart(t)
	if repo := ch.Values["image"].(map[string]any)["repository"]; repo.(string)+":"+ch.Metadata.AppVersion != image {
		t.Errorf("chart image %v:%s, manifests use %s", repo, ch.Metadata.AppVersion, image)
	}
}
