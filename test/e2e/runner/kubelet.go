package main

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// The DaemonSet scenario (daemonset.go) runs the image `make image` built
// as the pod the kustomize manifests describe. There is no kubelet here, so
// the runner does the kubelet's part: it renders the kustomization, takes the
// DaemonSet's pod template and ConfigMaps, and turns them into the CRI
// PodSandboxConfig and ContainerConfig the kubelet would send (volumes as
// host paths, the downward API, resources and QoS, the security context).
// It translates volumes (hostPath, configMap), volume mounts, env (values
// and the downward API's node and pod names), resources and QoS, and the
// security context fields that restrict the process (user and group,
// privileged, read-only root, privilege escalation, capabilities,
// seccomp); volume types, subPath, env sources and security options
// (SELinux, AppArmor, procMount) it cannot translate are refused, naming
// the field. Pod-level fields that do not restrict the plugin's process
// (hostNetwork: the e2e pod always uses the node's network; fsGroup,
// sysctls) are not looked at.

// kubeContainer is a pod template's container as CRI sees it.
type kubeContainer struct {
	name     string
	image    string
	command  []string
	args     []string
	envs     []map[string]string
	mounts   []map[string]any
	security map[string]any // ContainerConfig.linux.security_context, without namespaces
}

// kubePod is a DaemonSet's pod, ready to run: its spec for startPod and the
// container and pod template it came from, for the checks.
type kubePod struct {
	spec      podSpec
	container corev1.Container
	template  corev1.PodSpec
}

// renderDaemonSet builds the kustomization in dir with kustomize's own
// library and returns its one DaemonSet and its ConfigMaps by name.
func renderDaemonSet(dir string) (*appsv1.DaemonSet, map[string]*corev1.ConfigMap, error) {
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var ds *appsv1.DaemonSet
	cms := map[string]*corev1.ConfigMap{}
	for _, res := range m.Resources() {
		data, err := res.AsYAML()
		if err != nil {
			return nil, nil, err
		}
		switch res.GetKind() {
		case "DaemonSet":
			if ds != nil {
				return nil, nil, fmt.Errorf("kustomize build %s: more than one DaemonSet", dir)
			}
			ds = &appsv1.DaemonSet{}
			if err := yaml.UnmarshalStrict(data, ds); err != nil {
				return nil, nil, fmt.Errorf("kustomize build %s: DaemonSet %s: %w", dir, res.GetName(), err)
			}
		case "ConfigMap":
			cm := &corev1.ConfigMap{}
			if err := yaml.UnmarshalStrict(data, cm); err != nil {
				return nil, nil, fmt.Errorf("kustomize build %s: ConfigMap %s: %w", dir, res.GetName(), err)
			}
			cms[cm.Name] = cm
		}
	}
	if ds == nil {
		return nil, nil, fmt.Errorf("kustomize build %s: no DaemonSet", dir)
	}
	return ds, cms, nil
}

// daemonSetPod renders dir and translates its DaemonSet's pod for this
// node. hostPaths maps a hostPath volume's path to the folder that stands
// for it in this run (the private runtime's NRI socket folder); ConfigMap
// volumes become folders under the run's temporary folder.
func (e *env) daemonSetPod(dir, nodeName string, hostPaths map[string]string) (*kubePod, error) {
	ds, cms, err := renderDaemonSet(dir)
	if err != nil {
		return nil, err
	}
	tpl := ds.Spec.Template.Spec
	if len(tpl.Containers) != 1 || len(tpl.InitContainers) != 0 {
		return nil, fmt.Errorf("DaemonSet %s: %d containers and %d init containers; the e2e runs exactly one container",
			ds.Name, len(tpl.Containers), len(tpl.InitContainers))
	}
	c := tpl.Containers[0]
	where := fmt.Sprintf("DaemonSet %s container %s", ds.Name, c.Name)
	podName := ds.Name + "-" + nodeName

	volumes := map[string]string{} // volume name → host folder or file
	for _, v := range tpl.Volumes {
		switch {
		case v.HostPath != nil:
			p := v.HostPath.Path
			if mapped, ok := hostPaths[p]; ok {
				p = mapped
			}
			volumes[v.Name] = p
		case v.ConfigMap != nil:
			cm, ok := cms[v.ConfigMap.Name]
			if !ok {
				return nil, fmt.Errorf("%s: volume %s: ConfigMap %s is not in the kustomization", where, v.Name, v.ConfigMap.Name)
			}
			folder := e.path("configmaps/" + v.Name)
			if err := writeConfigMap(folder, cm, v.ConfigMap.Items); err != nil {
				return nil, fmt.Errorf("%s: volume %s: %w", where, v.Name, err)
			}
			volumes[v.Name] = folder
		default:
			return nil, fmt.Errorf("%s: volume %s: only hostPath and configMap volumes are translated", where, v.Name)
		}
	}

	k := &kubeContainer{name: c.Name, image: c.Image, command: c.Command, args: c.Args}
	for _, m := range c.VolumeMounts {
		host, ok := volumes[m.Name]
		if !ok {
			return nil, fmt.Errorf("%s: volumeMount %s: no such volume", where, m.Name)
		}
		if m.SubPath != "" || m.SubPathExpr != "" {
			return nil, fmt.Errorf("%s: volumeMount %s: subPath is not translated", where, m.Name)
		}
		k.mounts = append(k.mounts, map[string]any{"container_path": m.MountPath, "host_path": host, "readonly": m.ReadOnly})
	}
	fields := map[string]string{"spec.nodeName": nodeName, "metadata.name": podName, "metadata.namespace": ds.Namespace}
	for _, v := range c.Env {
		value := v.Value
		if v.ValueFrom != nil {
			f := v.ValueFrom.FieldRef
			if f == nil || fields[f.FieldPath] == "" {
				return nil, fmt.Errorf("%s: env %s: only fieldRef %s is translated", where, v.Name, strings.Join(sortedKeys(fields), ", "))
			}
			value = fields[f.FieldPath]
		}
		k.envs = append(k.envs, map[string]string{"key": v.Name, "value": value})
	}
	if k.security, err = securityContext(tpl.SecurityContext, c.SecurityContext); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}

	spec := podSpec{name: podName, namespace: ds.Namespace, annotations: ds.Spec.Template.Annotations, kube: k}
	// The API server defaults a missing request to its limit.
	req, lim := corev1.ResourceList{}, c.Resources.Limits
	for name, q := range lim {
		req[name] = q
	}
	for name, q := range c.Resources.Requests {
		req[name] = q
	}
	spec.cpuRequest, spec.cpuLimit = req.Cpu().MilliValue(), lim.Cpu().MilliValue()
	spec.memLimit = lim.Memory().Value()
	spec.qos = qosClass(c.Resources)
	if spec.qos == guaranteed && spec.cpuLimit != spec.cpuRequest {
		return nil, fmt.Errorf("%s: Guaranteed with CPU request %dm ≠ limit %dm", where, spec.cpuRequest, spec.cpuLimit)
	}
	return &kubePod{spec: spec, container: c, template: tpl}, nil
}

// qosClass is the pod's QoS class for its one container
// (pkg/apis/core/helper/qos): Guaranteed when CPU and memory both have
// limits equal to the requests, BestEffort with neither, else Burstable.
func qosClass(r corev1.ResourceRequirements) string {
	if len(r.Requests) == 0 && len(r.Limits) == 0 {
		return bestEffort
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		l, ok := r.Limits[name]
		if !ok {
			return burstable
		}
		if q, ok := r.Requests[name]; ok && q.Cmp(l) != 0 {
			return burstable
		}
	}
	return guaranteed
}

// securityContext translates the pod's and the container's security
// contexts into a CRI LinuxContainerSecurityContext, the container's
// fields winning as in Kubernetes.
func securityContext(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) (map[string]any, error) {
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	if c == nil {
		c = &corev1.SecurityContext{}
	}
	sc := map[string]any{}
	user, group := pod.RunAsUser, pod.RunAsGroup
	if c.RunAsUser != nil {
		user = c.RunAsUser
	}
	if c.RunAsGroup != nil {
		group = c.RunAsGroup
	}
	if user != nil {
		sc["run_as_user"] = map[string]any{"value": *user}
	}
	if group != nil {
		sc["run_as_group"] = map[string]any{"value": *group}
	}
	if c.Privileged != nil {
		sc["privileged"] = *c.Privileged
	}
	if c.ReadOnlyRootFilesystem != nil {
		sc["readonly_rootfs"] = *c.ReadOnlyRootFilesystem
	}
	if c.AllowPrivilegeEscalation != nil {
		sc["no_new_privs"] = !*c.AllowPrivilegeEscalation
	}
	if caps := c.Capabilities; caps != nil {
		sc["capabilities"] = map[string]any{"add_capabilities": capNames(caps.Add), "drop_capabilities": capNames(caps.Drop)}
	}
	seccomp := pod.SeccompProfile
	if c.SeccompProfile != nil {
		seccomp = c.SeccompProfile
	}
	if seccomp != nil {
		// CRI SecurityProfile.ProfileType: 0 RuntimeDefault, 1 Unconfined.
		switch seccomp.Type {
		case corev1.SeccompProfileTypeRuntimeDefault:
			sc["seccomp"] = map[string]any{"profile_type": 0}
		case corev1.SeccompProfileTypeUnconfined:
			sc["seccomp"] = map[string]any{"profile_type": 1}
		default:
			return nil, fmt.Errorf("seccompProfile %s is not translated", seccomp.Type)
		}
	}
	if c.SELinuxOptions != nil || pod.SELinuxOptions != nil || c.AppArmorProfile != nil || c.ProcMount != nil {
		return nil, errors.New("seLinuxOptions, appArmorProfile and procMount are not translated")
	}
	return sc, nil
}

func capNames(caps []corev1.Capability) []string {
	out := []string{}
	for _, c := range caps {
		out = append(out, string(c))
	}
	return out
}

// writeConfigMap writes a ConfigMap's data as the kubelet projects it: one
// file per key (or per item), read-only.
func writeConfigMap(folder string, cm *corev1.ConfigMap, items []corev1.KeyToPath) error {
	if err := os.MkdirAll(folder, 0o755); err != nil {
		return err
	}
	files := map[string]string{}
	for key, value := range cm.Data {
		files[key] = value
	}
	if len(items) > 0 {
		files = map[string]string{}
		for _, it := range items {
			value, ok := cm.Data[it.Key]
			if !ok {
				return fmt.Errorf("ConfigMap %s has no key %s", cm.Name, it.Key)
			}
			files[it.Path] = value
		}
	}
	if len(files) == 0 || len(cm.BinaryData) > 0 {
		return fmt.Errorf("ConfigMap %s: want text data only, got %d data and %d binaryData keys", cm.Name, len(cm.Data), len(cm.BinaryData))
	}
	for name, value := range files {
		if err := os.WriteFile(filepath.Join(folder, name), []byte(value), 0o444); err != nil {
			return err
		}
	}
	return nil
}

// imageName returns the name an OCI image archive gives its image when
// `ctr images import` loads it (the io.containerd.image.name annotation).
func imageName(tarball string) (string, error) {
	f, err := os.Open(tarball)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", fmt.Errorf("%s: no index.json (not an OCI image archive)", tarball)
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", tarball, err)
		}
		if strings.TrimPrefix(h.Name, "./") != "index.json" {
			continue
		}
		var index struct {
			Manifests []struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"manifests"`
		}
		if err := json.NewDecoder(tr).Decode(&index); err != nil {
			return "", fmt.Errorf("%s: index.json: %w", tarball, err)
		}
		var names []string
		for _, m := range index.Manifests {
			if n := m.Annotations["io.containerd.image.name"]; n != "" {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		if len(names) != 1 {
			return "", fmt.Errorf("%s: index.json names %d images (%v); want one", tarball, len(names), names)
		}
		return names[0], nil
	}
}
