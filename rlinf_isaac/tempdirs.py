"""Temporary folders of a run: under one folder per run, removed when its driver exits.

The driver of a run that starts its own Ray instance creates ``/tmp/rlinf_run_<pid>_*`` and
hands it to every worker as ``RLINF_TMPDIR``; simulator sockets and simulator-process logs are
made under it, and the driver's reaper (``cluster/reaper.py``) removes it when the driver exits,
killed or not. Outside a run (a CLI tool, a test) they go to the system's temporary folder and
their owner removes them when it closes.
"""

from __future__ import annotations

import os
import tempfile

__all__ = ["RUN_TMP_ENV", "make_tempdir", "make_run_tmp_root"]

RUN_TMP_ENV = "RLINF_TMPDIR"


def make_tempdir(prefix: str) -> str:
    """A new temporary folder: under the run's ``RLINF_TMPDIR`` when set, else the system's."""
    root = os.environ.get(RUN_TMP_ENV)
    if root:
        os.makedirs(root, exist_ok=True)  # on another node of the cluster it does not exist yet
    return tempfile.mkdtemp(prefix=prefix, dir=root or None)


def make_run_tmp_root() -> str:
    """The run's temporary root (``/tmp/rlinf_run_<driver pid>_*``), exported as ``RLINF_TMPDIR``."""
    root = tempfile.mkdtemp(prefix=f"rlinf_run_{os.getpid()}_")
    os.environ[RUN_TMP_ENV] = root
    return root
