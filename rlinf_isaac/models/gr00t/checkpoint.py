"""Checkpoint I/O in the Hugging Face layout of GR00T N1.5, from local directories only.

Layout (as published for GR00T N1.5)::

    DIR/config.json                        backbone_cfg + action_head_cfg
    DIR/model.safetensors                  single file, or
    DIR/model.safetensors.index.json       {"metadata": {"total_size": N}, "weight_map": {name: shard}}
    DIR/model-00001-of-0000K.safetensors   shards
    DIR/experiment_cfg/metadata.json       per-embodiment statistics (read by the processor)

Nothing here touches the network: configs are parsed by :mod:`config`, sub-models are built with
their constructors, tensors are read with ``safetensors``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import torch

from rlinf_isaac.models.gr00t.config import GR00TConfig
from rlinf_isaac.models.gr00t.modeling import GR00TN15

__all__ = ["Pretrained", "load_pretrained", "save_pretrained", "load_state_dict_files", "parse_size",
           "CONFIG_NAME", "WEIGHTS_NAME", "WEIGHTS_INDEX_NAME", "METADATA_NAME"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
METADATA_NAME = "experiment_cfg/metadata.json"
_LM_PREFIX = "backbone.eagle_model.language_model."
_LM_HEAD = _LM_PREFIX + "lm_head.weight"
_EMBED = _LM_PREFIX + "model.embed_tokens.weight"
_PROVIDERS = "save_pretrained / the SFT trainer (python -m rlinf_isaac.sft), or a downloaded GR00T N1.5 checkpoint"


class Pretrained(NamedTuple):
    """What :func:`load_pretrained` returns: the model and the ``metadata.json`` dict (or None)."""

    model: GR00TN15
    metadata: dict[str, Any] | None


def parse_size(size: int | str) -> int:
    """Bytes of ``"5GB"``, ``"200MB"``, ``"10KB"``, ``"123"`` or an int (decimal units, as HF)."""
    if isinstance(size, int):
        return size
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?B?)\s*", str(size).upper())
    if not m:
        raise ValueError(f"max_shard_size must be an int or like '5GB', '200MB', got {size!r}")
    mult = {"": 1, "B": 1, "KB": 10**3, "K": 10**3, "MB": 10**6, "M": 10**6, "GB": 10**9, "G": 10**9}[m.group(2)]
    return int(float(m.group(1)) * mult)


# ---------------------------------------------------------------------------------- saving
def _state_dict_for_saving(model: GR00TN15) -> dict[str, torch.Tensor]:
    """Parameters + persistent buffers; the tied ``lm_head.weight`` is dropped (stored once, as HF)."""
    sd = model.state_dict()
    if model.config.backbone_cfg.llm.tie_word_embeddings:
        sd.pop(_LM_HEAD, None)
    return {k: v.detach().contiguous() for k, v in sd.items()}


def _shard(sd: dict[str, torch.Tensor], max_bytes: int) -> list[dict[str, torch.Tensor]]:
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, t in sd.items():
        nbytes = t.numel() * t.element_size()
        if shards[-1] and size + nbytes > max_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += nbytes
    return shards


def _write_weights(sd: dict[str, torch.Tensor], out: Path, max_bytes: int) -> None:
    from safetensors.torch import save_file

    shards = _shard(sd, max_bytes)
    if len(shards) == 1:
        save_file({k: v.clone() for k, v in shards[0].items()}, str(out / WEIGHTS_NAME), metadata={"format": "pt"})
        return
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file({k: v.clone() for k, v in shard.items()}, str(out / fname), metadata={"format": "pt"})
        for k, v in shard.items():
            weight_map[k] = fname
            total += v.numel() * v.element_size()
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / WEIGHTS_INDEX_NAME).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def save_pretrained(model: GR00TN15, path: str | os.PathLike, max_shard_size: int | str = "5GB",
                    metadata: dict[str, Any] | None = None, extra_files: dict[str, str] | None = None) -> Path:
    """Write ``model`` to ``path`` in the GR00T N1.5 layout, atomically.

    Everything is written into a temporary sibling directory which then replaces ``path`` (an
    existing checkpoint there is swapped out only after the new one is complete).
    ``metadata`` -> ``experiment_cfg/metadata.json``; ``extra_files`` maps relative names to text
    (e.g. a tokenizer file). Returns the final path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        model.config.to_json(tmp / CONFIG_NAME)
        _write_weights(_state_dict_for_saving(model), tmp, parse_size(max_shard_size))
        if metadata is not None:
            (tmp / METADATA_NAME).parent.mkdir(parents=True, exist_ok=True)
            (tmp / METADATA_NAME).write_text(json.dumps(metadata, indent=2) + "\n")
        for rel, text in (extra_files or {}).items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text)
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


# ---------------------------------------------------------------------------------- loading
def _missing(path: Path, what: str) -> FileNotFoundError:
    return FileNotFoundError(f"{path} not found ({what}); it is written by {_PROVIDERS}")


def load_state_dict_files(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint directory (single file or sharded with an index), on CPU."""
    from safetensors.torch import load_file

    path = Path(path)
    index, single = path / WEIGHTS_INDEX_NAME, path / WEIGHTS_NAME
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        sd: dict[str, torch.Tensor] = {}
        for fname in sorted(set(weight_map.values())):
            if not (path / fname).exists():
                raise _missing(path / fname, f"a shard listed in {WEIGHTS_INDEX_NAME}")
            sd.update(load_file(str(path / fname)))
        return sd
    if single.exists():
        return load_file(str(single))
    raise _missing(single, f"model weights: neither {WEIGHTS_NAME} nor {WEIGHTS_INDEX_NAME} is present")


def _adapt_keys(sd: dict[str, torch.Tensor], config: GR00TConfig) -> dict[str, torch.Tensor]:
    """Skip LM layers beyond ``select_layer`` (with a note) and resolve the tied ``lm_head``."""
    keep = config.backbone_cfg.select_layer
    layer_re = re.compile(re.escape(_LM_PREFIX) + r"model\.layers\.(\d+)\.")
    skipped = sorted({int(m.group(1)) for k in sd if (m := layer_re.match(k)) and int(m.group(1)) >= keep})
    if skipped:
        warnings.warn(f"checkpoint holds LM layers {skipped[0]}..{skipped[-1]} beyond backbone_cfg.select_layer="
                      f"{keep}; they are unused by GR00T and skipped", stacklevel=3)
        sd = {k: v for k, v in sd.items() if not ((m := layer_re.match(k)) and int(m.group(1)) >= keep)}
    if config.backbone_cfg.llm.tie_word_embeddings:
        head = sd.pop(_LM_HEAD, None)
        if head is not None and _EMBED in sd and not torch.equal(head, sd[_EMBED]):
            warnings.warn(f"{_LM_HEAD} differs from {_EMBED} although tie_word_embeddings=True; "
                          f"the embedding is used for both", stacklevel=3)
        if head is not None and _EMBED not in sd:
            sd[_EMBED] = head
    return sd


def _key_diff(expected: set[str], got: set[str]) -> str:
    missing, unexpected = sorted(expected - got), sorted(got - expected)
    lines = []
    for title, names in (("missing from checkpoint", missing), ("unexpected in checkpoint", unexpected)):
        if names:
            shown = "\n    ".join(names[:20]) + (f"\n    ... and {len(names) - 20} more" if len(names) > 20 else "")
            lines.append(f"  {title} ({len(names)}):\n    {shown}")
    return "\n".join(lines)


def _check_shapes(model_sd: dict[str, torch.Tensor], sd: dict[str, torch.Tensor]) -> None:
    bad = [f"{k}: model {tuple(model_sd[k].shape)} vs checkpoint {tuple(v.shape)}"
           for k, v in sd.items() if k in model_sd and tuple(model_sd[k].shape) != tuple(v.shape)]
    if bad:
        raise ValueError("checkpoint tensor shapes do not match the config:\n  " + "\n  ".join(bad[:20]))


def load_pretrained(path: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype | None = None,
                    strict: bool = True, require_metadata: bool = True, **config_overrides: Any) -> Pretrained:
    """Load a GR00T N1.5-layout checkpoint directory. Returns ``Pretrained(model, metadata)``.

    ``dtype`` casts floating tensors (default: as stored). ``strict`` raises with a readable diff
    of missing / unexpected parameter names. ``config_overrides`` patch config sections, e.g.
    ``backbone_cfg={"attn_implementation": "eager"}``.
    """
    path = Path(path)
    if not path.is_dir():
        raise _missing(path, "checkpoint directory")
    if not (path / CONFIG_NAME).exists():
        raise _missing(path / CONFIG_NAME, "model config")
    metadata = None
    if (path / METADATA_NAME).exists():
        metadata = json.loads((path / METADATA_NAME).read_text())
    elif require_metadata:
        raise _missing(path / METADATA_NAME, "per-embodiment normalisation statistics; "
                                             "pass require_metadata=False to load without them")
    data = json.loads((path / CONFIG_NAME).read_text())
    for section, values in config_overrides.items():
        data.setdefault(section, {}).update(values) if isinstance(values, dict) else data.update({section: values})
    config = GR00TConfig.from_dict(data)
    sd = _adapt_keys(load_state_dict_files(path), config)
    with torch.device(device):
        model = GR00TN15(config)
    model_sd = model.state_dict()
    expected = set(model_sd) - ({_LM_HEAD} if config.backbone_cfg.llm.tie_word_embeddings else set())
    diff = _key_diff(expected, set(sd))
    if diff and strict:
        raise KeyError(f"checkpoint {path} does not match the model built from its config:\n{diff}")
    _check_shapes(model_sd, sd)
    model.load_state_dict(sd, strict=False)
    if dtype is not None:
        model = model.to(dtype=dtype)
    return Pretrained(model, metadata)

