"""The images the local node runs, built on this machine with buildah and cached by their inputs.

- ``pause``: the pods' sandbox image (a static binary from hack/tools/pause); registries are
  out of reach, so containerd's `sandbox_image` names this one.
- ``coredns``: the cluster DNS (hack/tools/coredns), FROM scratch.
- ``python``: a STAND-IN for python:3.11-slim-bookworm, which cannot be pulled here: Debian
  bookworm's python3.11 installed by mmdebstrap, with `python` in /usr/local/bin as in the
  official image. It is passed to the project's Dockerfiles as their PYTHON_IMAGE build
  argument; everything above the base is the real Dockerfile.
- ``redis``: a STAND-IN for the chart's redis image (redis:7.4-alpine): Debian bookworm's
  redis-server (7.0), installed by mmdebstrap the same way.
- ``worker`` and ``operator``: worker/Dockerfile and operator/Dockerfile, unchanged.
- ``worker-tests``: the worker image plus the handlers of the operator's cluster tests
  (tests/operator/examples/Dockerfile), as a user extends the image.
- ``foreign``: a STAND-IN for the images of the foreign queue systems' workers (Flowise,
  Dify, Langflow, RQ) of the cluster tests: their real packages on the python stand-in
  (tests/foreign/Containerfile).

Each image is exported as an OCI archive named by the key of its inputs (imagekeys), with a
JSON file beside it (reference, digest); the cluster imports the archives into its
containerd. A key that has an archive is not rebuilt; the few most recently used keys of each
image are kept (worktrees on one machine share the cache).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from . import imagekeys

REPO = Path(__file__).resolve().parents[2]
REGISTRY = "localhost/jobqueue-operator"
BOOKWORM_PACKAGES = ("python3.11", "python3-venv", "python3-pip", "ca-certificates", "passwd")
REDIS_PACKAGES = ("redis-server",)
# As in the official slim images: no documentation, manual pages or translations.
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
)
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NAMES = ("pause", "coredns", "python", "redis", "worker", "operator", "worker-tests", "foreign")


class BuildError(Exception):
    """An image could not be built (the message names the step and its output)."""


@dataclass(frozen=True)
class Image:
    name: str
    ref: str  # repository:tag as the cluster knows it
    key: str  # of the inputs
    archive: str  # OCI archive (path)
    digest: str  # manifest digest, as the node reports it in a pod's imageID
    image_id: str  # config digest

    @property
    def repository(self) -> str:
        return self.ref.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.ref.rsplit(":", 1)[1]


def cache_dir() -> Path:
    """Beside the Go-built tools (hack/build-tools.sh): one cache per machine."""
    explicit = os.environ.get("JOBQUEUE_TOOLS_CACHE")
    base = (
        Path(explicit)
        if explicit
        else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jobqueue-operator"
    )
    return base / "images"


# --- the inputs of each image --------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    name: str
    repository: str
    inputs: Callable[[dict[str, Image], Path], str]  # key text, given the images built before
    build: Callable[[Builder, dict[str, Image], Path, str], None]  # tags the ref
    tag_prefix: str = ""


def _scratch_containerfile(binary: str, user: str, entrypoint: list[str], title: str) -> str:
    return (
        "FROM scratch\n"
        f"COPY {binary} /{binary}\n"
        f'LABEL org.opencontainers.image.title="{title}"\n'
        f"USER {user}\n"
        f"ENTRYPOINT {json.dumps(entrypoint)}\n"
    )


PAUSE_FILE = _scratch_containerfile("pause", "65535:65535", ["/pause"], "localcluster-pause")
COREDNS_FILE = _scratch_containerfile(
    "coredns", "65532:65532", ["/coredns"], "localcluster-coredns"
)
STANDIN_RECIPE = json.dumps(
    {"suite": "bookworm", "variant": "minbase", "include": BOOKWORM_PACKAGES,
     "dpkg": DPKG_EXCLUDES, "python": "/usr/local/bin/python -> /usr/bin/python3.11",
     "path": PATH},
    sort_keys=True,
)  # fmt: skip
REDIS_RECIPE = json.dumps(
    {"suite": "bookworm", "variant": "minbase", "include": REDIS_PACKAGES,
     "dpkg": DPKG_EXCLUDES, "path": PATH},
    sort_keys=True,
)  # fmt: skip
TESTS_CONTEXT = REPO / "tests" / "operator" / "examples"
FOREIGN_CONTEXT = REPO / "tests" / "foreign"
FOREIGN_IGNORE = "**/node_modules\n**/__pycache__\n**/*.pyc\n"


def _dockerfile_inputs(dockerfile: Path, base: str) -> Callable[[dict[str, Image], Path], str]:
    def inputs(built: dict[str, Image], bin_dir: Path) -> str:
        ignore = (REPO / ".dockerignore").read_text()
        files = list(imagekeys.context_files(REPO, ignore))
        return imagekeys.key(
            dockerfile.read_text(), ignore, imagekeys.tree_digest(REPO, files), built[base].key
        )

    return inputs


def _binary_inputs(binary: str, containerfile: str) -> Callable[[dict[str, Image], Path], str]:
    def inputs(built: dict[str, Image], bin_dir: Path) -> str:
        return imagekeys.key(containerfile, imagekeys.file_digest(bin_dir / binary))

    return inputs


def _tests_inputs(built: dict[str, Image], bin_dir: Path) -> str:
    files = list(imagekeys.context_files(TESTS_CONTEXT, "**/__pycache__\n**/*.pyc\n"))
    return imagekeys.key(imagekeys.tree_digest(TESTS_CONTEXT, files), built["worker"].key)


def _foreign_inputs(built: dict[str, Image], bin_dir: Path) -> str:
    files = list(imagekeys.context_files(FOREIGN_CONTEXT, FOREIGN_IGNORE))
    node = shutil.which("node")
    return imagekeys.key(
        imagekeys.tree_digest(FOREIGN_CONTEXT, files),
        imagekeys.file_digest(Path(node)) if node else "no node",
        built["python"].key,
    )


def _build_binary(binary: str, containerfile: str) -> Callable[..., None]:
    def build(b: Builder, built: dict[str, Image], bin_dir: Path, ref: str) -> None:
        with tempfile.TemporaryDirectory(prefix="jq-image-") as tmp:
            shutil.copy2(bin_dir / binary, Path(tmp) / binary)
            (Path(tmp) / "Containerfile").write_text(containerfile)
            b.bud(Path(tmp), Path(tmp) / "Containerfile", ref)

    return build


def _debian_image(
    packages: tuple[str, ...], hook: str | None, cmd: str, title: str, description: str
) -> Callable[..., None]:
    """An image of Debian bookworm packages (mmdebstrap, minbase, no documentation)."""

    def build(b: Builder, built: dict[str, Image], bin_dir: Path, ref: str) -> None:
        with tempfile.TemporaryDirectory(prefix="jq-debian-", dir=b.cache) as tmp:
            rootfs = Path(tmp) / "rootfs.tar"
            argv = ["mmdebstrap", "--variant=minbase", "--quiet"]
            argv += [f"--include={','.join(packages)}"]
            argv += [f"--dpkgopt={o}" for o in DPKG_EXCLUDES]
            argv += [f"--customize-hook={hook}"] if hook else []
            b.run([*argv, "bookworm", str(rootfs)], f"mmdebstrap of {title}")
            container = b.buildah("from", "scratch").strip()
            try:
                b.buildah("add", container, str(rootfs), "/")
                b.buildah(
                    "config", "--env", f"PATH={PATH}", "--env", "LANG=C.UTF-8", "--cmd", cmd,
                    "--label", f"org.opencontainers.image.title={title}",
                    "--label", f"org.opencontainers.image.description={description}",
                    container,
                )  # fmt: skip
                b.buildah("commit", "--quiet", container, ref)
            finally:
                b.buildah("rm", container, check=False)

    return build


_build_standin = _debian_image(
    BOOKWORM_PACKAGES,
    'ln -sf /usr/bin/python3.11 "$1/usr/local/bin/python"',
    "python3",
    "python-standin",
    "A stand-in for python:3.11-slim-bookworm built from Debian bookworm packages",
)
_build_redis = _debian_image(
    REDIS_PACKAGES,
    None,
    "redis-server",
    "redis-standin",
    "A stand-in for the redis image built from Debian bookworm packages",
)


def _build_dockerfile(dockerfile: Path, base: str) -> Callable[..., None]:
    def build(b: Builder, built: dict[str, Image], bin_dir: Path, ref: str) -> None:
        b.bud(REPO, dockerfile, ref, {"PYTHON_IMAGE": built[base].ref}, network=True)

    return build


def _build_tests(b: Builder, built: dict[str, Image], bin_dir: Path, ref: str) -> None:
    dockerfile = TESTS_CONTEXT / "Dockerfile"
    b.bud(TESTS_CONTEXT, dockerfile, ref, {"WORKER_IMAGE": built["worker"].ref})


def _build_foreign(b: Builder, built: dict[str, Image], bin_dir: Path, ref: str) -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise BuildError("the foreign image needs node and npm on the host (hack/bootstrap.sh)")
    with tempfile.TemporaryDirectory(prefix="jq-foreign-", dir=b.cache) as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(
            FOREIGN_CONTEXT, context, ignore=shutil.ignore_patterns("node_modules", "__pycache__")
        )
        (context / "bin").mkdir()
        shutil.copy2(node, context / "bin" / "node")
        npm_ci = [npm, "ci", "--omit=dev", "--no-audit", "--no-fund"]
        b.run([*npm_ci, "--prefix", str(context / "node")], "npm ci of the BullMQ workers")
        b.bud(context, context / "Containerfile", ref, {"PYTHON_IMAGE": built["python"].ref},
              network=True)  # fmt: skip


RECIPES = (
    Recipe("pause", f"{REGISTRY}/pause", _binary_inputs("pause", PAUSE_FILE),
           _build_binary("pause", PAUSE_FILE)),
    Recipe("coredns", f"{REGISTRY}/coredns", _binary_inputs("coredns", COREDNS_FILE),
           _build_binary("coredns", COREDNS_FILE)),
    Recipe("python", f"{REGISTRY}/python-standin", lambda built, b: imagekeys.key(STANDIN_RECIPE),
           _build_standin, tag_prefix="3.11-slim-bookworm-"),
    Recipe("redis", f"{REGISTRY}/redis-standin", lambda built, b: imagekeys.key(REDIS_RECIPE),
           _build_redis, tag_prefix="7-bookworm-"),
    Recipe("worker", f"{REGISTRY}/jobqueue-worker",
           _dockerfile_inputs(REPO / "worker" / "Dockerfile", "python"),
           _build_dockerfile(REPO / "worker" / "Dockerfile", "python")),
    Recipe("operator", f"{REGISTRY}/jobqueue-operator",
           _dockerfile_inputs(REPO / "operator" / "Dockerfile", "python"),
           _build_dockerfile(REPO / "operator" / "Dockerfile", "python")),
    Recipe("worker-tests", f"{REGISTRY}/jobqueue-worker-tests", _tests_inputs, _build_tests),
    Recipe("foreign", f"{REGISTRY}/foreign-workers-standin", _foreign_inputs, _build_foreign),
)  # fmt: skip


# --- building ------------------------------------------------------------------------------


class Builder:
    """buildah with the cache's own storage (overlay; JOBQUEUE_IMAGE_STORAGE_DRIVER=vfs where
    overlay does not work)."""

    def __init__(self, cache: Path, log: Callable[[str], None]) -> None:
        self.cache = cache
        self.log = log
        driver = os.environ.get("JOBQUEUE_IMAGE_STORAGE_DRIVER", "overlay")
        self.storage = [
            f"--root={cache / 'storage'}",
            f"--runroot={cache / 'runroot'}",
            f"--storage-driver={driver}",
        ]

    def run(self, argv: list[str], what: str, check: bool = True) -> str:
        env = {**os.environ, "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"}
        done = subprocess.run(argv, capture_output=True, text=True, env=env)
        if check and done.returncode != 0:
            output = (done.stdout + done.stderr)[-4000:]
            raise BuildError(f"{what} failed (exit {done.returncode}):\n{output}")
        return done.stdout

    def buildah(self, *args: str, check: bool = True) -> str:
        return self.run(["buildah", *self.storage, *args], f"buildah {args[0]}", check)

    def bud(
        self,
        context: Path,
        dockerfile: Path,
        ref: str,
        build_args: dict[str, str] | None = None,
        network: bool = False,
    ) -> None:
        argv = ["bud", "--quiet", "--pull=never", "--format=oci", "-f", str(dockerfile), "-t", ref]
        for name, value in (build_args or {}).items():
            argv += ["--build-arg", f"{name}={value}"]
        with self._pip_trust() as volumes:
            if network:
                # pip reaches PyPI from the build stage: the host's network and CA bundle
                # (mounted for RUN steps only; nothing of it lands in the image).
                argv += ["--network=host", *volumes]
            self.buildah(*argv, str(context))

    @contextlib.contextmanager
    def _pip_trust(self) -> Iterator[list[str]]:
        bundle = next(
            (
                os.environ[v]
                for v in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
                if os.environ.get(v) and Path(os.environ[v]).is_file()
            ),
            "/etc/ssl/certs/ca-certificates.crt",
        )
        with tempfile.TemporaryDirectory(prefix="jq-pip-") as tmp:
            conf = Path(tmp) / "pip.conf"
            lines = ["[global]", "cert = /etc/jobqueue-build/ca.crt"]
            if os.environ.get("PIP_INDEX_URL"):
                lines.append(f"index-url = {os.environ['PIP_INDEX_URL']}")
            conf.write_text("\n".join(lines) + "\n")
            volumes = [f"--volume={conf}:/etc/pip.conf:ro"]
            if Path(bundle).is_file():
                volumes.append(f"--volume={bundle}:/etc/jobqueue-build/ca.crt:ro")
            yield volumes

    def export(self, ref: str, archive: Path) -> tuple[str, str]:
        """The image as an OCI archive; returns (manifest digest, image id)."""
        tmp = archive.with_suffix(".partial")
        tmp.unlink(missing_ok=True)
        digestfile = archive.with_suffix(".digest")
        self.buildah(
            "push", "--quiet", f"--digestfile={digestfile}", ref, f"oci-archive:{tmp}:{ref}"
        )
        image_id = self.buildah("images", "--no-trunc", "--format={{.ID}}", ref).split()[0]
        tmp.replace(archive)
        digest = digestfile.read_text().strip()
        digestfile.unlink()
        return digest, image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


KEEP_PER_NAME = 3  # worktrees of one machine share the cache: keep a few keys of each image


def _meta_path(cache: Path, name: str, key: str) -> Path:
    return cache / f"{name}-{key[:16]}.json"


def _load(cache: Path, name: str, key: str) -> Image | None:
    meta = _meta_path(cache, name, key)
    try:
        image = Image(**json.loads(meta.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return image if image.key == key and Path(image.archive).is_file() else None


def _walk(bin_dir: Path, cache: Path) -> Iterator[tuple[Recipe, str, Image | None]]:
    """Each recipe with its current key and its cached image (None: to be built). A later
    recipe's key takes the keys of the images it is built on."""
    done: dict[str, Image] = {}
    for recipe in RECIPES:
        key = recipe.inputs(done, bin_dir)
        image = _load(cache, recipe.name, key)
        yield recipe, key, image
        done[recipe.name] = image or Image(recipe.name, "", key, "", "", "")


def current(bin_dir: Path, cache: Path | None = None) -> dict[str, Image]:
    """The cached images of the current inputs (a name is absent when it needs a build)."""
    cache = cache or cache_dir()
    return {r.name: image for r, _, image in _walk(bin_dir, cache) if image is not None}


def stale(bin_dir: Path, cache: Path | None = None) -> list[str]:
    """Names of the images whose inputs changed since they were built (or never built)."""
    cache = cache or cache_dir()
    return [r.name for r, _, image in _walk(bin_dir, cache) if image is None]


def ensure(bin_dir: Path, log: Callable[[str], None] | None = None) -> dict[str, Image]:
    """Build what is missing or out of date; the current image of every name."""
    say = log or (lambda message: print(message, file=sys.stderr, flush=True))
    cache = cache_dir()
    with _locked(cache):
        builder = Builder(cache, say)
        built: dict[str, Image] = {}
        for recipe in RECIPES:
            key = recipe.inputs(built, bin_dir)
            image = _load(cache, recipe.name, key)
            if image is None:
                image = _build(builder, recipe, key, built, bin_dir)
            os.utime(_meta_path(cache, recipe.name, key))  # most recently used
            built[recipe.name] = image
            _prune(builder, recipe.name)
        return built


def _build(
    builder: Builder, recipe: Recipe, key: str, built: dict[str, Image], bin_dir: Path
) -> Image:
    ref = f"{recipe.repository}:{recipe.tag_prefix}{key[:12]}"
    archive = builder.cache / f"{recipe.name}-{key[:16]}.oci.tar"
    builder.log(f"images: building {recipe.name} ({ref}) ...")
    t0 = time.monotonic()
    recipe.build(builder, built, bin_dir, ref)
    digest, image_id = builder.export(ref, archive)
    image = Image(recipe.name, ref, key, str(archive), digest, image_id)
    _meta_path(builder.cache, recipe.name, key).write_text(json.dumps(asdict(image), indent=2))
    builder.log(f"images: built {recipe.name} in {time.monotonic() - t0:.0f} s")
    return image


def _prune(builder: Builder, name: str) -> None:
    """Only the most recently used few of an image stay (archive, metadata, storage)."""
    metas = sorted(
        builder.cache.glob(f"{name}-" + "?" * 16 + ".json"),
        key=lambda m: m.stat().st_mtime,
        reverse=True,
    )
    for meta in metas[KEEP_PER_NAME:]:
        with contextlib.suppress(OSError, ValueError, TypeError):
            old = Image(**json.loads(meta.read_text()))
            Path(old.archive).unlink(missing_ok=True)
            builder.buildah("rmi", old.ref, check=False)
        meta.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    from .cli import default_bin_dir

    bin_dir = default_bin_dir()
    if argv[:1] == ["--stale"]:
        print(" ".join(stale(bin_dir)))
        return 0
    try:
        images = ensure(bin_dir)
    except BuildError as e:
        print(f"images: {e}", file=sys.stderr)
        return 1
    for image in images.values():
        print(f"{image.name:13} {image.ref}  {image.digest}")
    return 0
