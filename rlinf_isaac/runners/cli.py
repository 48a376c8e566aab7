"""Command lines behind run_embodiment.sh and eval_embodiment.sh.

    python -m rlinf_isaac.runners.train [CONFIG] [key=value ...]
    python -m rlinf_isaac.runners.eval  [CONFIG] [key=value ...]
    ... --list   prints the available configs

With no CONFIG (nothing, or a first argument that is a ``key=value`` override) the CPU
quickstart config is used.
"""

from __future__ import annotations

import logging
import sys
from typing import Sequence

from rlinf_isaac.config import ConfigError, list_configs, load_config

__all__ = ["DEFAULT_CONFIG", "parse_args", "main_train", "main_eval"]

DEFAULT_CONFIG = "cpu_quickstart"


def parse_args(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """(config name or None for --list, overrides)."""
    argv = list(argv)
    if argv and argv[0] in ("--list", "-l"):
        return None, []
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0)
    if not argv or "=" in argv[0]:
        return DEFAULT_CONFIG, argv
    return argv[0], argv[1:]


def _load(argv: Sequence[str]):
    name, overrides = parse_args(argv)
    if name is None:
        print("\n".join(list_configs()))
        raise SystemExit(0)
    return name, load_config(name, overrides)


def _fail(e: BaseException) -> int:
    print(f"error: {e}", file=sys.stderr)
    return 2


def main_train(argv: Sequence[str] | None = None) -> int:
    from rlinf_isaac.runners.train_runner import TrainRunner

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        name, cfg = _load(sys.argv[1:] if argv is None else argv)
        runner = TrainRunner(cfg)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        return _fail(e)
    try:
        runner.run()
    finally:
        runner.close()
    lp = cfg.runner.logger.log_path
    print(f"done: tensorboard --logdir {lp}/tensorboard ; videos in {cfg.env.train.video_cfg.video_base_dir}")
    return 0


def main_eval(argv: Sequence[str] | None = None) -> int:
    from rlinf_isaac.runners.eval_runner import run_eval

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        name, cfg = _load(sys.argv[1:] if argv is None else argv)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        return _fail(e)
    print(run_eval(cfg))
    return 0
