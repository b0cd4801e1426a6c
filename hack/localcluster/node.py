"""The node: configuration files and command lines of containerd, the kubelet and kube-proxy.

All three run in the node's network namespace (nodenet) and keep their state below the
cluster's state directory, so two clusters on one machine share nothing but the binaries
and the images' archives. What this machine needs of them (see hack/README.md):

- containerd's CRI plugin with ``restrict_oom_score_adj``: processes here may not lower
  oom_score_adj (no CAP_SYS_RESOURCE), and without it every pod sandbox fails in runc;
- the sandbox image built here (no registry is reachable), pods' network namespaces mounted
  below the state directory;
- the kubelet with the cgroupfs driver below a cgroup of the cluster's own, swap allowed,
  image garbage collection off (an image deleted here cannot be pulled back), eviction
  thresholds low (a full disk of other work must not evict the tests' pods), its pod logs
  below the state directory.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from .nodenet import NodeNet

K8S_VERSION = "v1.34.4"
CLUSTER_DNS = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
CNI_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
KUBELET_PORT = 10250
SOCKET_PATH_MAX = 107  # bytes in a unix socket's path (sun_path is 108 with its NUL)


@dataclass(frozen=True)
class NodePaths:
    """The node's files below the state directory."""

    root: Path

    @property
    def containerd(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_config(self) -> Path:
        return self.containerd / "config.toml"

    @property
    def sockets(self) -> Path:
        """containerd's sockets: in a short directory of their own, not below the state
        directory, because a unix socket's path is limited to 108 bytes (containerd's ttrpc
        socket refuses more than 104) and a state directory can be deep (pytest's per-worker
        temporary directories are)."""
        digest = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"localcluster-sock-{digest}"

    @property
    def containerd_socket(self) -> Path:
        return self.sockets / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def kubelet_dir(self) -> Path:
        return self.root / "kubelet"

    @property
    def deepest_kubelet_socket(self) -> Path:
        """The longest socket path the kubelet makes below its directory (its pod-resources
        socket has a random 10-digit name); see SOCKET_PATH_MAX."""
        return self.kubelet_dir / "pod-resources" / ("9" * 10)

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet-config.yaml"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    @property
    def resolv_conf(self) -> Path:
        return self.root / "node-resolv.conf"

    @property
    def kube_proxy_config(self) -> Path:
        return self.root / "kube-proxy-config.yaml"


def cni_bin_dir() -> str:
    return next((d for d in CNI_BIN_DIRS if Path(d, "bridge").exists()), CNI_BIN_DIRS[0])


def containerd_config(paths: NodePaths, sandbox_image: str) -> str:
    c = paths.containerd
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""\
version = 2
root = "{c / "root"}"
state = "{c / "state"}"
# snapshotters and tracing this node does not use
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{paths.containerd_socket}"

[ttrpc]
  address = "{paths.containerd_socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{c / "opt"}"

[{cri}]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  max_container_log_line_size = 65536

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "{c / "runc"}"

[{cri}.cni]
  bin_dir = "{cni_bin_dir()}"
  conf_dir = "{paths.cni_conf_dir}"
  max_conf_num = 1
"""


def cni_config(paths: NodePaths, net: NodeNet) -> str:
    """A bridge with host-local addresses; traffic from pods to the host (the link address) is
    masqueraded to the node's address, which the host routes back."""
    return json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "localcluster",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    "ipMasq": True,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": net.pod_cidr, "gateway": net.pod_gateway}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(paths.root / "cni" / "ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
        indent=2,
    )


def kubelet_config(
    paths: NodePaths, net: NodeNet, ca: Path, serving: tuple[Path, Path], cgroup_root: str
) -> str:
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": net.node_ip,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "tlsCertFile": str(serving[0]),
        "tlsPrivateKeyFile": str(serving[1]),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{cgroup_root}",
        "failSwapOn": False,
        "clusterDNS": [CLUSTER_DNS],
        "clusterDomain": CLUSTER_DOMAIN,
        # pods with dnsPolicy Default get no name server: nothing is asked off the machine
        "resolvConf": str(paths.resolv_conf),
        "podLogsDir": str(paths.pod_logs),
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "serializeImagePulls": False,
        "nodeStatusReportFrequency": "1m",
        "nodeStatusUpdateFrequency": "10s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "20s",
        "maxPods": 110,
        "podCIDR": net.pod_cidr,
        "containerLogMaxSize": "10Mi",
        "containerLogMaxFiles": 2,
        "shutdownGracePeriod": "0s",
        "featureGates": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def kube_proxy_config(net: NodeNet, kubeconfig: Path, node_name: str) -> str:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": node_name,
        "mode": "iptables",
        "clusterCIDR": net.pod_cidr,
        "bindAddress": net.node_ip,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # the conntrack table size is the machine's (not the namespace's): leave it alone
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        "iptables": {"syncPeriod": "30s", "minSyncPeriod": "0s"},
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_configs(
    paths: NodePaths,
    net: NodeNet,
    *,
    sandbox_image: str,
    ca: Path,
    serving: tuple[Path, Path],
    cgroup_root: str,
    kube_proxy_kubeconfig: Path,
    node_name: str,
) -> None:
    for directory in (paths.containerd, paths.sockets, paths.cni_conf_dir, paths.kubelet_dir,
                      paths.pod_logs):  # fmt: skip
        directory.mkdir(parents=True, exist_ok=True)
    paths.containerd_config.write_text(containerd_config(paths, sandbox_image))
    (paths.cni_conf_dir / "10-localcluster.conflist").write_text(cni_config(paths, net))
    paths.resolv_conf.write_text("")
    paths.kubelet_config.write_text(kubelet_config(paths, net, ca, serving, cgroup_root))
    paths.kube_proxy_config.write_text(kube_proxy_config(net, kube_proxy_kubeconfig, node_name))


def commands(
    paths: NodePaths, net: NodeNet, bin_dir: Path, kubelet_kubeconfig: Path, node_name: str
) -> dict[str, list[str]]:
    """Each node component's argv (start containerd first, then the other two)."""
    return {
        "containerd": [*net.enter(), "containerd", "--config", str(paths.containerd_config)],
        "kubelet": [
            *net.enter(),
            str(bin_dir / "kubelet"),
            f"--config={paths.kubelet_config}",
            f"--kubeconfig={kubelet_kubeconfig}",
            f"--root-dir={paths.kubelet_dir}",
            f"--node-ip={net.node_ip}",
            f"--hostname-override={node_name}",
            "--v=1",
        ],
        "kube-proxy": [
            *net.enter(),
            str(bin_dir / "kube-proxy"),
            f"--config={paths.kube_proxy_config}",
            "--v=1",
        ],
    }
