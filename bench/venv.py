"""The competitors' virtualenv (bench/out/venv), kept apart from the project's environment.

arq and bullmq pin redis<6 and celery pins python-dateutil==2.9; installing them beside the project
would downgrade what it and the kubernetes client need. Every Python system, ours included, runs
from this venv so that all share one redis-py version and its hiredis parser.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENV = BENCH_DIR / "out" / "venv"
REQUIREMENTS = BENCH_DIR / "requirements-competitors.txt"
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


def package_versions(python: Path) -> dict[str, str]:
    """Installed versions of the libraries under test, read from the venv."""
    code = (
        "import importlib.metadata as m, json;"
        "names=['redis','hiredis','arq','saq','rq','celery','kombu','dramatiq','bullmq'];"
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
    pkg = NODE_DIR / "node_modules" / "bullmq" / "package.json"
    if pkg.exists():
        import json

        versions["bullmq (node)"] = json.loads(pkg.read_text())["version"]
    return versions
