"""Stop the Ray instance a run started when the run's driver dies (Linux).

A driver killed with ``kill -9`` cannot shut Ray down; Ray's own processes then notice within
a few seconds, except its agents, which linger for about a minute. :func:`spawn_reaper` starts a
small process in its own session that watches the driver and, once the driver is gone, kills
every process of that Ray instance: those whose command line names its session folder, and their
descendants (agents rename themselves, e.g. ``ray::DashboardAgent``). It keeps the process tree
it saw last, so processes that outlive their parent are found too; a PID is only killed if its
start time is still the one it saw (no reused PIDs).

It then removes the run's temporary folder (``RLINF_TMPDIR``, tempdirs.py). With an empty
session folder (a run attached to a cluster it did not start) it only does that.

    python -m rlinf_isaac.cluster.reaper DRIVER_PID SESSION_DIR [TMP_ROOT]
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["spawn_reaper", "session_processes"]

_PROC = Path("/proc")
POLL_S = 1.0


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of ``pid``, or None when it is gone or a zombie."""
    try:
        fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else (int(fields[1]), int(fields[19]))


def session_processes(session_dir: str) -> dict[int, int]:
    """pid -> start time of the processes of the Ray instance in ``session_dir`` and their descendants."""
    parent, start, found = {}, {}, set()
    needle = session_dir.encode()
    for d in _PROC.iterdir():
        if not d.name.isdigit():
            continue
        pid = int(d.name)
        st = _stat(pid)
        if st is None:
            continue
        parent[pid], start[pid] = st
        try:
            if needle in (d / "cmdline").read_bytes():
                found.add(pid)
        except OSError:
            continue
    grown = True
    while grown:
        more = {pid for pid, ppid in parent.items() if ppid in found} - found
        found |= more
        grown = bool(more)
    found.discard(os.getpid())
    return {pid: start[pid] for pid in found}


def _kill(snapshot: dict[int, int]) -> None:
    for pid, started in snapshot.items():
        st = _stat(pid)
        if st is not None and st[1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def watch(driver_pid: int, session_dir: str, tmp_root: str | None = None) -> None:
    """Until ``driver_pid`` is gone, remember the session's processes; then kill them and
    remove ``tmp_root``."""
    seen: dict[int, int] = {}
    driver = _stat(driver_pid)
    while driver is not None and _stat(driver_pid) == driver:
        if session_dir:
            seen.update(session_processes(session_dir))
        time.sleep(POLL_S)
    if session_dir:
        seen.update(session_processes(session_dir))
        _kill(seen)
        time.sleep(1.0)  # processes forked while dying
        _kill(session_processes(session_dir))
    if tmp_root:
        shutil.rmtree(tmp_root, ignore_errors=True)


def spawn_reaper(session_dir: str, driver_pid: int | None = None, tmp_root: str | None = None) -> subprocess.Popen | None:
    """Start the watcher of this driver (or ``driver_pid``) for the Ray instance in
    ``session_dir`` and the run's ``tmp_root``; None where there is no ``/proc`` (it reads it)."""
    if not _PROC.is_dir():
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "rlinf_isaac.cluster.reaper", str(driver_pid or os.getpid()), session_dir,
         tmp_root or ""],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
