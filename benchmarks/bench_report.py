"""The common end of a benchmark script: host facts, the JSON file, the final JSON line."""

from __future__ import annotations

import json
import os
import platform


def emit(report: dict, json_path: str | None) -> int:
    """Add host and core count to ``report``, write it to ``json_path`` (if given) and print it
    as the script's last line; returns 0 (the script's exit code)."""
    report = {"host": platform.node(), "cpus": os.cpu_count(), **report}
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=1)
    print(json.dumps(report))
    return 0
