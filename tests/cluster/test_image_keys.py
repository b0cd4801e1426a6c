"""An image is rebuilt exactly when what it is built from changes: the files its build
context sends (as .dockerignore filters them), its Containerfile, its base."""

from __future__ import annotations

from pathlib import Path

from localcluster import imagekeys

REPO = Path(__file__).resolve().parents[2]
DOCKERIGNORE = (REPO / ".dockerignore").read_text()


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def sent(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in imagekeys.context_files(root, DOCKERIGNORE)}


def test_the_context_is_what_dockerignore_keeps(tmp_path: Path) -> None:
    root = tree(tmp_path, {
        "pyproject.toml": "", "README.md": "", "Makefile": "",
        "worker/jobqueue/a.py": "", "worker/jobqueue/__pycache__/a.cpython-311.pyc": "",
        "operator/x.egg-info/PKG-INFO": "", "operator/op/b.py": "", "operator/op/c.pyc": "",
        "tests/t.py": "", ".venv/lib/site.py": "", "hack/tools/k8s/go.mod": "",
    })  # fmt: skip
    assert sent(root) == {
        "pyproject.toml",
        "README.md",
        "worker/jobqueue/a.py",
        "operator/op/b.py",
    }


def test_the_repositorys_context_holds_the_sources_only() -> None:
    files = sent(REPO)
    assert {"pyproject.toml", "README.md", "worker/Dockerfile", "operator/Dockerfile"} <= files
    assert any(f.startswith("worker/jobqueue/") for f in files)
    assert any(f.startswith("web/jobqueue_web/") for f in files)  # the dashboard, in the operator's
    assert not [f for f in files if f.split("/")[0] not in ("worker", "operator", "web")
                and f not in ("pyproject.toml", "README.md")]  # fmt: skip
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]


def test_the_key_follows_the_sent_files_only(tmp_path: Path) -> None:
    root = tree(tmp_path, {"pyproject.toml": "a", "worker/m.py": "x = 1", "tests/t.py": ""})

    def key() -> str:
        files = list(imagekeys.context_files(root, DOCKERIGNORE))
        return imagekeys.key("FROM base", imagekeys.tree_digest(root, files))

    first = key()
    (root / "tests" / "t.py").write_text("changed")  # not sent
    (root / "worker" / "__pycache__").mkdir()
    (root / "worker" / "__pycache__" / "m.pyc").write_text("compiled")  # ignored
    assert key() == first
    (root / "worker" / "m.py").write_text("x = 2")
    second = key()
    assert second != first
    (root / "worker" / "m.py").chmod(0o755)  # the mode is part of what is sent
    assert key() != second


def test_the_key_takes_each_part_in_order() -> None:
    assert imagekeys.key("a", "b") != imagekeys.key("b", "a")
    assert imagekeys.key("ab") != imagekeys.key("a", "b")
