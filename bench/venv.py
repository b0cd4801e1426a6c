"""Virtualenvs of the other queue systems, kept apart from the project's environment.

The queue benchmark (section 1) gives every Python system its own virtualenv,
bench/out/venvs/<system>, made from bench/requirements/<system>.txt (the library unpinned, so each
gets its newest release on PyPI, plus hiredis): one shared venv made the resolver fall back to old
releases (bullmq 2.15, celery 5.5) because arq pins redis<6. Ours runs from the project's own
virtualenv. The chaos runs and tests/foreign still use one shared venv (`ensure_venv`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENV = BENCH_DIR / "out" / "venv"
REQUIREMENTS = BENCH_DIR / "requirements-competitors.txt"
SYSTEM_VENVS = BENCH_DIR / "out" / "venvs"
SYSTEM_REQUIREMENTS = BENCH_DIR / "requirements"
NODE_DIR = BENCH_DIR / "node"


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv(venv: Path = VENV, requirements: Path = REQUIREMENTS) -> tuple[Path | None, str]:
    """Create or refresh ``venv`` from ``requirements`` (the competitors' by default; the
    foreign workers' of tests/foreign too); returns (python, message). python is None when
    it failed. A stamp of the requirements skips the install while they are unchanged."""
    python = venv / "bin" / "python"
    stamp = venv / ".requirements-stamp"
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        if not stamp.exists() or stamp.read_text() != requirements.read_text():
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    "-r",
                    str(requirements),
                ],
                check=True,
                timeout=600,
            )
            stamp.write_text(requirements.read_text())
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"virtualenv {venv} could not be installed: {exc}"
    return python, "ok"


OPERATOR_VENV = BENCH_DIR / "out" / "venvs" / "operator"


def ensure_operator_venv() -> tuple[Path | None, str]:
    """The operator as its image installs it: this checkout with the ``operator`` extra
    alone (editable, so the sources run as they are), without the dashboard's official
    Kubernetes client, which kopf would import if it were installed (kube_login.py)."""
    requirements = OPERATOR_VENV.parent / "operator-requirements.txt"
    requirements.parent.mkdir(parents=True, exist_ok=True)
    text = f"-e {BENCH_DIR.parent}[operator]\n"
    if not requirements.exists() or requirements.read_text() != text:
        requirements.write_text(text)
    return ensure_venv(OPERATOR_VENV, requirements)


def ensure_system_venv(requirements: str) -> tuple[Path | None, str]:
    """The virtualenv of one system, from bench/requirements/<requirements>.txt."""
    return ensure_venv(SYSTEM_VENVS / requirements, SYSTEM_REQUIREMENTS / f"{requirements}.txt")


def ensure_node(node_dir: Path = NODE_DIR, probe: str = "bullmq") -> str | None:
    """`npm ci` in ``node_dir`` when ``node_modules/<probe>`` is missing; returns an error
    message or None."""
    if (node_dir / "node_modules" / probe).exists():
        return None
    try:
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=node_dir,
            check=True,
            timeout=300,
            capture_output=True,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        return f"npm ci failed: {exc}"
    return None


LIBRARIES = ["redis", "hiredis", "arq", "saq", "rq", "celery", "kombu", "dramatiq", "bullmq"]


def package_versions(python: Path, names: list[str] = LIBRARIES) -> dict[str, str]:
    """Installed versions of ``names`` in the virtualenv of ``python``."""
    code = (
        "import importlib.metadata as m, json;"
        f"names={names!r};"
        "out={}\n"
        "for n in names:\n"
        "    try: out[n]=m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    try:
        res = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
        import json

        versions: dict[str, str] = json.loads(res.stdout)
    except (subprocess.SubprocessError, OSError, ValueError):
        versions = {}
    return versions


def node_versions(names: tuple[str, ...] = ("bullmq", "ioredis")) -> dict[str, str]:
    """Installed versions of the Node packages in bench/node."""
    import json

    out = {}
    for name in names:
        pkg = NODE_DIR / "node_modules" / name / "package.json"
        if pkg.exists():
            out[name] = json.loads(pkg.read_text())["version"]
    return out
