"""Atomic checkpoints: model (safetensors), optimizer, scheduler, RNG states, step, config.

Layout of a run's checkpoint directory::

    run_dir/
      global_step_20/
        model.safetensors   flat state dict (tied tensors stored once each, as copies)
        optimizer.pt        torch.save of the optimizer state dict
        scheduler.pt        torch.save of the scheduler state dict (absent when None)
        rng_states.pt       capture_rng_states() (python, numpy, torch, cuda)
        extra.pt            caller's extra state (tensors / numbers / strings / containers)
        meta.json           step, config, file sizes; written last, marks the dir complete
      latest                text "global_step_20": the commit point

A save writes everything into ``run_dir/.tmp-global_step_N``, fsyncs each file and the
directory, renames it to ``global_step_N`` (``os.replace``, atomic on POSIX), and only then
replaces ``latest``. Retention first renames a checkpoint to ``.tmp-del-global_step_N`` and
then deletes it, and a listed checkpoint is one whose files all match its meta.json, so a
crash at any point leaves ``latest`` naming a complete checkpoint and lists only complete
ones; a leftover ``.tmp-*`` directory is never loaded (deletions left half done are finished by
the next save, others are reported). Every ``.pt`` file loads with
``torch.load(weights_only=True)``: no pickled code runs on load.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import warnings
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

__all__ = [
    "CheckpointError",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "resolve_checkpoint",
    "list_checkpoints",
    "read_checkpoint_meta",
    "capture_rng_states",
    "restore_rng_states",
]

FORMAT_VERSION = 1
_STEP_DIR = re.compile(r"^global_step_(\d+)$")
_TMP_PREFIX = ".tmp-"
_MODEL, _OPTIM, _SCHED, _RNG, _EXTRA, _META = (
    "model.safetensors", "optimizer.pt", "scheduler.pt", "rng_states.pt", "extra.pt", "meta.json",
)  # fmt: skip


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or corrupt; the message says which and what exists."""


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns (tensors on ``map_location``)."""

    path: Path
    step: int
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None
    scheduler_state: dict[str, Any] | None
    rng_states: dict[str, Any] | None
    config: dict[str, Any] | None
    extra: dict[str, Any]


# ----------------------------------------------------------------------------- RNG states


def capture_rng_states() -> dict[str, Any]:
    """Snapshot of python ``random``, numpy's global RNG, torch CPU and (if present) CUDA RNGs.

    Generators owned by objects (``np.random.default_rng``, ``torch.Generator`` in an env)
    are not global; save their state through ``extra``.
    """
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),  # uint32 [624] -> int64 tensor
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore_rng_states(states: Mapping[str, Any]) -> None:
    """Restore a :func:`capture_rng_states` snapshot; later draws repeat the saved run's."""
    missing = {"python", "numpy", "torch"} - set(states)
    if missing:
        raise CheckpointError(f"rng_states: missing {sorted(missing)}; got keys {sorted(states)}")
    py = states["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))  # tuples may come back as lists
    n = states["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)  # int64 tensor -> uint32 [624]
    np.random.set_state((n["bit_generator"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(states["torch"])
    cuda = states.get("cuda")
    if cuda is None or not torch.cuda.is_available():
        if cuda is not None:
            warnings.warn("checkpoint holds CUDA RNG states but CUDA is unavailable; not restored")
        return
    if len(cuda) != torch.cuda.device_count():
        warnings.warn(
            f"checkpoint holds {len(cuda)} CUDA RNG states, this process sees "
            f"{torch.cuda.device_count()} devices; restoring the first min(...) of them"
        )
    for i, s in enumerate(cuda[: torch.cuda.device_count()]):
        torch.cuda.set_rng_state(s, device=i)


# ----------------------------------------------------------------------------- helpers


def _check_tree(value: Any, where: str, allow_tensors: bool) -> None:
    """Raise a TypeError naming the first value that can't round-trip (JSON / weights_only)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if allow_tensors and isinstance(value, torch.Tensor):
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be str, got {k!r} ({type(k).__name__})")
            _check_tree(v, f"{where}.{k}", allow_tensors)
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_tree(v, f"{where}[{i}]", allow_tensors)
        return
    allowed = "None/bool/int/float/str" + ("/Tensor" if allow_tensors else "") + " in dicts/lists"
    raise TypeError(f"{where}: cannot store {type(value).__name__} ({value!r:.80}); use {allowed}")


def _plain_config(config: Any) -> Any:
    """Dataclass / OmegaConf / Mapping config -> plain dicts and lists (for meta.json)."""
    if is_dataclass(config) and not isinstance(config, type):
        return asdict(config)
    if type(config).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(config, resolve=True)
    if isinstance(config, Mapping):
        return {k: _plain_config(v) for k, v in config.items()}
    return list(map(_plain_config, config)) if isinstance(config, (list, tuple)) else config


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _cpu_state(model_state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU copies; tensors sharing storage (tied weights) are cloned apart."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, t in model_state.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"model_state[{key!r}]: expected a Tensor, got {type(t).__name__}")
        t = t.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        out[key] = t.clone() if ptr in seen and t.numel() > 0 else t
        seen.add(ptr)
    return out


def _write_atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    _fsync_file(tmp)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


# ----------------------------------------------------------------------------- save


def save_checkpoint(
    run_dir: str | os.PathLike,
    *,
    step: int,
    model_state: Mapping[str, torch.Tensor],
    optimizer_state: Mapping[str, Any] | None = None,
    scheduler_state: Mapping[str, Any] | None = None,
    rng_states: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | Any = None,
    extra: Mapping[str, Any] | None = None,
    keep_last: int | None = None,
) -> Path:
    """Write ``run_dir/global_step_{step}`` atomically, point ``latest`` at it, apply retention.

    config: JSON-able mapping (or a dataclass); extra: tensors/numbers/strings in containers.
    keep_last: keep only the newest ``keep_last`` checkpoints (None keeps all).
    Returns the checkpoint directory.
    """
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ValueError(f"save_checkpoint(step=...): expected an int >= 0, got {step!r}")
    if keep_last is not None and (not isinstance(keep_last, int) or keep_last < 1):
        raise ValueError(
            f"save_checkpoint(keep_last=...): expected None or an int >= 1, got {keep_last!r}"
        )
    config = _plain_config(config)
    _check_tree(config, "config", allow_tensors=False)
    _check_tree(dict(extra or {}), "extra", allow_tensors=True)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _finish_interrupted(run_dir)
    name = f"global_step_{step}"
    tmp, final = run_dir / f"{_TMP_PREFIX}{name}", run_dir / name
    if tmp.exists():  # left by an earlier crash at this same step
        shutil.rmtree(tmp)
    tmp.mkdir()
    states = (model_state, optimizer_state, scheduler_state, rng_states)
    _write_files(tmp, step, *states, config, extra)
    _fsync_dir(tmp)
    if final.exists():  # re-saving a step (e.g. after resume): move the old one aside first
        old = run_dir / f"{_TMP_PREFIX}old-{name}"  # restored by _finish_interrupted after a crash here
        os.replace(final, old)
        os.replace(tmp, final)
        _fsync_dir(run_dir)
        shutil.rmtree(old)
    else:
        os.replace(tmp, final)
    _fsync_dir(run_dir)
    _write_atomic_text(run_dir / "latest", name + "\n")  # the commit point
    if keep_last is not None:
        _apply_retention(run_dir, keep_last, keep=final)
    return final


def _write_files(
    d: Path,
    step: int,
    model_state: Mapping[str, torch.Tensor],
    optimizer_state: Mapping[str, Any] | None,
    scheduler_state: Mapping[str, Any] | None,
    rng_states: Mapping[str, Any] | None,
    config: Any,
    extra: Mapping[str, Any] | None,
) -> None:
    """Write and fsync every file of one checkpoint into ``d``; meta.json goes last."""
    from safetensors.torch import save_file

    save_file(_cpu_state(model_state), str(d / _MODEL), metadata={"step": str(step)})
    torch.save(dict(optimizer_state) if optimizer_state is not None else None, d / _OPTIM)
    if scheduler_state is not None:
        torch.save(dict(scheduler_state), d / _SCHED)
    torch.save(dict(rng_states) if rng_states is not None else None, d / _RNG)
    torch.save(dict(extra or {}), d / _EXTRA)
    files = sorted(p.name for p in d.iterdir())
    for f in files:
        _fsync_file(d / f)
    meta = {
        "format_version": FORMAT_VERSION,
        "step": step,
        "config": config,
        "files": {f: (d / f).stat().st_size for f in files},  # truncation check on load
    }
    (d / _META).write_text(json.dumps(meta, indent=2, sort_keys=True))
    _fsync_file(d / _META)


def _apply_retention(run_dir: Path, keep_last: int, keep: Path) -> None:
    """Delete the oldest complete checkpoints beyond ``keep_last`` (never ``keep``): each is
    first renamed out of the listing (atomic), then removed."""
    ckpts = list_checkpoints(run_dir)
    for _, path in ckpts[: max(0, len(ckpts) - keep_last)]:
        if path != keep:
            trash = run_dir / f"{_TMP_PREFIX}del-{path.name}"
            os.replace(path, trash)
            _fsync_dir(run_dir)
            shutil.rmtree(trash)


def _finish_interrupted(run_dir: Path) -> None:
    """Finish what a crash interrupted: deletions (``.tmp-del-*``) and the swap of a re-saved
    step (``.tmp-old-global_step_N`` whose ``global_step_N`` is gone is moved back)."""
    for trash in run_dir.glob(f"{_TMP_PREFIX}del-*"):
        shutil.rmtree(trash, ignore_errors=True)
    for old in run_dir.glob(f"{_TMP_PREFIX}old-global_step_*"):
        final = run_dir / old.name[len(f"{_TMP_PREFIX}old-"):]
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
        elif _is_complete(old):
            os.replace(old, final)
    _fsync_dir(run_dir)


# ----------------------------------------------------------------------------- find / load


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints (``global_step_N`` whose files all match its meta.json) of
    ``run_dir``, oldest first."""
    run_dir = Path(run_dir)
    found = []
    for p in run_dir.iterdir() if run_dir.is_dir() else ():
        m = _STEP_DIR.match(p.name)
        if m and p.is_dir() and _is_complete(p):
            found.append((int(m.group(1)), p))
    return sorted(found)


def _is_complete(d: Path) -> bool:
    try:
        _read_meta(d)
    except (CheckpointError, OSError):
        return False
    return True


def _report_leftovers(run_dir: Path) -> None:
    tmps = sorted(p.name for p in run_dir.glob(f"{_TMP_PREFIX}*"))
    if tmps:
        warnings.warn(
            f"{run_dir}: ignoring incomplete checkpoint dir(s) {tmps} left by an interrupted "
            "save; they are never loaded and can be deleted"
        )


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint directory meant by ``path``: a ``global_step_N`` dir, or a run dir
    (its ``latest``; without ``latest``, its newest complete checkpoint, with a warning)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint path {str(path)!r} does not exist")
    if path.name.startswith(_TMP_PREFIX):
        raise CheckpointError(
            f"{path} is an incomplete checkpoint (a save was interrupted); load the run dir "
            f"{path.parent} or one of its global_step_* dirs instead"
        )
    if (path / _META).is_file() or _STEP_DIR.match(path.name):
        return path
    _report_leftovers(path)
    available = [p.name for _, p in list_checkpoints(path)]
    latest = path / "latest"
    if latest.is_file():
        target = path / latest.read_text().strip()
        swapped = path / f"{_TMP_PREFIX}old-{target.name}"
        if not target.exists() and _is_complete(swapped):  # a re-save of the latest step was cut short
            os.replace(swapped, target)
        if not (target / _META).is_file():
            raise CheckpointError(
                f"{latest} points to {target.name!r}, which is missing or incomplete; "
                f"complete checkpoints here: {available or 'none'} (pass one explicitly)"
            )
        return target
    if not available:
        raise CheckpointError(f"no checkpoint in {path}: no 'latest' file and no global_step_* dir")
    warnings.warn(f"{path} has no 'latest' file; using the newest checkpoint {available[-1]}")
    return path / available[-1]


def _read_meta(d: Path) -> dict[str, Any]:
    try:
        meta = json.loads((d / _META).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{d}: no {_META}; the checkpoint is incomplete") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{d}/{_META} is corrupt: {e}") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{d}: format_version {meta.get('format_version')!r}, this code reads {FORMAT_VERSION}"
        )
    if not isinstance(meta.get("step"), int) or not isinstance(meta.get("files"), dict):
        raise CheckpointError(f"{d}/{_META} is corrupt: no int 'step' or dict 'files'")
    for name, size in meta["files"].items():
        actual = (d / name).stat().st_size if (d / name).is_file() else None
        if actual != size:
            raise CheckpointError(
                f"{d}/{name}: expected {size} bytes, found "
                f"{'no file' if actual is None else f'{actual} bytes'}; the checkpoint is corrupt"
            )
    return meta


def read_checkpoint_meta(path: str | os.PathLike) -> dict[str, Any]:
    """meta.json of the checkpoint at ``path`` after checking every file against it (no tensors read)."""
    return _read_meta(resolve_checkpoint(path))


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> Checkpoint:
    """Load the checkpoint at ``path`` (a run dir -> its latest, or a ``global_step_N`` dir)."""
    from safetensors.torch import load_file

    d = resolve_checkpoint(path)
    meta = _read_meta(d)

    def pt(name: str) -> Any:
        if not (d / name).is_file():
            return None
        try:
            return torch.load(d / name, map_location=map_location, weights_only=True)
        except Exception as e:  # noqa: BLE001 - re-raised with the file named
            raise CheckpointError(f"{d}/{name} could not be read: {e}") from e

    try:
        model_state = load_file(str(d / _MODEL), device=str(map_location))
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"{d}/{_MODEL} could not be read: {e}") from e
    return Checkpoint(
        path=d,
        step=int(meta["step"]),
        model_state=model_state,
        optimizer_state=pt(_OPTIM),
        scheduler_state=pt(_SCHED),
        rng_states=pt(_RNG),
        config=meta.get("config"),
        extra=pt(_EXTRA) or {},
    )
