"""Command lines behind run_embodiment.sh and eval_embodiment.sh.

    python -m rlinf_isaac.runners.train [--config-dir DIR] [CONFIG] [key=value ...]
    python -m rlinf_isaac.runners.eval  [--config-dir DIR] [CONFIG] [key=value ...]
    ... --list               prints the available configs
    ... --default-config     prints the config used when none is given, and why

With no CONFIG (nothing, or a first argument that is a ``key=value`` override) the GPU
quickstart runs when a CUDA GPU is present, the CPU quickstart otherwise. ``--config-dir``
(default: ``config/`` of the repository, or ``$RLINF_ISAAC_CONFIG_DIR``) is where configs are read.
"""

from __future__ import annotations

import logging
import sys
from typing import Sequence

from rlinf_isaac.config import CONFIG_DIR, ConfigError, list_configs, load_config

__all__ = ["default_config", "parse_args", "main_train", "main_eval"]


def default_config() -> tuple[str, str]:
    """(config, why) when none is given: the GPU quickstart with a CUDA GPU, else the CPU one."""
    import torch

    if torch.cuda.is_available():
        return "gpu_quickstart", f"a CUDA GPU is present ({torch.cuda.get_device_name(0)})"
    return "cpu_quickstart", "no CUDA GPU found"


def parse_args(argv: Sequence[str]) -> tuple[str | None, list[str], str]:
    """(config name, or None for --list; overrides; config dir)."""
    argv = list(argv)
    config_dir = str(CONFIG_DIR)
    if argv[:1] == ["--config-dir"]:
        if len(argv) < 2:
            raise ConfigError("--config-dir needs a folder")
        config_dir, argv = argv[1], argv[2:]
    if argv and argv[0] in ("--list", "-l"):
        return None, [], config_dir
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0)
    if argv and argv[0] == "--default-config":
        print("\t".join(default_config()))
        raise SystemExit(0)
    if not argv or "=" in argv[0]:
        name, why = default_config()
        print(f"config: {name} (no config given; {why})", flush=True)
        return name, argv, config_dir
    return argv[0], argv[1:], config_dir


def _load(argv: Sequence[str]):
    name, overrides, config_dir = parse_args(argv)
    if name is None:
        print("\n".join(list_configs(config_dir)))
        raise SystemExit(0)
    return name, load_config(name, overrides, config_dir)


def _fail(e: BaseException) -> int:
    print(f"error: {e}", file=sys.stderr)
    return 2


def _worker_failed(e: BaseException, log_path: str) -> int:
    """A dead or failing worker: its report on stderr, the driver's traceback in the run's logs."""
    import traceback
    from pathlib import Path

    trace = Path(log_path) / "driver_traceback.log"
    try:
        trace.parent.mkdir(parents=True, exist_ok=True)
        trace.write_text("".join(traceback.format_exception(e)))
        where = f"driver traceback: {trace}; worker logs: {Path(log_path) / 'workers'}"
    except OSError:
        where = f"worker logs: {Path(log_path) / 'workers'}"
    print(f"error: the run stopped: {e}\n{where}", file=sys.stderr)
    return 3


def main_train(argv: Sequence[str] | None = None) -> int:
    from rlinf_isaac.cluster.worker_group import WorkerError
    from rlinf_isaac.runners.stop_signal import restore_interrupt
    from rlinf_isaac.runners.train_runner import TrainRunner

    restore_interrupt()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        name, cfg = _load(sys.argv[1:] if argv is None else argv)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        return _fail(e)
    try:
        runner = TrainRunner(cfg)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        return _fail(e)
    except WorkerError as e:
        return _worker_failed(e, cfg.runner.logger.log_path)
    try:
        runner.run()
    except WorkerError as e:
        return _worker_failed(e, cfg.runner.logger.log_path)
    except KeyboardInterrupt as e:  # a second SIGTERM / SIGINT (stop_signal.py)
        print(f"stopped: {e}; the newest checkpoint is in {runner.ckpt_dir}", file=sys.stderr)
        return 128 + (runner.stop_request.signum or 2)
    finally:
        runner.close()
    if runner.stop_request:
        print(f"stopped by {runner.stop_request.name}: {written(cfg)}")
        return runner.stop_request.exit_code
    print(f"done: {written(cfg)}")
    return 0


def written(cfg) -> str:
    """What a run wrote, naming only what exists: TensorBoard logs, checkpoints, videos."""
    from pathlib import Path

    lp = Path(cfg.runner.logger.log_path)
    parts = []
    if (lp / "tensorboard").is_dir():
        parts.append(f"tensorboard --logdir {lp / 'tensorboard'}")
    if (lp / "checkpoints").is_dir():
        parts.append(f"checkpoints in {lp / 'checkpoints'}")
    videos = {Path(v.video_cfg.video_base_dir) for v in (cfg.env.train, cfg.env.eval) if v is not None}
    parts += [f"videos in {v}" for v in sorted(videos) if v.is_dir() and any(v.glob("*.mp4"))]
    return "; ".join(parts) or f"nothing under {lp}"


def main_eval(argv: Sequence[str] | None = None) -> int:
    from rlinf_isaac.cluster.worker_group import WorkerError
    from rlinf_isaac.runners.eval_runner import run_eval
    from rlinf_isaac.runners.stop_signal import restore_interrupt

    restore_interrupt()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        name, cfg = _load(sys.argv[1:] if argv is None else argv)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        return _fail(e)
    try:
        print(run_eval(cfg))
    except (ConfigError, FileNotFoundError, ValueError) as e:
        return _fail(e)
    except WorkerError as e:
        return _worker_failed(e, cfg.runner.logger.log_path)
    return 0
