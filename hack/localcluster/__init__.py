"""A real Kubernetes on loopback for machines without Docker: a control plane and one node
(containerd, kubelet, kube-proxy, CoreDNS) in a network namespace of its own.

Modules, one job each:
  state         the state directory layout, pidfile, and the sweep that leaves no process behind
  pki           the CA, serving and client certificates, the service-account key pair
  kubeconfig    kubeconfig files (admin, controllers, node)
  controlplane  command lines of etcd, kube-apiserver, kube-controller-manager, kube-scheduler
  nodenet       the node's network namespace, its link to the host, the host's loopback for pods
  cgroups       the node's cgroup: where every pod process lives, and how they are all stopped
  node          configuration and command lines of containerd, the kubelet and kube-proxy
  addons        CoreDNS
  imagekeys     what an image is built from, as one key
  images        the images, built with buildah and mmdebstrap, cached by their keys
  teardown      removing what a node leaves: processes, mounts, cgroups, network
  kubeapi       a small asyncio REST client for the supervisor (httpx)
  supervisor    the daemon that starts and stops all of the above
  cli           `python hack/localcluster.py up|down|status|env|images`
"""
