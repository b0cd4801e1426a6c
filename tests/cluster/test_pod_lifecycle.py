"""Pod status as a kubelet reports it: restarts with backoff, phases, probes, env, deletion."""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest


def pod(name: str, script: str, *args: str, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": "python:3.11",
        "command": [sys.executable, "-c", script, *args],
    }
    container.update(spec.pop("container", {}))
    return {"metadata": {"name": name}, "spec": {"containers": [container], **spec}}


def status_of(kube_cluster: Any, ns: str, name: str) -> Any:
    return kube_cluster.core.read_namespaced_pod(name, ns).status


def reasons(kube_cluster: Any, ns: str, name: str) -> set[str]:
    events = kube_cluster.core.list_namespaced_event(
        ns, field_selector=f"involvedObject.name={name}"
    ).items
    return {e.reason for e in events}


def condition(status: Any, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in status.conditions or [])


def test_exiting_container_is_restarted_and_backs_off(
    kube_cluster: Any, kube_namespace: str
) -> None:
    ns = kube_namespace
    kube_cluster.core.create_namespaced_pod(
        ns, pod("crasher", "import sys; print('run', flush=True); sys.exit(3)")
    )

    def restarted_twice() -> Any:
        s = status_of(kube_cluster, ns, "crasher")
        cs = (s.container_statuses or [None])[0]
        return cs if cs is not None and cs.restart_count >= 2 else None

    # first restart at once, the second after the 10 s backoff
    cs = kube_cluster.wait_for(restarted_twice, timeout=60, message="two restarts")
    assert cs.last_state.terminated.exit_code == 3
    assert cs.last_state.terminated.reason == "Error"
    kube_cluster.wait_for(
        lambda: status_of(kube_cluster, ns, "crasher").container_statuses[0].state.waiting or None,
        timeout=30,
        message="waiting in backoff",
    )
    waiting = status_of(kube_cluster, ns, "crasher").container_statuses[0].state.waiting
    assert waiting.reason == "CrashLoopBackOff"
    assert status_of(kube_cluster, ns, "crasher").phase == "Running"
    assert kube_cluster.pod_logs_all("crasher", ns).count("run") >= 3
    # recorded as the kubelet does, for kubectl describe
    kube_cluster.wait_for(
        lambda: {"Started", "BackOff"} <= reasons(kube_cluster, ns, "crasher"),
        timeout=10,
        message="Started and BackOff events",
    )


@pytest.mark.parametrize(
    ("policy", "code", "phase", "restarts"),
    [("Never", 4, "Failed", 0), ("OnFailure", 0, "Succeeded", 0), ("Never", 0, "Succeeded", 0)],
)
def test_restart_policy_and_terminal_phase(
    kube_cluster: Any, kube_namespace: str, policy: str, code: int, phase: str, restarts: int
) -> None:
    ns = kube_namespace
    kube_cluster.core.create_namespaced_pod(
        ns, pod("once", f"raise SystemExit({code})", restartPolicy=policy)
    )
    kube_cluster.wait_for(
        lambda: status_of(kube_cluster, ns, "once").phase == phase, timeout=60, message=phase
    )
    cs = status_of(kube_cluster, ns, "once").container_statuses[0]
    assert cs.state.terminated.exit_code == code
    assert cs.restart_count == restarts
    assert not condition(status_of(kube_cluster, ns, "once"), "Ready")


SERVE = """
import http.server, os, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = os.path.exists(sys.argv[1])
        self.send_response(200 if ok else 503)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer((os.environ["POD_IP"], 8080), Handler).serve_forever()
"""


def test_http_readiness_probe_on_pod_ip(
    kube_cluster: Any, kube_namespace: str, tmp_path: Path
) -> None:
    """Two pods serve the same port on their own IPs; Ready follows the probe both ways."""
    ns, flag = kube_namespace, tmp_path / "ready"
    probe = {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1, "failureThreshold": 1}
    container = {
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": probe,
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
    }
    for name in ("web-a", "web-b"):
        kube_cluster.core.create_namespaced_pod(
            ns, pod(name, SERVE, str(flag), container=container)
        )

    def running(name: str) -> bool:
        s = status_of(kube_cluster, ns, name)
        return s.phase == "Running" and s.container_statuses[0].started

    for name in ("web-a", "web-b"):
        kube_cluster.wait_for(lambda n=name: running(n), timeout=60, message=f"{name} running")
    # the probe answers 503 until the flag exists: not ready, for a while
    time.sleep(2)  # a few probe periods: 503 keeps it not ready
    assert not condition(status_of(kube_cluster, ns, "web-a"), "Ready")
    flag.write_text("yes")
    for name in ("web-a", "web-b"):
        kube_cluster.wait_for(
            lambda n=name: condition(status_of(kube_cluster, ns, n), "Ready"),
            timeout=30,
            message=f"{name} ready",
        )
    ips = {status_of(kube_cluster, ns, n).pod_ip for n in ("web-a", "web-b")}
    assert len(ips) == 2
    flag.unlink()
    kube_cluster.wait_for(
        lambda: not condition(status_of(kube_cluster, ns, "web-a"), "Ready"),
        timeout=30,
        message="web-a not ready again",
    )
    assert status_of(kube_cluster, ns, "web-a").container_statuses[0].restart_count == 0


def test_exec_readiness_probe(kube_cluster: Any, kube_namespace: str, tmp_path: Path) -> None:
    ns, flag = kube_namespace, tmp_path / "ready"
    probe = {"exec": {"command": ["test", "-f", str(flag)]}, "periodSeconds": 1}
    kube_cluster.core.create_namespaced_pod(
        ns, pod("execp", "import time; time.sleep(600)", container={"readinessProbe": probe})
    )
    kube_cluster.wait_for(
        lambda: status_of(kube_cluster, ns, "execp").phase == "Running",
        timeout=60,
        message="running",
    )
    assert not condition(status_of(kube_cluster, ns, "execp"), "Ready")
    flag.write_text("")
    kube_cluster.wait_for(
        lambda: condition(status_of(kube_cluster, ns, "execp"), "Ready"),
        timeout=30,
        message="ready",
    )


ENV_DUMP = "import json, os; print(json.dumps(dict(os.environ)), flush=True)"


def test_env_is_resolved(kube_cluster: Any, kube_namespace: str) -> None:
    ns, core = kube_namespace, kube_cluster.core
    core.create_namespaced_secret(
        ns,
        {"metadata": {"name": "creds"}, "data": {"password": base64.b64encode(b"s3cret").decode()}},
    )
    core.create_namespaced_config_map(
        ns, {"metadata": {"name": "settings"}, "data": {"queues": "a,b", "level": "debug"}}
    )

    def field(path: str) -> dict[str, Any]:
        return {"fieldRef": {"fieldPath": path}}

    env = [
        {"name": "LITERAL", "value": "plain"},
        {"name": "EXPANDED", "value": "$(LITERAL)-x"},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
        {"name": "QUEUES", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "queues"}}},
        {"name": "POD_NAME", "valueFrom": field("metadata.name")},
        {"name": "POD_NAMESPACE", "valueFrom": field("metadata.namespace")},
        {"name": "POD_UID", "valueFrom": field("metadata.uid")},
        {"name": "POD_IP", "valueFrom": field("status.podIP")},
        {"name": "NODE", "valueFrom": field("spec.nodeName")},
    ]
    container = {
        "env": env,
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CM_"}],
        "workingDir": "/tmp",
    }
    spec = pod("envdump", ENV_DUMP, restartPolicy="Never", container=container)
    spec["spec"]["containers"][0]["command"][-1] += "; print(os.getcwd())"
    created = core.create_namespaced_pod(ns, spec)
    kube_cluster.wait_for(
        lambda: status_of(kube_cluster, ns, "envdump").phase == "Succeeded",
        timeout=60,
        message="Succeeded",
    )
    lines = kube_cluster.pod_log("envdump", ns).splitlines()
    seen = json.loads(lines[0])
    status = status_of(kube_cluster, ns, "envdump")
    assert seen["LITERAL"] == "plain"
    assert seen["EXPANDED"] == "plain-x"
    assert seen["PASSWORD"] == "s3cret"
    assert seen["QUEUES"] == "a,b"
    assert seen["CM_level"] == "debug"
    assert seen["POD_NAME"] == "envdump"
    assert seen["POD_NAMESPACE"] == ns
    assert seen["POD_UID"] == created.metadata.uid
    assert seen["POD_IP"] == status.pod_ip
    assert seen["NODE"] == kube_cluster.node
    assert Path(seen["KUBECONFIG"]).is_file()
    assert seen["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert lines[1] == "/tmp"


def test_missing_secret_is_reported_then_recovered(kube_cluster: Any, kube_namespace: str) -> None:
    ns = kube_namespace
    env = [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]
    kube_cluster.core.create_namespaced_pod(
        ns, pod("nosecret", "import time; time.sleep(600)", container={"env": env})
    )

    def config_error() -> Any:
        cs = status_of(kube_cluster, ns, "nosecret").container_statuses
        waiting = cs and cs[0].state.waiting
        return waiting if waiting and waiting.reason == "CreateContainerConfigError" else None

    state = kube_cluster.wait_for(config_error, timeout=30, message="CreateContainerConfigError")
    assert 'secret "absent" not found' in state.message
    assert status_of(kube_cluster, ns, "nosecret").phase == "Pending"
    # the Secret appears: the container starts, and waiting for it was no restart
    kube_cluster.core.create_namespaced_secret(
        ns, {"metadata": {"name": "absent"}, "stringData": {"k": "v"}}
    )
    kube_cluster.wait_for(
        lambda: status_of(kube_cluster, ns, "nosecret").phase == "Running",
        timeout=30,
        message="started once the Secret exists",
    )
    assert status_of(kube_cluster, ns, "nosecret").container_statuses[0].restart_count == 0


STUBBORN = """
import os, pathlib, signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: pathlib.Path(sys.argv[1]).write_text("term"))
pathlib.Path(sys.argv[1] + ".pid").write_text(str(os.getpid()))
while True:
    time.sleep(0.1)
"""


def test_deletion_waits_grace_then_kills(
    kube_cluster: Any, kube_namespace: str, tmp_path: Path
) -> None:
    """A process that ignores SIGTERM is killed after the grace period; then the pod goes."""
    ns, marker = kube_namespace, tmp_path / "stubborn"
    kube_cluster.core.create_namespaced_pod(
        ns, pod("stubborn", STUBBORN, str(marker), terminationGracePeriodSeconds=3)
    )
    pid_file = Path(str(marker) + ".pid")
    kube_cluster.wait_for(pid_file.exists, timeout=60, message="started")
    pid = int(pid_file.read_text())
    kube_cluster.core.delete_namespaced_pod("stubborn", ns)
    kube_cluster.wait_for(marker.exists, timeout=10, message="SIGTERM delivered")
    # still there during the grace period: the object waits for the process
    assert kube_cluster.core.read_namespaced_pod("stubborn", ns).metadata.deletion_timestamp
    assert Path(f"/proc/{pid}").exists()

    def gone() -> bool:
        names = [p.metadata.name for p in kube_cluster.core.list_namespaced_pod(ns).items]
        return "stubborn" not in names

    kube_cluster.wait_for(gone, timeout=30, message="pod object removed")
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_failed_liveness_probe_restarts_container(
    kube_cluster: Any, kube_namespace: str, tmp_path: Path
) -> None:
    ns, flag = kube_namespace, tmp_path / "alive"
    flag.write_text("")
    probe = {
        "exec": {"command": ["test", "-f", str(flag)]},
        "periodSeconds": 1,
        "failureThreshold": 2,
    }
    kube_cluster.core.create_namespaced_pod(
        ns,
        pod(
            "live",
            "import time; time.sleep(600)",
            terminationGracePeriodSeconds=2,
            container={"livenessProbe": probe},
        ),
    )
    kube_cluster.wait_for(
        lambda: status_of(kube_cluster, ns, "live").phase == "Running",
        timeout=60,
        message="running",
    )
    time.sleep(3)  # healthy probes: no restart
    assert status_of(kube_cluster, ns, "live").container_statuses[0].restart_count == 0
    flag.unlink()

    def restarted() -> Any:
        cs = status_of(kube_cluster, ns, "live").container_statuses[0]
        return cs if cs.restart_count >= 1 else None

    cs = kube_cluster.wait_for(restarted, timeout=30, message="restart after liveness failure")
    assert "liveness" in cs.last_state.terminated.message


def test_kubectl_logs_served_by_the_runner(kube_cluster: Any, kube_namespace: str) -> None:
    ns = kube_namespace
    script = (
        "import sys; print('first', flush=True); print('second', file=sys.stderr, flush=True);"
        "print('third')"
    )
    kube_cluster.core.create_namespaced_pod(ns, pod("talker", script, restartPolicy="Never"))
    kube_cluster.wait_for(
        lambda: status_of(kube_cluster, ns, "talker").phase == "Succeeded",
        timeout=60,
        message="Succeeded",
    )
    out = kube_cluster.kubectl("logs", "talker", "-n", ns).stdout
    assert out.split() == ["first", "second", "third"]
    assert kube_cluster.kubectl("logs", "talker", "-n", ns, "--tail=1").stdout == "third\n"
    missing = kube_cluster.kubectl("logs", "talker", "-n", ns, "--previous", check=False)
    assert missing.returncode != 0
    assert "previous terminated container" in missing.stderr


def test_second_delete_with_shorter_grace_kills_sooner(
    kube_cluster: Any, kube_namespace: str, tmp_path: Path
) -> None:
    ns, marker = kube_namespace, tmp_path / "stubborn"
    kube_cluster.core.create_namespaced_pod(
        ns, pod("slowpoke", STUBBORN, str(marker), terminationGracePeriodSeconds=300)
    )
    pid_file = Path(str(marker) + ".pid")
    kube_cluster.wait_for(pid_file.exists, timeout=60, message="started")
    kube_cluster.core.delete_namespaced_pod("slowpoke", ns)
    kube_cluster.wait_for(marker.exists, timeout=10, message="SIGTERM delivered")
    kube_cluster.core.delete_namespaced_pod("slowpoke", ns, grace_period_seconds=1)

    def gone() -> bool:
        return not kube_cluster.core.list_namespaced_pod(
            ns, field_selector="metadata.name=slowpoke"
        ).items

    # far less than the 300 s the first delete allowed
    kube_cluster.wait_for(gone, timeout=60, message="pod gone after the shorter grace")


def test_init_containers_run_first_in_order(
    kube_cluster: Any, kube_namespace: str, tmp_path: Path
) -> None:
    ns, trail = kube_namespace, tmp_path / "trail"
    append = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')"

    def step(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "image": "x",
            "command": [sys.executable, "-c", append, str(trail), name],
        }

    body = pod("inits", append, str(trail), "main", restartPolicy="Never")
    body["spec"]["initContainers"] = [step("first"), step("second")]
    kube_cluster.core.create_namespaced_pod(ns, body)
    kube_cluster.wait_for(
        lambda: status_of(kube_cluster, ns, "inits").phase == "Succeeded",
        timeout=60,
        message="Succeeded",
    )
    assert trail.read_text().split() == ["first", "second", "main"]
    status = status_of(kube_cluster, ns, "inits")
    assert [s.state.terminated.exit_code for s in status.init_container_statuses] == [0, 0]
    assert condition(status, "Initialized")


def test_failed_init_container_fails_pod_with_never(
    kube_cluster: Any, kube_namespace: str, tmp_path: Path
) -> None:
    ns, flag = kube_namespace, tmp_path / "main-ran"
    body = pod("badinit", "import sys; open(sys.argv[1], 'w')", str(flag), restartPolicy="Never")
    body["spec"]["initContainers"] = [
        {"name": "fails", "image": "x", "command": [sys.executable, "-c", "raise SystemExit(7)"]}
    ]
    kube_cluster.core.create_namespaced_pod(ns, body)
    kube_cluster.wait_for(
        lambda: status_of(kube_cluster, ns, "badinit").phase == "Failed",
        timeout=60,
        message="Failed",
    )
    status = status_of(kube_cluster, ns, "badinit")
    assert status.init_container_statuses[0].state.terminated.exit_code == 7
    assert not condition(status, "Initialized")
    assert status.container_statuses[0].state.waiting.reason == "PodInitializing"
    assert not flag.exists()


def test_sidecar_runs_beside_the_app_and_stops_after_it(
    kube_cluster: Any, kube_namespace: str, tmp_path: Path
) -> None:
    ns, mark = kube_namespace, tmp_path / "sidecar.pid"
    sidecar = (
        "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)"
    )
    waits = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]): time.sleep(0.1)"
    body = pod("withsidecar", waits, str(mark), restartPolicy="Never")
    body["spec"]["initContainers"] = [
        {
            "name": "helper",
            "image": "x",
            "restartPolicy": "Always",
            "command": [sys.executable, "-c", sidecar, str(mark)],
        }
    ]
    kube_cluster.core.create_namespaced_pod(ns, body)
    kube_cluster.wait_for(
        lambda: status_of(kube_cluster, ns, "withsidecar").phase == "Succeeded",
        timeout=60,
        message="app done while the sidecar ran",
    )
    pid = int(mark.read_text())
    kube_cluster.wait_for(
        lambda: (
            not Path(f"/proc/{pid}").exists()
            or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        ),
        timeout=60,
        message="sidecar stopped",
    )


LISTEN_LATER = """
import os, socket, sys, time
while not os.path.exists(sys.argv[1]):
    time.sleep(0.1)
server = socket.create_server((os.environ["POD_IP"], 7000))
while True:
    server.accept()[0].close()
"""


def test_tcp_readiness_probe(kube_cluster: Any, kube_namespace: str, tmp_path: Path) -> None:
    ns, flag = kube_namespace, tmp_path / "listen"
    container = {
        "readinessProbe": {"tcpSocket": {"port": 7000}, "periodSeconds": 1},
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
    }
    kube_cluster.core.create_namespaced_pod(
        ns, pod("tcp", LISTEN_LATER, str(flag), container=container)
    )
    kube_cluster.wait_for(
        lambda: status_of(kube_cluster, ns, "tcp").phase == "Running", timeout=60, message="run"
    )
    time.sleep(2)  # a few probe periods with nothing listening
    assert not condition(status_of(kube_cluster, ns, "tcp"), "Ready")
    flag.write_text("")
    kube_cluster.wait_for(
        lambda: condition(status_of(kube_cluster, ns, "tcp"), "Ready"), timeout=30, message="ready"
    )
