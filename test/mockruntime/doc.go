// Package mockruntime is an in-process container runtime for testing NRI
// plugins. It drives containerd's own NRI adaptation (pkg/adaptation), so a
// plugin under test talks to exactly the code a real runtime links, over a
// real ttRPC socket.
//
// It owns three things:
//
//   - Kubernetes-like pods and containers (GuaranteedPod, BurstablePod,
//     BestEffortPod, ContainerSpec), turned into NRI objects the way the
//     kubelet and containerd fill them: cgroup parents, cpu.shares, CFS quota,
//     memory limits, oom_score_adj, pod-level resources.
//   - A model of what the runtime believes: every pod and container with its
//     current cpuset.cpus / cpuset.mems. The model applies every way a plugin
//     can change a cpuset: the CreateContainer adjustment, updates returned
//     by CreateContainer, StopContainer, UpdateContainer and Synchronize,
//     and unsolicited updates (stub.UpdateContainers). Synchronize is given
//     the running pods and the created or running containers, with their
//     current cpusets, in creation order (or shuffled, WithShuffledSync).
//   - Lifecycle control: Start, Stop, Restart, pre-installed plugins,
//     timeouts, and a hook that checks invariants after every step (the
//     model is copied for it only when checks are installed).
//   - Faults a runtime really produces: InjectContainer (a container no
//     plugin saw created), ExitContainer (a container that stops with no
//     StopContainer relayed), SetCPUSet (a cpuset no plugin set: empty,
//     overlapping, naming CPUs that are gone).
//
// Runtime restarts: adaptation.Stop does not disconnect external plugins and
// the adaptation accepts no custom listener, so external plugins dial a
// small proxy socket (SocketPath) that forwards to the adaptation's own.
// Stop closes the proxy and cuts every forwarded connection, then stops the
// adaptation; Start builds a fresh adaptation on the same paths. The model
// survives, as containerd restores its containers from disk.
//
// Locking mirrors containerd: every request holds BlockPluginSync() and one
// runtime-wide NRI lock, which Synchronize and unsolicited updates take too.
// A plugin that calls UpdateContainers synchronously from inside a handler
// therefore stalls until the request times out, as it would in containerd.
package mockruntime
