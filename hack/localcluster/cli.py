"""`python hack/localcluster.py up|down|status|env|images` and the same as a Python API
(`up`, `down`) for the pytest fixtures."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import images as node_images
from . import teardown
from .controlplane import COMPONENTS
from .node import SOCKET_PATH_MAX, NodePaths
from .state import STATE_ENV, StateDir, cluster_processes, stop_supervisor, supervisor_pid, sweep

HACK = Path(__file__).resolve().parents[1]
ENTRY = HACK / "localcluster.py"
DEFAULT_STATE = HACK.parent / ".localcluster"
UP_TIMEOUT = 300.0
NODE_BINARIES = ("kubelet", "kube-proxy", "coredns", "pause")
NODE_COMMANDS = ("containerd", "ctr", "runc", "nsenter", "iptables", "buildah", "mmdebstrap")


class ClusterError(Exception):
    """The cluster could not be started (the message says why and where the logs are)."""


def default_bin_dir() -> Path:
    out = subprocess.run(
        [str(HACK / "build-tools.sh"), "--print-bin"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip().splitlines()[-1])


def missing_binaries(bin_dir: Path) -> list[str]:
    return [n for n in (*COMPONENTS, "kubectl", *NODE_BINARIES) if not (bin_dir / n).is_file()]


def missing_commands() -> list[str]:
    """The Debian packages' programs the node needs (hack/bootstrap.sh installs them)."""
    path = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
    return [c for c in NODE_COMMANDS if shutil.which(c, path=path) is None]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def up(
    state_dir: str | os.PathLike[str] = DEFAULT_STATE,
    *,
    bin_dir: Path | None = None,
    owner_pid: int | None = None,
    node_name: str = "localnode",
    images: tuple[str, ...] = node_images.NAMES,
    timeout: float = UP_TIMEOUT,
) -> dict[str, Any]:
    """Start the cluster in state_dir (or find it running) and return its ready info.

    ``images`` are the cached images (hack/localcluster/images.py) the node gets; the
    node's own pause and coredns always."""
    state = StateDir.at(state_dir)
    deepest = len(str(NodePaths(state.root.resolve()).deepest_kubelet_socket).encode())
    if deepest > SOCKET_PATH_MAX:
        raise ClusterError(
            f"the state directory {state.root} is too deep: the kubelet's sockets below it "
            f"would take {deepest} bytes, more than a unix socket's path allows "
            f"({SOCKET_PATH_MAX}); choose a directory at least {deepest - SOCKET_PATH_MAX} "
            "characters shorter"
        )
    if supervisor_pid(state) is not None:
        return _wait_ready(state, timeout)
    # a previous supervisor died without cleaning up: nothing of it may survive
    sweep(state)
    teardown.sweep_node(state.root)
    state.ready_file.unlink(missing_ok=True)
    state.pidfile.unlink(missing_ok=True)
    bin_dir = bin_dir or default_bin_dir()
    missing = missing_binaries(bin_dir)
    if missing:
        raise ClusterError(
            f"missing {', '.join(missing)} in {bin_dir}: build them with hack/build-tools.sh "
            "(make tools; a cold build takes about 20-30 minutes)"
        )
    absent = missing_commands()
    if absent:
        raise ClusterError(f"missing {', '.join(absent)}: install them with hack/bootstrap.sh")
    stale = node_images.stale(bin_dir)
    if stale:
        raise ClusterError(
            f"images {', '.join(stale)} are missing or out of date: build them with "
            "`python hack/localcluster.py images` (hack/bootstrap.sh does)"
        )
    state.make()
    argv = [
        sys.executable,
        str(ENTRY),
        "supervise",
        f"--state-dir={state.root}",
        f"--bin-dir={bin_dir}",
        f"--node-name={node_name}",
        f"--images={','.join(images)}",
    ]
    if owner_pid is not None:
        argv.append(f"--owner-pid={owner_pid}")
    with state.supervisor_log.open("ab") as log:
        subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, STATE_ENV: str(state.root)},
            cwd=state.root,
        )
    return _wait_ready(state, timeout)


def _wait_ready(state: StateDir, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen_pidfile = False
    while time.monotonic() < deadline:
        info = state.read_json(state.ready_file)
        if info:
            return info
        alive = supervisor_pid(state) is not None
        seen_pidfile = seen_pidfile or alive
        if seen_pidfile and not alive:
            break
        time.sleep(0.2)
    down(state.root)
    raise ClusterError(
        f"the local cluster did not start; logs in {state.logs}\n{_tail(state.supervisor_log)}"
    )


def down(state_dir: str | os.PathLike[str] = DEFAULT_STATE) -> list[int]:
    """Stop the cluster gracefully, then SIGKILL anything of it still alive."""
    state = StateDir.at(state_dir)
    session = supervisor_pid(state)
    stop_supervisor(state)
    killed = sweep(state, session)
    teardown.sweep_node(state.root)
    state.ready_file.unlink(missing_ok=True)
    state.pidfile.unlink(missing_ok=True)
    return killed


def _cmd_up(args: argparse.Namespace) -> int:
    info = up(args.state_dir)
    print(f"# local cluster up in {info['state_dir']} (API {info['server']})", file=sys.stderr)
    print(f"export KUBECONFIG={info['kubeconfig']}")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    killed = down(args.state_dir)
    if killed:
        print(f"killed leftover processes {killed}", file=sys.stderr)
    print("local cluster stopped", file=sys.stderr)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    state = StateDir.at(args.state_dir)
    info = state.read_json(state.ready_file)
    pid = supervisor_pid(state)
    if pid is None or info is None:
        print("not running" if pid is None else f"starting (supervisor {pid})")
        return 1
    print(json.dumps(info, indent=2))
    print(f"processes: {sorted(cluster_processes(state, pid))}")
    return 0


def _cmd_env(args: argparse.Namespace) -> int:
    state = StateDir.at(args.state_dir)
    print(f"export KUBECONFIG={state.admin_kubeconfig}")
    return 0


def _cmd_images(args: argparse.Namespace) -> int:
    return node_images.main(["--stale"] if args.stale else [])


def _cmd_supervise(args: argparse.Namespace) -> int:
    from .supervisor import Options, main

    main(
        Options(
            state=StateDir.at(args.state_dir),
            bin_dir=Path(args.bin_dir),
            node_name=args.node_name,
            owner_pid=args.owner_pid,
            images=tuple(n for n in args.images.split(",") if n),
        )
    )
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="localcluster", description="A local Kubernetes: control plane and a real node."
    )
    root.add_argument("--state-dir", default=str(DEFAULT_STATE), help="default: .localcluster/")
    sub = root.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start (or find running) and print the export KUBECONFIG line")
    supervise = sub.add_parser("supervise", help="internal: the daemon started by up")
    supervise.add_argument("--state-dir", dest="state_dir", default=str(DEFAULT_STATE))
    supervise.add_argument("--bin-dir", required=True)
    supervise.add_argument("--node-name", default="localnode")
    supervise.add_argument("--owner-pid", type=int)
    supervise.add_argument("--images", default=",".join(node_images.NAMES))
    sub.add_parser("down", help="stop everything, pods included")
    sub.add_parser("status", help="print the ready info and the live processes")
    sub.add_parser("env", help="print the export KUBECONFIG line")
    images = sub.add_parser("images", help="build the node's images (cached by their inputs)")
    images.add_argument("--stale", action="store_true", help="only name those to be built")
    return root


COMMANDS = {
    "up": _cmd_up,
    "down": _cmd_down,
    "status": _cmd_status,
    "env": _cmd_env,
    "images": _cmd_images,
    "supervise": _cmd_supervise,
}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ClusterError as e:
        print(f"localcluster: {e}", file=sys.stderr)
        return 1
