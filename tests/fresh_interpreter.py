"""Run a test's script in a fresh Python interpreter and read the JSON line it prints last.

For the torch.compile tests: inductor's C++ build imports setuptools, which refuses a stdlib
distutils that another test may already have imported into the test process."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_json_script(script: str, *args: str, timeout: float = 900) -> dict:
    """``python -c script args...`` from the repository root; -> its last stdout line as JSON."""
    out = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
