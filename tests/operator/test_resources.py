"""Unit tests of the pure Deployment and pod-deletion-cost builders."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jobqueue.endpoints import parse_redis_url
from jobqueue_operator import resources, spec
from pydantic import ValidationError

REPO = Path(__file__).resolve().parents[2]
OWNER = resources.Owner(name="emails", namespace="team-a", uid="1234")


def make_spec(**overrides: Any) -> spec.JobQueueSpec:
    raw: dict[str, Any] = {
        "redis": {
            "url": "redis://redis:6379/0",
            "passwordSecretRef": {"name": "redis-auth", "key": "password"},
        },
        "worker": {"handlers": ["myapp.tasks", "other"], "concurrency": 3},
    }
    raw.update(overrides)
    return spec.JobQueueSpec.model_validate(raw)


def env_of(dep: dict[str, Any]) -> dict[str, Any]:
    container = dep["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_deployment_identity_owner_and_selector() -> None:
    dep = resources.build_deployment(OWNER, make_spec(), replicas=2)
    assert dep["metadata"]["name"] == "emails-worker"
    assert dep["metadata"]["namespace"] == "team-a"
    assert dep["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "jobqueue.dev/v1alpha1",
            "kind": "JobQueue",
            "name": "emails",
            "uid": "1234",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert dep["spec"]["replicas"] == 2
    match = dep["spec"]["selector"]["matchLabels"]
    assert match.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert resources.selector_string("emails") == "jobqueue.dev/jobqueue=emails"


def test_env_follows_the_contract() -> None:
    env = env_of(resources.build_deployment(OWNER, make_spec(queue="mail"), 1))
    assert env["JOBQUEUE_REDIS_URL"] == "redis://redis:6379/0"
    assert env["JOBQUEUE_REDIS_PASSWORD"] == {
        "secretKeyRef": {"name": "redis-auth", "key": "password"}
    }
    assert env["JOBQUEUE_QUEUES"] == "mail"
    assert env["JOBQUEUE_HANDLERS"] == "myapp.tasks,other"
    assert env["JOBQUEUE_CONCURRENCY"] == "3"
    assert env["JOBQUEUE_SHUTDOWN_TIMEOUT"] == "55"  # grace 60 minus the margin
    assert env["JOBQUEUE_METRICS_HOST"] == "$(POD_IP)"
    assert env["JOBQUEUE_WORKER_NAME"] == "$(POD_NAME)"
    assert env["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    names = [e["name"] for e in resources.worker_env("emails", make_spec())]
    # $(POD_IP)/$(POD_NAME) expand only from variables defined earlier in the list.
    assert names.index("POD_IP") < names.index("JOBQUEUE_METRICS_HOST")
    assert names.index("POD_NAME") < names.index("JOBQUEUE_WORKER_NAME")


def test_no_password_env_without_secret_and_queue_defaults_to_name() -> None:
    jq = make_spec(redis={"url": "rediss://r:6380/1"})
    env = env_of(resources.build_deployment(OWNER, jq, 0))
    assert "JOBQUEUE_REDIS_PASSWORD" not in env
    assert env["JOBQUEUE_QUEUES"] == "emails"


def test_user_env_overrides_without_duplicates() -> None:
    jq = make_spec(
        worker={
            "env": [{"name": "JOBQUEUE_LOG_FORMAT", "value": "text"}, {"name": "X", "value": "1"}]
        }
    )
    container = resources.build_deployment(OWNER, jq, 1)["spec"]["template"]["spec"]["containers"][
        0
    ]
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names))
    assert env_of(resources.build_deployment(OWNER, jq, 1))["JOBQUEUE_LOG_FORMAT"] == "text"


def test_hardened_security_context_by_default_and_overridable() -> None:
    dep = resources.build_deployment(OWNER, make_spec(), 1)
    pod = dep["spec"]["template"]["spec"]
    ctx = pod["containers"][0]["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    # A field set in the spec wins; the hardened defaults it does not mention stay.
    custom = make_spec(
        worker={
            "securityContext": {"runAsUser": 1000, "capabilities": {"add": ["NET_BIND_SERVICE"]}},
            "podSecurityContext": {"fsGroup": 2000},
        }
    )
    pod = resources.build_deployment(OWNER, custom, 1)["spec"]["template"]["spec"]
    ctx = pod["containers"][0]["securityContext"]
    assert ctx["runAsUser"] == 1000
    assert ctx["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["fsGroup"] == 2000
    assert pod["securityContext"]["runAsNonRoot"] is True
    # ... and one set explicitly changes it
    loose = make_spec(worker={"securityContext": {"readOnlyRootFilesystem": False}})
    pod = resources.build_deployment(OWNER, loose, 1)["spec"]["template"]["spec"]
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is False


def test_worker_pods_run_as_the_user_of_the_worker_image() -> None:
    """The image's user owns its home directory; running the pods as another uid leaves the
    worker a home it cannot use (and the chart runs the operator as the image's user too)."""
    dockerfile = (REPO / "worker" / "Dockerfile").read_text()
    uid, gid = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)[-1]
    pod = resources.build_deployment(OWNER, make_spec(), 1)["spec"]["template"]["spec"]
    ctx = pod["securityContext"]
    assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["fsGroup"]) == (int(uid), int(gid), int(gid))


def test_worker_pods_mount_no_service_account_token_unless_asked() -> None:
    pod = resources.build_deployment(OWNER, make_spec(), 1)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    asked = make_spec(worker={"automountServiceAccountToken": True, "serviceAccountName": "api"})
    pod = resources.build_deployment(OWNER, asked, 1)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True and pod["serviceAccountName"] == "api"


def test_worker_scheduling_from_the_jobqueue() -> None:
    zone = {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway"}  # fmt: skip
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "pool", "operator": "In", "values": ["workers"]}]}]}}}  # fmt: skip
    jq = make_spec(worker={
        "affinity": affinity, "topologySpreadConstraints": [zone],
        "priorityClassName": "batch-low", "imagePullSecrets": ["regcred"],
    })  # fmt: skip
    pod = resources.build_deployment(OWNER, jq, 1)["spec"]["template"]["spec"]
    assert pod["affinity"] == affinity
    (spread,) = pod["topologySpreadConstraints"]
    assert spread == {**zone, "labelSelector": {"matchLabels": {"jobqueue.dev/jobqueue": "emails"}}}
    assert pod["priorityClassName"] == "batch-low"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    plain = resources.build_deployment(OWNER, make_spec(), 1)["spec"]["template"]["spec"]
    assert not {"affinity", "topologySpreadConstraints", "priorityClassName"} & plain.keys()


def test_duplicate_env_names_are_refused() -> None:
    twice = [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]
    with pytest.raises(ValidationError, match="duplicate name 'A'"):
        make_spec(worker={"env": twice})


def test_defaults_image_command_probes_grace() -> None:
    pod = resources.build_deployment(OWNER, make_spec(), 1)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == spec.DEFAULT_WORKER_IMAGE
    assert container["command"] == ["jobq", "worker"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["port"] == "metrics"
    assert container["ports"][0]["containerPort"] == 9100
    assert pod["terminationGracePeriodSeconds"] == 60
    custom = make_spec(
        worker={
            "image": "me/app:1",
            "command": ["python", "-m", "app"],
            "resources": {"limits": {"cpu": 1, "memory": "128Mi"}},
        }
    )
    container = resources.build_deployment(OWNER, custom, 1)["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert (container["image"], container["command"]) == ("me/app:1", ["python", "-m", "app"])
    assert container["resources"] == {"limits": {"cpu": 1, "memory": "128Mi"}}


def test_long_names_stay_within_limits() -> None:
    long = "q" * 200
    assert len(resources.deployment_name(long)) <= 63
    assert resources.deployment_name(long) != resources.deployment_name(long + "x")
    assert all(len(v) <= 63 for v in resources.common_labels(long).values())


def test_deletion_costs_rank_busy_pods_high_and_patch_only_changes() -> None:
    pods = {"a": None, "b": "0", "c": "2", "d": "5"}
    registry = [("a", 3), ("b", 0), ("c", 2), ("d", 1), ("gone", 9)]
    patches = resources.deletion_cost_patches(pods, registry)
    costs = {p: v["metadata"]["annotations"][resources.DELETION_COST] for p, v in patches.items()}
    assert costs == {"a": "3", "d": "1"}  # b and c already right; unknown worker ignored
    assert resources.deletion_cost_patches({"x": "4"}, []) == {
        "x": {"metadata": {"annotations": {resources.DELETION_COST: "0"}}}
    }


def test_the_operator_default_image_serves_specs_without_one() -> None:
    def image(jq: spec.JobQueueSpec) -> str:
        dep = resources.build_deployment(OWNER, jq, 1, default_image="reg.local/w:1")
        return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])

    assert image(make_spec()) == "reg.local/w:1"
    assert image(make_spec(worker={"image": "mine:2"})) == "mine:2"  # the spec's own wins


def test_the_http_allow_list_reaches_the_workers() -> None:
    jq = make_spec(worker={"httpAllow": ["10.20.0.0/16", "*.shop.svc.cluster.local"]})
    env = env_of(resources.build_deployment(OWNER, jq, 1))
    assert env["JOBQUEUE_HTTP_ALLOW"] == "10.20.0.0/16,*.shop.svc.cluster.local"
    assert "JOBQUEUE_HTTP_ALLOW" not in env_of(resources.build_deployment(OWNER, make_spec(), 1))


def test_redis_tls_and_acl_user_reach_the_workers() -> None:
    jq = make_spec(
        redis={
            "url": "rediss://redis.shop:6380/2?socket_timeout=5",
            "username": "jobs@shop",
            "passwordSecretRef": {"name": "redis-auth", "key": "password"},
            "caSecretRef": {"name": "redis-ca", "key": "ca.pem"},
            "clientCertSecretRef": {"name": "redis-client"},
        }
    )
    dep = resources.build_deployment(OWNER, jq, 1)
    url = env_of(dep)["JOBQUEUE_REDIS_URL"]
    assert url == (
        "rediss://jobs%40shop@redis.shop:6380/2?socket_timeout=5"
        "&ssl_ca_certs=/etc/jobqueue/redis-ca/ca.crt"
        "&ssl_certfile=/etc/jobqueue/redis-client/tls.crt"
        "&ssl_keyfile=/etc/jobqueue/redis-client/tls.key"
    )
    pod = dep["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["redis-ca"]["secret"] == {
        "secretName": "redis-ca", "items": [{"key": "ca.pem", "path": "ca.crt"}],
        "defaultMode": 0o440,
    }  # fmt: skip
    assert [i["key"] for i in volumes["redis-client"]["secret"]["items"]] == ["tls.crt", "tls.key"]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/etc/jobqueue/redis-ca"]["readOnly"] is True
    assert mounts["/etc/jobqueue/redis-client"]["readOnly"] is True
    plain = resources.build_deployment(OWNER, make_spec(), 1)["spec"]["template"]["spec"]
    assert [v["name"] for v in plain["volumes"]] == ["tmp"]


@pytest.mark.parametrize(
    "url",
    ["rediss+sentinel://s1:26379,s2:26379/mymaster/2?wait_replicas=1",
     "rediss+cluster://n1:6379,n2:6379"],
)  # fmt: skip
def test_tls_files_and_user_reach_sentinel_and_cluster_workers(url: str) -> None:
    jq = make_spec(redis={"url": url, "username": "jobs",
                          "caSecretRef": {"name": "redis-ca", "key": "ca.pem"},
                          "clientCertSecretRef": {"name": "redis-client"}})  # fmt: skip
    worker_url = env_of(resources.build_deployment(OWNER, jq, 1))["JOBQUEUE_REDIS_URL"]
    endpoint = parse_redis_url(worker_url)
    assert endpoint.tls and endpoint.username == "jobs"
    assert endpoint.hosts == parse_redis_url(url).hosts
    assert endpoint.master == parse_redis_url(url).master
    assert endpoint.wait_replicas == parse_redis_url(url).wait_replicas
    assert endpoint.options == {
        "ssl_ca_certs": "/etc/jobqueue/redis-ca/ca.crt",
        "ssl_certfile": "/etc/jobqueue/redis-client/tls.crt",
        "ssl_keyfile": "/etc/jobqueue/redis-client/tls.key",
    }


DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL = r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?"


@given(st.from_regex(rf"^{LABEL}(\.{LABEL}){{0,20}}$", fullmatch=True).filter(
    lambda n: len(n) <= 253))  # fmt: skip
def test_deployment_names_are_valid_for_every_jobqueue_name(name: str) -> None:
    # A JobQueue name is a DNS subdomain (dots allowed); the Deployment's must be one too,
    # of at most 63 characters (e.g. a '.' at the cut must not meet the '-' after it).
    dep = resources.deployment_name(name)
    assert len(dep) <= 63 and DNS_SUBDOMAIN.match(dep), dep
    assert resources.deployment_name(name) == dep  # deterministic


def test_a_dot_at_the_cut_does_not_make_an_invalid_name() -> None:
    name = "a" * 45 + ".b" + "c" * 30
    dep = resources.deployment_name(name)
    assert ".-" not in dep and DNS_SUBDOMAIN.match(dep), dep
