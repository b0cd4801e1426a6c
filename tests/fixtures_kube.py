"""Fixtures for tests against a real Kubernetes: the local cluster of hack/localcluster (etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, and a node: containerd, kubelet,
kube-proxy, CoreDNS). Pods run images built on this machine (hack/localcluster/images.py):
`KubeCluster.images` names them; pods reach the host's loopback (a test's redis-server) at
`KubeCluster.host_ip` (`reachable(url)` rewrites a loopback URL).

- `kube_cluster` (session): one cluster in a temporary directory for the whole run (under
  pytest-xdist, one per worker process that runs a cluster test: clusters run side by side,
  each node in its own network namespace, see hack/localcluster/nodenet.py); stopped
  at the end, also on Ctrl-C (fixture teardown and atexit) and if pytest is killed (the
  supervisor watches this process and stops itself).
- `kube_namespace`: a fresh namespace per test (its default ServiceAccount exists), deleted after.
- `kube_env`: KUBECONFIG (and PATH with kubectl/helm) set in os.environ for one test, for code
  that loads its configuration itself (kopf's login, an in-process `kopf.testing.KopfRunner`).
- `kopf_registry`: a fresh kopf registry, kopf's default for one test, for an in-process
  `KopfRunner` (the default registry is process-wide and holds every handler any imported
  module registered, e.g. jobqueue_operator's own, imported while collecting tests/operator).

Tests using them get the `cluster` marker automatically. Missing binaries and images are built
once (hack/build-tools.sh, hack/localcluster.py images) before the first test runs (outside
any test timeout).
"""

from __future__ import annotations

import atexit
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest
from filelock import FileLock

if TYPE_CHECKING:
    import kopf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "hack"))

from localcluster import cli as localcluster  # noqa: E402
from localcluster import images as node_images  # noqa: E402

KUBE_FIXTURES = {"kube_cluster", "kube_namespace", "kube_env"}
T = TypeVar("T")


@dataclass
class KubeCluster:
    """A running local cluster, as handed to tests."""

    state_dir: Path
    kubeconfig: Path
    bin_dir: Path
    server: str
    node: str
    api_client: Any  # kubernetes.client.ApiClient (admin)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def host_ip(self) -> str:
        """The address at which pods reach the host's loopback (127.0.0.1)."""
        return str(self.info["host_ip"])

    @property
    def images(self) -> dict[str, str]:
        """References of the node's images by name: worker, operator, worker-tests, python
        (the stand-in base, a Python for test pods), coredns, pause."""
        return dict(self.info["images"])

    def reachable(self, url: str) -> str:
        """A URL of a server on the host's loopback, as pods (and the host) reach it."""
        parts = urlsplit(url)  # the netloc may list several hosts (Sentinel, Cluster)
        hosts = parts.netloc.rsplit("@", 1)
        hosts[-1] = re.sub(r"\b(127\.0\.0\.1|localhost)(?=:|,|$)", self.host_ip, hosts[-1])
        return urlunsplit(parts._replace(netloc="@".join(hosts)))

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    @property
    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api_client)

    @property
    def custom(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api_client)

    @property
    def env(self) -> dict[str, str]:
        """os.environ plus KUBECONFIG and PATH for subprocesses (kubectl, helm, operators)."""
        path = f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PATH": path}

    def kubectl(
        self, *args: str, check: bool = True, timeout: float = 60, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; output captured as text."""
        return subprocess.run(
            [str(self.bin_dir / "kubectl"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
            input=input,
        )

    def apply(self, manifest: str, namespace: str | None = None) -> str:
        """kubectl apply -f - of a YAML text."""
        args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
        return self.kubectl(*args, input=manifest).stdout

    def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 60.0,
        interval: float = 0.25,
        message: str = "condition",
    ) -> T:
        """Poll predicate until it returns a truthy value (returned); API 404s count as falsy."""
        from kubernetes.client import ApiException

        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                last = predicate()
                if last:
                    return last
            except ApiException as e:
                if e.status != 404:
                    raise
                last = e
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {message}; last: {last!r}"
                )
            time.sleep(interval)

    def pod_log(
        self,
        pod: str,
        namespace: str = "default",
        container: str | None = None,
        previous: bool = False,
    ) -> str:
        """The output of a pod's container (current run, or the one before with previous), as
        `kubectl logs` gets it from the kubelet."""
        kwargs: dict[str, Any] = {"previous": previous}
        if container:
            kwargs["container"] = container
        text: str = self.core.read_namespaced_pod_log(pod, namespace, **kwargs)
        return text


def _bin_dir() -> Path:
    return localcluster.default_bin_dir()


def _uses_kube(item: pytest.Item) -> bool:
    return bool(KUBE_FIXTURES & set(getattr(item, "fixturenames", ())))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _uses_kube(item):
            item.add_marker(pytest.mark.cluster)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build missing Kubernetes binaries before any test runs (not inside a test's timeout)."""
    if session.config.option.collectonly or not any(_uses_kube(i) for i in session.items):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def say(line: str) -> None:
        if reporter is not None:
            reporter.write_line(f"fixtures_kube: {line}", yellow=True)

    # Every xdist worker collects every test: the first one builds, the others wait for it
    # and then find nothing missing.
    _bin_dir().parent.mkdir(parents=True, exist_ok=True)
    with FileLock(_bin_dir().parent / "build.lock"):
        _build_missing(say)


def _build_missing(say: Callable[[str], None]) -> None:
    if localcluster.missing_binaries(_bin_dir()):
        say(
            "building the Kubernetes binaries once with hack/build-tools.sh "
            "(a cold build takes about 20-35 minutes on 2 cores) ..."
        )
        subprocess.run([str(REPO / "hack" / "build-tools.sh")], check=True)
    stale = node_images.stale(_bin_dir())
    if stale:
        say(f"building the node's images {', '.join(stale)} (cached by their inputs) ...")
        node_images.ensure(_bin_dir(), log=say)


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    from kubernetes import config

    state_dir = tmp_path_factory.mktemp("localcluster")
    atexit.register(localcluster.down, state_dir)
    try:
        info = localcluster.up(state_dir, owner_pid=os.getpid())
    except localcluster.ClusterError as e:
        pytest.fail(str(e), pytrace=False)
    api_client = config.new_client_from_config(config_file=info["kubeconfig"])
    cluster = KubeCluster(
        state_dir=state_dir,
        kubeconfig=Path(info["kubeconfig"]),
        bin_dir=Path(info["bin_dir"]),
        server=info["server"],
        node=info["node"],
        api_client=api_client,
        info=info,
    )
    try:
        yield cluster
    finally:
        api_client.close()
        localcluster.down(state_dir)


def _namespace_name(request: pytest.FixtureRequest) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    return f"{base or 'test'}-{uuid.uuid4().hex[:5]}"


@pytest.fixture
def kube_namespace(kube_cluster: KubeCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace whose default ServiceAccount exists; deleted after the test."""
    name = _namespace_name(request)
    core = kube_cluster.core
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    kube_cluster.wait_for(
        lambda: core.read_namespaced_service_account("default", name),
        timeout=30,
        message=f"ServiceAccount default in {name}",
    )
    yield name
    from kubernetes.client import ApiException

    try:
        core.delete_namespace(name)
    except ApiException as e:
        if e.status != 404:
            raise


@pytest.fixture
def kube_env(kube_cluster: KubeCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeCluster]:
    """The cluster, with KUBECONFIG and PATH exported to os.environ for this test only."""
    from kubernetes.client import Configuration
    from kubernetes.config import kube_config

    monkeypatch.setenv("KUBECONFIG", str(kube_cluster.kubeconfig))
    monkeypatch.setenv("PATH", kube_cluster.env["PATH"])
    # the kubernetes client reads $KUBECONFIG once, when first imported
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kube_cluster.kubeconfig))
    # code that logs in by itself (kopf's login_via_client) installs its configuration as the
    # client's process-wide default: put the previous one back after the test
    default = Configuration.get_default_copy()
    yield kube_cluster
    Configuration.set_default(default)


@pytest.fixture
def kopf_registry() -> Iterator[kopf.OperatorRegistry]:
    """A fresh kopf registry as kopf's default for one test; the previous default after.

    kopf's default registry is process-wide: every module imported in this run that declares
    handlers has put them there (collecting tests/operator imports jobqueue_operator's, whose
    startup handler needs the JobQueue CRDs and serves metrics on 0.0.0.0:8080). An in-process
    `KopfRunner` would run them all. `KopfRunner(..., registry=kopf_registry)` runs only what
    the test's operator declares, and kopf's own login from the kubeconfig, as a default
    registry would offer it.
    """
    import kopf

    previous = kopf.get_default_registry()
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(kopf.login_via_client)
    kopf.set_default_registry(registry)
    try:
        yield registry
    finally:
        kopf.set_default_registry(previous)


def install_jobqueue_crd(cluster: Any) -> None:
    """Apply crds/ and wait until the JobQueue CRD is Established and served.

    Polled, not `kubectl wait` (which failed on a busy machine, saying nothing): a read that
    errors is tried again, and the last answer goes into the timeout's message."""
    cluster.apply((REPO / "crds" / "jobqueue.dev_jobqueues.yaml").read_text())
    said: list[str] = []

    def established() -> bool:
        answer = cluster.kubectl(
            "get", "crd", "jobqueues.jobqueue.dev", "-o",
            "jsonpath={.status.conditions[?(@.type=='Established')].status}",
            check=False,
        )  # fmt: skip
        said[:] = [answer.stdout.strip() or answer.stderr.strip()]
        return bool(answer.returncode == 0 and answer.stdout.strip() == "True")

    try:
        cluster.wait_for(established, timeout=120, message="the JobQueue CRD Established")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; kubectl said {said}") from None
    # The API server serves a new CRD a moment after Established; wait until it lists.
    cluster.wait_for(
        lambda: cluster.kubectl("get", "jq", "-A", check=False).returncode == 0,
        timeout=60,
        message="jobqueues served",
    )
