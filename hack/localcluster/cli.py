"""`python hack/localcluster.py up|down|status|logs|env` and the same as a Python API
(`up`, `down`) for the pytest fixtures."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .container import Backoff
from .controlplane import COMPONENTS
from .pod import pod_dir_name
from .state import STATE_ENV, StateDir, cluster_processes, stop_supervisor, supervisor_pid, sweep

HACK = Path(__file__).resolve().parents[1]
ENTRY = HACK / "localcluster.py"
DEFAULT_STATE = HACK.parent / ".localcluster"
UP_TIMEOUT = 240.0


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
    return [n for n in (*COMPONENTS, "kubectl") if not (bin_dir / n).is_file()]


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
    backoff: Backoff | None = None,
    timeout: float = UP_TIMEOUT,
) -> dict[str, Any]:
    """Start the cluster in state_dir (or find it running) and return its ready info."""
    state = StateDir.at(state_dir)
    if supervisor_pid(state) is not None:
        return _wait_ready(state, timeout)
    # a previous supervisor died without cleaning up: nothing of it may survive
    sweep(state)
    state.ready_file.unlink(missing_ok=True)
    state.pidfile.unlink(missing_ok=True)
    bin_dir = bin_dir or default_bin_dir()
    missing = missing_binaries(bin_dir)
    if missing:
        raise ClusterError(
            f"missing {', '.join(missing)} in {bin_dir}: build them with hack/build-tools.sh "
            "(make tools; a cold build takes about 20-30 minutes)"
        )
    state.make()
    backoff = backoff or Backoff()
    argv = [
        sys.executable,
        str(ENTRY),
        "supervise",
        f"--state-dir={state.root}",
        f"--bin-dir={bin_dir}",
        f"--node-name={node_name}",
        f"--backoff-initial={backoff.initial}",
        f"--backoff-cap={backoff.cap}",
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
    state.ready_file.unlink(missing_ok=True)
    state.pidfile.unlink(missing_ok=True)
    return killed


def pod_log_files(
    state_dir: str | os.PathLike[str], namespace: str, pod: str, container: str | None = None
) -> list[Path]:
    """Log files of the newest pod of that name, one per run, oldest first."""
    state = StateDir.at(state_dir)
    dirs = sorted(
        state.pods.glob(pod_dir_name(namespace, pod, "*")),
        key=lambda d: d.stat().st_mtime,
    )
    if not dirs:
        raise ClusterError(f"no pod {namespace}/{pod} has run on this node")
    containers = sorted(p.name for p in (dirs[-1] / "logs").glob("*"))
    if container is None:
        if len(containers) != 1:
            raise ClusterError(f"pod {pod} has containers {containers}: choose one with -c")
        container = containers[0]
    if container not in containers:
        raise ClusterError(f"pod {pod} has no container {container!r} (has {containers})")
    files = (dirs[-1] / "logs" / container).glob("*.log")
    return sorted(files, key=lambda f: int(f.stem))


def _cmd_up(args: argparse.Namespace) -> int:
    info = up(args.state_dir, backoff=Backoff(args.backoff_initial, args.backoff_cap))
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


def _cmd_logs(args: argparse.Namespace) -> int:
    files = pod_log_files(args.state_dir, args.namespace, args.pod, args.container)
    if args.all:
        chosen = files
    elif args.previous:
        if len(files) < 2:
            raise ClusterError(f"pod {args.pod} has no previous run")
        chosen = [files[-2]]
    else:
        chosen = files[-1:]
    for path in chosen:
        sys.stdout.write(path.read_text(errors="replace"))
    return 0


def _cmd_supervise(args: argparse.Namespace) -> int:
    from .supervisor import Options, main

    main(
        Options(
            state=StateDir.at(args.state_dir),
            bin_dir=Path(args.bin_dir),
            node_name=args.node_name,
            owner_pid=args.owner_pid,
            backoff=Backoff(args.backoff_initial, args.backoff_cap),
        )
    )
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="localcluster", description="A local Kubernetes control plane and pod runner."
    )
    root.add_argument("--state-dir", default=str(DEFAULT_STATE), help="default: .localcluster/")
    sub = root.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("up", "start (or find running) and print the export KUBECONFIG line"),
        ("supervise", "internal: the daemon started by up"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--backoff-initial", type=float, default=10.0)
        p.add_argument("--backoff-cap", type=float, default=300.0)
        if name == "supervise":
            p.add_argument("--state-dir", dest="state_dir", default=str(DEFAULT_STATE))
            p.add_argument("--bin-dir", required=True)
            p.add_argument("--node-name", default="localnode")
            p.add_argument("--owner-pid", type=int)
    sub.add_parser("down", help="stop everything, pod processes included")
    sub.add_parser("status", help="print the ready info and the live processes")
    sub.add_parser("env", help="print the export KUBECONFIG line")
    logs = sub.add_parser("logs", help="print a pod's container log")
    logs.add_argument("pod")
    logs.add_argument("-n", "--namespace", default="default")
    logs.add_argument("-c", "--container")
    logs.add_argument("-p", "--previous", action="store_true", help="the run before the last")
    logs.add_argument("--all", action="store_true", help="every run, oldest first")
    return root


COMMANDS = {
    "up": _cmd_up,
    "down": _cmd_down,
    "status": _cmd_status,
    "env": _cmd_env,
    "logs": _cmd_logs,
    "supervise": _cmd_supervise,
}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ClusterError as e:
        print(f"localcluster: {e}", file=sys.stderr)
        return 1
