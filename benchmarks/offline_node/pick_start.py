"""Pick the SFT checkpoint to start RL from, out of ``rlinf_isaac.sft.evaluate`` JSON lines.

    cat *.eval.json | python pick_start.py [--low 0.2] [--high 0.7] [--field checkpoint]

The pick is the most successful line with a success rate inside [low, high], else the line
nearest that range. Prints it as JSON (or only ``--field``); prints nothing without lines.
"""

from __future__ import annotations

import argparse
import json
import sys


def pick(rows: list[dict], low: float, high: float) -> dict | None:
    """The row to start from (see the module docstring); None for no rows."""
    def key(row: dict) -> tuple[bool, float]:
        rate = row["success_rate"]
        inside = low <= rate <= high
        return inside, rate if inside else -min(abs(rate - low), abs(rate - high))

    return max(rows, key=key) if rows else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--low", type=float, default=0.2)
    p.add_argument("--high", type=float, default=0.7)
    p.add_argument("--field", default=None, help="print only this key of the picked line")
    a = p.parse_args()
    best = pick([json.loads(line) for line in sys.stdin if line.strip()], a.low, a.high)
    if best is not None:
        print(best[a.field] if a.field else json.dumps(best))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
