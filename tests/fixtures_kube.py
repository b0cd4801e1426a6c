"""Fixtures for the local Kubernetes control plane: filled in with hack/localcluster."""
