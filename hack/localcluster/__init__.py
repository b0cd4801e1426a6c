"""A real Kubernetes control plane on loopback plus a local pod runner, for machines without Docker.

Modules, one job each:
  state         the state directory layout, pidfile, and the sweep that leaves no process behind
  pki           the CA, serving and client certificates, the service-account key pair
  kubeconfig    kubeconfig files (admin, controllers, per-pod service-account identity)
  controlplane  command lines of etcd, kube-apiserver, kube-controller-manager, kube-scheduler
  kubeapi       a small asyncio REST client for the runner (httpx)
  node          the Node object and its heartbeat Lease
  podenv        resolution of a container's env (values, secret/configMap refs, fieldRefs)
  probes        readiness/liveness/startup probes (httpGet, tcpSocket, exec)
  container     one container: a local process group, its restarts and backoff
  pod           one pod: its containers, status and graceful deletion
  runner        the watch on pods bound to the node
  supervisor    the daemon that starts and stops all of the above
  cli           `python hack/localcluster.py up|down|status|logs|env`
"""
