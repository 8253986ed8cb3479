"""Small Linux primitives for the local host driver: commands, /proc, mounts, cgroups, the Docker ping.

Why a module of its own: the driver's logic (what to create, in which order, how to undo it) reads better without
the parsing of /proc/self/mountinfo and /proc/PID/* next to it, and these helpers are plain functions of the
machine's state that tests can call to check that nothing was left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from corral.model.errors import ProvisioningFailed

PROC = Path("/proc")
NETNS_DIR = Path("/var/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
# dockerd, containerd, docker-proxy and ip live in sbin; a server started from a login shell may not have it on PATH.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def system_env() -> dict[str, str]:
    """The current environment with the system sbin/bin directories appended to PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{env['PATH']}:{SYSTEM_PATH}" if env.get("PATH") else SYSTEM_PATH
    return env


def which(program: str) -> str | None:
    return shutil.which(program, path=system_env()["PATH"])


def executable(program: str) -> str:
    path = which(program)
    if path is None:
        raise ProvisioningFailed(f"{program} is not installed (run scripts/setup.sh)")
    return path


def run(args: list[str], *, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run a command (argument list, never a shell), raising ProvisioningFailed with its stderr on failure."""
    cmd = [executable(args[0]), *args[1:]]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=system_env(), stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise ProvisioningFailed(f"`{' '.join(args)}` did not finish within {timeout:.0f} s") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
        raise ProvisioningFailed(f"`{' '.join(args)}` failed: {detail}")
    return done


def succeeds(args: list[str], *, timeout: float = 30.0) -> bool:
    try:
        run(args, timeout=timeout)
    except ProvisioningFailed:
        return False
    return True


# --- processes -------------------------------------------------------------------------------------------------


def pids() -> list[int]:
    return [int(entry) for entry in os.listdir(PROC) if entry.isdigit()]


def alive(pid: int | None) -> bool:
    """True if the process exists and is not a zombie (an exited child nobody reaped yet)."""
    if pid is None or pid <= 0:
        return False
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def net_ns_inode(pid: int) -> int | None:
    try:
        return os.stat(PROC / str(pid) / "ns" / "net").st_ino
    except OSError:
        return None


def netns_names() -> set[str]:
    try:
        return set(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return set()


def netns_inode(netns: str) -> int | None:
    """The inode of a named network namespace (equal to st_ino of /proc/PID/ns/net for its members)."""
    try:
        return os.stat(NETNS_DIR / netns).st_ino
    except OSError:
        return None


def pids_in_netns(inode: int) -> set[int]:
    own = os.getpid()
    return {pid for pid in pids() if pid != own and net_ns_inode(pid) == inode}


def pids_mentioning(needle: str) -> set[int]:
    """Processes whose command line has an argument containing `needle` (e.g. a host's private run dir)."""
    own = os.getpid()
    return {pid for pid in pids() if pid != own and any(needle in arg for arg in cmdline(pid))}


def reap(pid: int) -> None:
    """Collect the exit status if `pid` is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def signal_pids(pids_: set[int], sig: signal.Signals) -> None:
    for pid in pids_:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def wait_gone(pids_: set[int], timeout: float) -> set[int]:
    """Wait until none of `pids_` is alive; return those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        for pid in pids_:
            reap(pid)
        left = {pid for pid in pids_ if alive(pid)}
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def terminate(pids_: set[int], grace: float) -> set[int]:
    """SIGTERM, then SIGKILL whatever is still alive after `grace` seconds; return what survived even that."""
    pids_ = {pid for pid in pids_ if alive(pid)}
    if not pids_:
        return set()
    signal_pids(pids_, signal.SIGTERM)
    left = wait_gone(pids_, grace)
    if left:
        signal_pids(left, signal.SIGKILL)
        left = wait_gone(left, 5.0)
    return left


# --- cgroups ---------------------------------------------------------------------------------------------------


def cgroup_dirs(parent: str) -> list[Path]:
    """Every directory of cgroup `parent` (e.g. "/corral-h1") and below, in every mounted hierarchy, deepest first."""
    found: list[Path] = []
    rel = parent.strip("/")
    if not rel or not CGROUP_ROOT.is_dir():
        return found
    candidates = [CGROUP_ROOT / rel]
    with contextlib.suppress(OSError):
        candidates += [CGROUP_ROOT / entry / rel for entry in os.listdir(CGROUP_ROOT)]
    for top in candidates:
        if (top / "cgroup.procs").is_file():
            for dirpath, _dirs, _files in os.walk(top):
                found.append(Path(dirpath))
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def pids_in_cgroup(parent: str) -> set[int]:
    out: set[int] = set()
    for directory in cgroup_dirs(parent):
        with contextlib.suppress(OSError):
            out.update(int(line) for line in (directory / "cgroup.procs").read_text().split())
    out.discard(os.getpid())
    return out


def remove_cgroup(parent: str) -> list[str]:
    """rmdir the cgroup dirs of `parent` (deepest first); return those that could not be removed."""
    failed: list[str] = []
    for directory in cgroup_dirs(parent):
        try:
            directory.rmdir()
        except FileNotFoundError:
            pass
        except OSError as exc:
            failed.append(f"{directory}: {exc.strerror}")
    return failed


# --- mounts ----------------------------------------------------------------------------------------------------


_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    mount_point: str
    fs_type: str


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo (octal)
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def mounts() -> list[Mount]:
    found: list[Mount] = []
    for line in (PROC / "self" / "mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        found.append(Mount(mount_point=_unescape(fields[4]), fs_type=right.split()[0]))
    return found


def mounts_under(roots: list[Path]) -> list[str]:
    """Mount points at or below any of `roots`, deepest first."""
    prefixes = [str(root).rstrip("/") for root in roots]
    points = {
        m.mount_point
        for m in mounts()
        if any(m.mount_point == p or m.mount_point.startswith(p + "/") for p in prefixes)
    }
    return sorted(points, key=lambda p: p.count("/"), reverse=True)


def unmount_under(roots: list[Path]) -> list[str]:
    """Lazily unmount everything mounted below `roots`; return the mount points that are still there."""
    for _attempt in range(3):
        points = mounts_under(roots)
        if not points:
            return []
        for point in points:
            succeeds(["umount", "-l", point])
    return mounts_under(roots)


def fs_type(path: Path) -> str:
    """The type of the filesystem that holds `path` (or would hold it, for a path not created yet)."""
    target = str(path.resolve())
    best, kind = "", "unknown"
    for m in mounts():
        point = m.mount_point.rstrip("/") or "/"
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, m.fs_type
    return kind


# --- docker ----------------------------------------------------------------------------------------------------


def engine_answers(sock_path: str, timeout: float = 2.0) -> bool:
    """True when a Docker engine answers GET /_ping on the unix socket (stdlib only: no SDK outside runtime/)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(sock_path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    except OSError:
        return False
    return status_line.startswith(b"HTTP/1.") and b" 200" in status_line


def tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())
