# jobqueue-operator: run `make help` for the targets.
SHELL := /bin/bash
# Everything runs in the project virtualenv that `make bootstrap` creates (never the system
# interpreter); its bin/ comes first on PATH, so `jobq` and the tools resolve there.
VENV := $(CURDIR)/.venv
PYTHON ?= $(VENV)/bin/python
TOOLS_BIN := $(shell hack/build-tools.sh --print-bin)
export PATH := $(VENV)/bin:$(TOOLS_BIN):$(PATH)
KIND_CLUSTER ?= jobqueue
IMAGE_REGISTRY ?= ghcr.io/jobqueue-operator
IMAGE_TAG ?= dev

.DEFAULT_GOAL := help
.PHONY: help bootstrap tools demo test test-fast lint bench bench-full chaos chaos-quick \
        cluster-up cluster-down kind-up kind-down images docker-images manifests crds docs

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

bootstrap: ## install Debian packages, a .venv with this package and its dev extras, and the Go-built tools
	hack/bootstrap.sh

tools: ## build the Kubernetes binaries, etcd, CoreDNS, helm, kind once into ~/.cache (cached)
	hack/build-tools.sh

demo: bootstrap ## bring up the local cluster, Redis and the operator; run a burst and watch it scale
	$(PYTHON) hack/demo.py

# The suite mostly waits (on Redis, API servers, pods), so it runs in TEST_WORKERS processes
# (pytest-xdist); each process that runs a cluster test brings up its own local cluster, side
# by side with the others. TEST_WORKERS=0 runs everything in this one process.
TEST_WORKERS ?= 3
PYTEST_PARALLEL = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS))

test: bootstrap ## run the whole test suite (real redis-server, real kube-apiserver)
	$(PYTHON) -m pytest $(PYTEST_PARALLEL)

test-fast: bootstrap ## unit and Redis tests only (no Kubernetes)
	$(PYTHON) -m pytest $(PYTEST_PARALLEL) -m "not cluster"

lint: bootstrap ## ruff, mypy, helm lint, promtool
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy
	@if [ -d charts/jobqueue-operator ]; then helm lint charts/jobqueue-operator; fi
	@if [ -d manifests/prometheus ]; then promtool check rules manifests/prometheus/*.yaml; fi

bench: bootstrap ## quick benchmarks (a few minutes); writes bench/RESULTS.md
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[bench]'
	$(PYTHON) -m bench --quick

bench-full: bootstrap ## full benchmarks; writes bench/RESULTS.md
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[bench]'
	$(PYTHON) -m bench --full

chaos: bootstrap ## faults at scale (about 20 min): workers, network cut, operator, BullMQ/Celery side by side; writes bench/RESULTS.md
	$(PYTHON) -m bench.chaos --full

chaos-quick: bootstrap ## the chaos runs at a small size (about 6 min)
	$(PYTHON) -m bench.chaos --quick

cluster-up: images ## start the local control plane and node (state in .localcluster/); prints export KUBECONFIG=...
	@$(PYTHON) hack/localcluster.py up

cluster-down: ## stop the local cluster: pods, node, control plane
	@$(PYTHON) hack/localcluster.py down

kind-up: ## create a kind cluster (machines with Docker only)
	kind create cluster --name $(KIND_CLUSTER) --wait 120s

kind-down: ## delete the kind cluster
	kind delete cluster --name $(KIND_CLUSTER)

images: ## build the local node's images with buildah (worker, operator, ...; cached by their inputs)
	@hack/build-tools.sh >/dev/null
	@$(PYTHON) hack/localcluster.py images

docker-images: ## build the worker and operator images with Docker (for kind)
	docker build -f worker/Dockerfile -t $(IMAGE_REGISTRY)/jobqueue-worker:$(IMAGE_TAG) .
	docker build -f operator/Dockerfile -t $(IMAGE_REGISTRY)/jobqueue-operator:$(IMAGE_TAG) .

crds: bootstrap ## regenerate crds/ and the JobQueue reference from the pydantic spec
	$(PYTHON) -m jobqueue_operator.crdgen

manifests: crds ## regenerate manifests/install.yaml from the chart
	hack/render-manifests.sh
