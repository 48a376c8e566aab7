"""Fail when docs, configs or code comments speak of development history.

The repository describes the product as it is now; what changed and why belongs in commit
messages. This check reads every tracked text file (Markdown, Python, YAML, shell, TOML) and
reports lines that name development sessions, issue numbers, lent machines, device time or
carry folders.

    python tools/check_no_history.py [FILE ...]     # default: every tracked file
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SUFFIXES = {".md", ".py", ".yaml", ".yml", ".sh", ".toml", ".txt", ".cfg", ".ini"}
PATTERN = re.compile(
    r"\bsessions? \d|\bsession-\d|\bthis session\b|\bearlier session|\bprevious session"
    r"|\blent (box|machine|gpu)|\b(gpu|h100|h200) box\b|\bdevice (time|call)s?\b|\.carry\b"
    r"|\(issue \d|\bissue #?\d+\b|\bs\d+_\w+\.png",
    re.IGNORECASE,
)
# Upstream projects' own issues and pull requests may be cited.
ALLOWED = re.compile(r"github\.com|rlinf|upstream|isaac ?lab|pull request|\bPR #", re.IGNORECASE)
SELF = Path(__file__).resolve()


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout
    return [Path(p) for p in out.splitlines()]


def offending_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each line of ``path`` that speaks of history."""
    if path.suffix not in SUFFIXES or path.resolve() == SELF:
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, FileNotFoundError):
        return []
    return [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1)
            if PATTERN.search(line) and not ALLOWED.search(line)]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    files = [Path(a) for a in argv] if argv else tracked_files()
    found = [(f, n, line) for f in files for n, line in offending_lines(f)]
    for f, n, line in found:
        print(f"{f}:{n}: {line}")
    if found:
        print(f"\n{len(found)} line(s) speak of development history. Docs, configs and comments describe "
              f"the product as it is now; put the story in the commit message.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
