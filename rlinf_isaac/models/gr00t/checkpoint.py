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
           "CheckpointFileError", "StoredTensor", "read_safetensors_header", "read_tensor_index", "skipped_lm_layers",
           "read_checkpoint_config", "special_token_ids",
           "CONFIG_NAME", "WEIGHTS_NAME", "WEIGHTS_INDEX_NAME", "METADATA_NAME", "LM_PREFIX", "LM_HEAD_NAME", "EMBED_NAME"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
METADATA_NAME = "experiment_cfg/metadata.json"
LM_PREFIX = "backbone.eagle_model.language_model."
LM_HEAD_NAME = LM_PREFIX + "lm_head.weight"
EMBED_NAME = LM_PREFIX + "model.embed_tokens.weight"
_PROVIDERS = "save_pretrained / the SFT trainer (python -m rlinf_isaac.sft), or a downloaded GR00T N1.5 checkpoint"


class CheckpointFileError(ValueError):
    """A checkpoint file that cannot be what it claims: truncated, not safetensors, a shard the
    index names but the directory lacks, a tensor the index places in a shard that lacks it."""


class StoredTensor(NamedTuple):
    """One tensor as a safetensors header describes it (no data read)."""

    dtype: str  # safetensors dtype code: "F32", "BF16", "F16", "I64", ...
    shape: tuple[int, ...]
    file: str  # the file's name in the checkpoint directory


_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8}
_MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit


def read_safetensors_header(path: str | os.PathLike) -> dict[str, StoredTensor]:
    """name -> :class:`StoredTensor` of one ``.safetensors`` file, from its header alone.

    Checks what can be checked without the data: the header is JSON, every tensor's byte range
    fits its dtype and shape, and the file is as long as the header says (a truncated download
    is named with both lengths).
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 0 or n > min(size - 8, _MAX_HEADER_BYTES):
            raise CheckpointFileError(f"{path}: not a safetensors file, or truncated ({size} bytes; the first 8 "
                                      f"bytes give a header of {n} bytes)")
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            raise CheckpointFileError(f"{path}: the safetensors header is not JSON ({e})") from None
    header.pop("__metadata__", None)
    tensors, end = {}, 0
    for name, info in header.items():
        dtype, shape, (lo, hi) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
        numel = 1
        for d in shape:
            numel *= d
        if dtype in _DTYPE_BYTES and hi - lo != numel * _DTYPE_BYTES[dtype]:
            raise CheckpointFileError(f"{path}: tensor {name} ({dtype} {list(shape)}) spans {hi - lo} bytes, "
                                      f"its shape needs {numel * _DTYPE_BYTES[dtype]}")
        tensors[name] = StoredTensor(dtype, shape, path.name)
        end = max(end, hi)
    if size != 8 + n + end:
        what = "truncated" if size < 8 + n + end else "longer than its header says"
        raise CheckpointFileError(f"{path}: {what}: the file holds {size} bytes, its header describes "
                                  f"{8 + n + end}; download or copy it again")
    return tensors


def read_tensor_index(path: str | os.PathLike) -> dict[str, StoredTensor]:
    """name -> :class:`StoredTensor` of every tensor of a checkpoint directory (sharded with
    ``model.safetensors.index.json``, or ``model.safetensors``), from the headers alone."""
    path = Path(path)
    index, single = path / WEIGHTS_INDEX_NAME, path / WEIGHTS_NAME
    if not index.exists():
        if single.exists():
            return read_safetensors_header(single)
        raise _missing(single, f"model weights: neither {WEIGHTS_NAME} nor {WEIGHTS_INDEX_NAME} is present")
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointFileError(f"{index}: not a safetensors index (JSON with a weight_map): {e!r}") from None
    shards = {}
    for fname in sorted(set(weight_map.values())):
        if not (path / fname).exists():
            raise _missing(path / fname, f"a shard listed in {WEIGHTS_INDEX_NAME}")
        shards[fname] = read_safetensors_header(path / fname)
    out = {}
    for name, fname in weight_map.items():
        if name not in shards[fname]:
            raise CheckpointFileError(f"{index} places {name} in {fname}, which does not hold it")
        out[name] = shards[fname][name]
    for tensors in shards.values():  # tensors a shard holds but the index does not list
        out.update({k: v for k, v in tensors.items() if k not in out})
    return out


def skipped_lm_layers(names, select_layer: int) -> list[int]:
    """Indices of the LM layers in ``names`` at or past ``select_layer`` (unused by GR00T), sorted."""
    layer_re = re.compile(re.escape(LM_PREFIX) + r"model\.layers\.(\d+)\.")
    return sorted({int(m.group(1)) for k in names if (m := layer_re.match(k)) and int(m.group(1)) >= select_layer})


_IMAGE_CONTEXT = "<IMG_CONTEXT>"


def _token_name(value: Any) -> str | None:
    """A special token as tokenizer configs write it: a string or ``{"content": ...}``."""
    return value.get("content") if isinstance(value, dict) else value


def special_token_ids(path: str | os.PathLike) -> dict[str, tuple[int, str]]:
    """``{"image_token_index": (id, file), "pad_token_id": (id, file)}`` from the tokenizer files
    of a checkpoint directory (``added_tokens.json``, ``tokenizer_config.json``,
    ``tokenizer.json``, ``special_tokens_map.json``); keys whose token is not found are left out."""
    path = Path(path)
    ids: dict[str, tuple[int, str]] = {}  # token text -> (id, file it came from)

    def read(name: str) -> Any:
        f = path / name
        if not f.is_file():
            return None
        try:
            return json.loads(f.read_text())
        except ValueError as e:
            raise CheckpointFileError(f"{f}: not JSON ({e})") from None

    for tok, i in (read("added_tokens.json") or {}).items():
        ids.setdefault(tok, (int(i), "added_tokens.json"))
    tcfg = read("tokenizer_config.json") or {}
    for i, info in (tcfg.get("added_tokens_decoder") or {}).items():
        ids.setdefault(_token_name(info), (int(i), "tokenizer_config.json"))
    for info in (read("tokenizer.json") or {}).get("added_tokens", []):
        ids.setdefault(info.get("content"), (int(info["id"]), "tokenizer.json"))
    pad = _token_name(tcfg.get("pad_token")) or _token_name((read("special_tokens_map.json") or {}).get("pad_token"))
    out = {}
    if _IMAGE_CONTEXT in ids:
        out["image_token_index"] = ids[_IMAGE_CONTEXT]
    if pad in ids:
        out["pad_token_id"] = ids[pad]
    return out


def read_checkpoint_config(path: str | os.PathLike, **config_overrides: Any) -> tuple[GR00TConfig, list[str]]:
    """The :class:`GR00TConfig` of a checkpoint directory and notes on where values came from.

    ``config_overrides`` patch sections (dicts merge one level deep). The ``<IMG_CONTEXT>`` and
    pad token ids of the directory's tokenizer files, when present, fill in
    ``backbone_cfg.image_token_index`` / ``pad_token_id`` where ``config.json`` leaves them out;
    a ``config.json`` value that differs from the files is a ConfigError naming both.
    """
    from rlinf_isaac.config.structured import ConfigError

    path = Path(path)
    cfile = path / CONFIG_NAME
    if not cfile.is_file():
        raise _missing(cfile, "model config")
    try:
        data = json.loads(cfile.read_text())
    except ValueError as e:
        raise CheckpointFileError(f"{cfile}: not JSON ({e})") from None
    if not isinstance(data, dict) or not {"backbone_cfg", "action_head_cfg"} <= set(data):
        kind = data.get("model_type") if isinstance(data, dict) else type(data).__name__
        raise CheckpointFileError(f"{cfile} is not a GR00T N1.5 config (model_type {kind!r}; a GR00T N1.5 "
                                  f"config.json has backbone_cfg and action_head_cfg): point at a GR00T checkpoint")
    for section, values in config_overrides.items():
        data.setdefault(section, {}).update(values) if isinstance(values, dict) else data.update({section: values})
    backbone, notes = data.setdefault("backbone_cfg", {}), []
    for key, (value, fname) in special_token_ids(path).items():
        if key not in backbone:
            backbone[key] = value
            notes.append(f"backbone_cfg.{key} = {value}, from {fname}")
        elif backbone[key] != value:
            raise ConfigError(f"backbone_cfg.{key} = {backbone[key]} in {cfile}, but {path / fname} gives "
                              f"{value}: the model and its tokenizer must agree (fix one of them)")
    return GR00TConfig.from_dict(data), notes


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
        sd.pop(LM_HEAD_NAME, None)
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
    layer_re = re.compile(re.escape(LM_PREFIX) + r"model\.layers\.(\d+)\.")
    skipped = skipped_lm_layers(sd, keep)
    if skipped:
        warnings.warn(f"checkpoint holds LM layers {skipped[0]}..{skipped[-1]} beyond backbone_cfg.select_layer="
                      f"{keep}; they are unused by GR00T and skipped", stacklevel=3)
        sd = {k: v for k, v in sd.items() if not ((m := layer_re.match(k)) and int(m.group(1)) >= keep)}
    if config.backbone_cfg.llm.tie_word_embeddings:
        head = sd.pop(LM_HEAD_NAME, None)
        if head is not None and EMBED_NAME in sd and not torch.equal(head, sd[EMBED_NAME]):
            warnings.warn(f"{LM_HEAD_NAME} differs from {EMBED_NAME} although tie_word_embeddings=True; "
                          f"the embedding is used for both", stacklevel=3)
        if head is not None and EMBED_NAME not in sd:
            sd[EMBED_NAME] = head
    return sd


def _check_loadable_dtypes(stored: dict[str, StoredTensor]) -> None:
    bad = [f"{k}: {v.dtype} in {v.file}" for k, v in stored.items() if v.dtype not in ("F32", "BF16", "F16", "F64")]
    if bad:
        raise CheckpointFileError("checkpoint tensors of a dtype the model cannot take (it takes F32, BF16, F16, "
                                  "F64):\n  " + "\n  ".join(bad[:20]))


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
    config, _ = read_checkpoint_config(path, **config_overrides)
    _check_loadable_dtypes(read_tensor_index(path))  # truncated or missing files fail here, before any data
    sd = _adapt_keys(load_state_dict_files(path), config)
    with torch.device(device):
        model = GR00TN15(config)
    model_sd = model.state_dict()
    expected = set(model_sd) - ({LM_HEAD_NAME} if config.backbone_cfg.llm.tie_word_embeddings else set())
    diff = _key_diff(expected, set(sd))
    if diff and strict:
        raise KeyError(f"checkpoint {path} does not match the model built from its config:\n{diff}")
    _check_shapes(model_sd, sd)
    model.load_state_dict(sd, strict=False)
    if dtype is not None:
        model = model.to(dtype=dtype)
    return Pretrained(model, metadata)

