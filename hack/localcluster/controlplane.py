"""Command lines of the control-plane components, on free loopback ports."""

from __future__ import annotations

import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from .pki import Pki
from .state import StateDir

SERVICE_CIDR = "10.96.0.0/16"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
# What ServiceAccounts ask of the API server, one JSON line per request (Metadata level: who,
# verb, resource, answer; no bodies), so tests can see which permissions code really uses.
# Other users (admin, controllers) are not logged.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int

    @classmethod
    def pick(cls, previous: dict[str, int] | None = None) -> Ports:
        """The previous ports if all are still free (etcd keeps its peer URL), else new ones."""
        if previous and all(port_is_free(p) for p in previous.values()):
            try:
                return cls(**previous)
            except TypeError:
                pass
        return cls(*(free_port() for _ in range(5)))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver}"


def commands(
    bin_dir: Path, state: StateDir, pki: Pki, ports: Ports, advertise: str
) -> dict[str, list[str]]:
    """Each component's argv, keyed by component name (start in the order of COMPONENTS).

    The API server listens on loopback only; ``advertise`` is the address the node reaches
    that loopback at (nodenet), which the `kubernetes` Service's endpoints name."""
    audit_policy = state.root / "audit-policy.yaml"
    audit_policy.write_text(AUDIT_POLICY)
    etcd_url = f"http://127.0.0.1:{ports.etcd_client}"
    peer_url = f"http://127.0.0.1:{ports.etcd_peer}"
    return {
        "etcd": [
            str(bin_dir / "etcd"),
            "--name=default",
            f"--data-dir={state.etcd_data}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            # a throw-away development store: skipping fsync keeps a busy 2-core machine responsive
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ],
        "kube-apiserver": [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            f"--advertise-address={advertise}",
            f"--secure-port={ports.apiserver}",
            f"--tls-cert-file={pki.apiserver_cert}",
            f"--tls-private-key-file={pki.apiserver_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            "--allow-privileged=true",
            # As OpenShift does: an ownerReference with blockOwnerDeletion needs update on
            # the owner's finalizers, so RBAC that misses it fails here too.
            "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
            f"--audit-policy-file={audit_policy}",
            f"--audit-log-path={state.audit_log}",
            "--audit-log-maxbackup=1",
            "--audit-log-maxsize=200",
            f"--requestheader-client-ca-file={pki.ca_cert}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki.client_cert('front-proxy-client')}",
            f"--proxy-client-key-file={pki.client_key('front-proxy-client')}",
            f"--kubelet-client-certificate={pki.client_cert('apiserver-kubelet-client')}",
            f"--kubelet-client-key={pki.client_key('apiserver-kubelet-client')}",
            f"--kubelet-certificate-authority={pki.ca_cert}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--cert-dir={state.root / 'apiserver-certs'}",
            "--profiling=false",
            "--v=1",
        ],
        "kube-controller-manager": [
            str(bin_dir / "kube-controller-manager"),
            f"--kubeconfig={state.kubeconfig_for('controller-manager')}",
            f"--authentication-kubeconfig={state.kubeconfig_for('controller-manager')}",
            f"--authorization-kubeconfig={state.kubeconfig_for('controller-manager')}",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_cert}",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports.controller_manager}",
            f"--cert-dir={state.root / 'controller-manager-certs'}",
            "--profiling=false",
            "--v=1",
        ],
        "kube-scheduler": [
            str(bin_dir / "kube-scheduler"),
            f"--kubeconfig={state.kubeconfig_for('scheduler')}",
            f"--authentication-kubeconfig={state.kubeconfig_for('scheduler')}",
            f"--authorization-kubeconfig={state.kubeconfig_for('scheduler')}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports.scheduler}",
            f"--cert-dir={state.root / 'scheduler-certs'}",
            "--profiling=false",
            "--v=1",
        ],
    }


def health_url(component: str, ports: Ports) -> str:
    """The URL whose 200 means the component is up (/readyz, /healthz, /health)."""
    return {
        "etcd": f"http://127.0.0.1:{ports.etcd_client}/health",
        "kube-apiserver": f"https://127.0.0.1:{ports.apiserver}/readyz",
        "kube-controller-manager": f"https://127.0.0.1:{ports.controller_manager}/healthz",
        "kube-scheduler": f"https://127.0.0.1:{ports.scheduler}/healthz",
    }[component]
