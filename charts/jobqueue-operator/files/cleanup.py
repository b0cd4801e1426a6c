"""Helm pre-delete hook: delete every JobQueue while the operator still runs.

The operator holds a finalizer on each JobQueue; once the operator is uninstalled nobody would
remove it and the objects (and their namespaces) would hang in Terminating. Deleting them first
lets the operator finish its cleanup. The operator's finalizer, if still present after the timeout
(operator not running), is removed so nothing is left stuck; other controllers' finalizers are
left alone.
"""

import os
import sys
import time
from typing import Any

from kubernetes import client, config

GROUP, VERSION, PLURAL = "jobqueue.dev", "v1alpha1", "jobqueues"
# The operator's finalizer (kopf's, named in handlers/lifecycle.py); no other is touched.
FINALIZER = "jobqueue.dev/finalizer"


def release(api: Any, namespace: str, name: str) -> None:
    """Remove our finalizer only: other controllers' finalizers guard their own cleanup. The
    patch carries the resourceVersion read, so a concurrent change is read again."""
    for _ in range(5):
        try:
            item = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except client.ApiException as exc:
            if exc.status == 404:
                return
            raise
        finalizers = item["metadata"].get("finalizers") or []
        if FINALIZER not in finalizers:
            return
        patch = {
            "metadata": {
                "finalizers": [f for f in finalizers if f != FINALIZER],
                "resourceVersion": item["metadata"]["resourceVersion"],
            }
        }
        try:
            api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, patch)
            return
        except client.ApiException as exc:
            if exc.status == 404:
                return
            if exc.status != 409:
                raise


def main() -> int:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    api = client.CustomObjectsApi()
    namespaces = [n for n in os.environ.get("WATCH_NAMESPACES", "").split(",") if n]
    deadline = time.monotonic() + float(os.environ.get("CLEANUP_TIMEOUT", "120"))

    def listed() -> list[dict[str, Any]]:
        if namespaces:
            return [
                item
                for ns in namespaces
                for item in api.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
            ]
        return list(api.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"])

    try:
        found = listed()
    except client.ApiException as exc:
        if exc.status == 404:
            print("the JobQueue CRD is not installed: nothing to clean up")
            return 0
        raise
    for item in found:
        meta = item["metadata"]
        print(f"deleting JobQueue {meta['namespace']}/{meta['name']}", flush=True)
        namespace, name = meta["namespace"], meta["name"]
        try:
            # Foreground: the JobQueue goes only once its worker Deployment is gone, so waiting
            # for the JobQueues below waits for the workers too. (Deleted in the background,
            # the Deployment could outlive the CRD, which Helm deletes next; the garbage
            # collector cannot resolve an owner whose kind is gone and would keep it.)
            api.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, propagation_policy="Foreground"
            )
        except client.ApiException as exc:
            if exc.status != 404:
                raise
    left = listed()
    while left and time.monotonic() < deadline:
        time.sleep(1)
        left = listed()
    for item in left:
        meta = item["metadata"]
        print(
            f"JobQueue {meta['namespace']}/{meta['name']} still present after the timeout "
            f"(is the operator running?): removing the operator's finalizer {FINALIZER}",
            flush=True,
        )
        release(api, meta["namespace"], meta["name"])
    print(f"cleanup done: {len(found)} JobQueue(s) deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
