// Package deploy holds numaspread's deployment files and the tests that keep
// them honest; it has no code of its own.
//
//	Dockerfile               multi-stage static build on distroless static
//	mkimage/                 OCI image tarball packer behind `make image` (no engine)
//	kubernetes/base          kustomize: Namespace, ServiceAccount, ConfigMap, DaemonSet
//	kubernetes/overlays/     metrics (listener, probes), openshift (KubeletConfig,
//	                         MachineConfig, SCC, spc_t)
//	kubernetes/components/   selinux-spc, priority-class-quota: for overlays of one's own
//	kubernetes/kubelet/      the kubelet settings numaspread needs
//	helm/numaspread          the Helm chart: the same objects, from values
//	runtime/                 containerd 1.7 / 2.x and CRI-O snippets that turn NRI
//	                         on, the pre-installed layout, a systemd unit
//	config.toml              the commented sample configuration
//
// The tests (deploy_test.go) build every kustomization with kustomize's
// krusty, render the chart with Helm's own engine, decode every object
// strictly into the Kubernetes API types, and check the security context,
// host paths, probes and the ConfigMap's TOML with the config package. Their
// dependencies (k8s.io/api, helm, kustomize) are imported only by _test
// files, so the numaspread binary does not carry them.
package deploy
