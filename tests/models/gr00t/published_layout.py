"""Test helper: checkpoint directories in GR00T N1.5's published layout.

Published layout: ``config.json`` as released (no nested vision / llm blocks), bfloat16 weights
in ``model-0000K-of-0000N.safetensors`` shards of at most 5 GB with
``model.safetensors.index.json``, the language model's full depth (28 layers, of which GR00T
uses the first 12) and the tied embedding stored once.

* :func:`write_sparse_published_checkpoint`: the full-size tensor set (names and shapes of the
  model ``gr00t_n1_5`` builds, plus LM layers 12..27) with headers and zero data, written as
  sparse files: ~6.4 GB each on paper, a few KB on disk. For the header-only checker.
* :func:`write_small_published_checkpoint`: the same layout at small widths with random data
  (a config with nested blocks, 28 LM layers, select_layer 12). For strict loading.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from rlinf_isaac.models.gr00t.checkpoint import EMBED_NAME, LM_HEAD_NAME, LM_PREFIX, WEIGHTS_INDEX_NAME
from rlinf_isaac.models.gr00t.config import load_config
from rlinf_isaac.models.gr00t.modeling import GR00TN15

LM_DEPTH = 28  # Qwen3-1.7B's layers; the checkpoint keeps all of them
SHARD_BYTES = 5_000_000_000
_LAYER = re.compile(re.escape(LM_PREFIX) + r"model\.layers\.(\d+)\.")

# config.json of the public GR00T N1.5 checkpoint (architecture keys as published)
PUBLIC_N15_CONFIG = {
    "action_dim": 32,
    "action_head_cfg": {
        "action_dim": 32, "action_horizon": 16, "add_pos_embed": True, "backbone_embedding_dim": 2048,
        "diffusion_model_cfg": {"attention_head_dim": 48, "cross_attention_dim": 2048, "dropout": 0.2,
                                "final_dropout": True, "interleave_self_attention": True, "norm_type": "ada_norm",
                                "num_attention_heads": 32, "num_layers": 16, "output_dim": 1024,
                                "positional_embeddings": None},
        "hidden_size": 1024, "input_embedding_dim": 1536, "max_action_dim": 32, "max_state_dim": 64,
        "model_dtype": "float32", "noise_beta_alpha": 1.5, "noise_beta_beta": 1.0, "noise_s": 0.999,
        "num_inference_timesteps": 4, "num_target_vision_tokens": 32, "num_timestep_buckets": 1000,
        "tune_diffusion_model": True, "tune_projector": True, "use_vlln": True,
        "vl_self_attention_cfg": {"attention_head_dim": 64, "dropout": 0.2, "final_dropout": True,
                                  "num_attention_heads": 32, "num_layers": 4, "positional_embeddings": None},
    },
    "action_horizon": 16,
    "architectures": ["GR00T_N1_5"],
    "attn_implementation": None,
    "backbone_cfg": {"eagle_path": "NVEagle/eagle_er-qwen3_1_7B-Siglip2_400M_stage1_5_128gpu_er_v7_1mlp_nops",
                     "load_bf16": False, "project_to_dim": None, "reproject_vision": False, "select_layer": 12,
                     "tune_llm": False, "tune_visual": True, "use_flash_attention": True},
    "hidden_size": 2048,
    "model_dtype": "float32",
    "model_type": "gr00t_n1_5",
    "torch_dtype": "bfloat16",
    "transformers_version": "4.51.3",
}


def full_lm_names(model_names: list[str], select_layer: int, depth: int = LM_DEPTH) -> list[str]:
    """``model_names`` (a model holding LM layers 0..select_layer-1) plus layers select_layer..depth-1,
    each named as layer 0's tensors, inserted after the last built layer (the published order)."""
    layer0 = [k for k in model_names if (m := _LAYER.match(k)) and m.group(1) == "0"]
    extra = [k.replace(f"{LM_PREFIX}model.layers.0.", f"{LM_PREFIX}model.layers.{i}.")
             for i in range(select_layer, depth) for k in layer0]
    last = max(j for j, k in enumerate(model_names) if _LAYER.match(k))
    return model_names[: last + 1] + extra + model_names[last + 1:]


def published_shapes(config_name: str = "gr00t_n1_5") -> dict[str, tuple[int, ...]]:
    """name -> shape of every stored tensor of the published layout, in storage order."""
    with torch.device("meta"):
        model = GR00TN15(load_config(config_name))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if k != LM_HEAD_NAME}
    names = full_lm_names(list(shapes), model.config.backbone_cfg.select_layer)
    layer0 = {k: v for k, v in shapes.items() if (m := _LAYER.match(k)) and m.group(1) == "0"}
    out = {}
    for k in names:
        m = _LAYER.match(k)
        out[k] = shapes[k] if k in shapes else layer0[k.replace(f"layers.{m.group(1)}.", "layers.0.", 1)]
    return out


def _shards(sizes: dict[str, int], max_bytes: int) -> list[list[str]]:
    shards: list[list[str]] = [[]]
    used = 0
    for name, nbytes in sizes.items():
        if shards[-1] and used + nbytes > max_bytes:
            shards.append([])
            used = 0
        shards[-1].append(name)
        used += nbytes
    return shards


def _write_sparse_safetensors(path: Path, tensors: dict[str, tuple[str, tuple[int, ...]]]) -> None:
    """A safetensors file with ``tensors`` (name -> (dtype, shape)) and all-zero data left as a hole."""
    itemsize = {"BF16": 2, "F32": 4, "F16": 2, "I8": 1}
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        nbytes = itemsize[dtype]
        for d in shape:
            nbytes *= d
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # 8-byte aligned data, as safetensors writes it
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        f.truncate(8 + len(raw) + offset)  # the data: zeros, not written (a hole)


def sparse_files_supported(directory: Path) -> bool:
    """True when a 64 MiB file with no written data takes (almost) no disk space here."""
    probe = directory / ".sparse_probe"
    with open(probe, "wb") as f:
        f.truncate(64 << 20)
    used = os.stat(probe).st_blocks * 512
    probe.unlink()
    return used < (1 << 20)


def write_sparse_published_checkpoint(root: Path, shapes: dict[str, tuple[int, ...]] | None = None,
                                      dtypes: dict[str, str] | None = None, store_head: bool = False,
                                      config: dict | None = None) -> Path:
    """The full-size published layout under ``root`` (headers, zero data as holes); returns ``root``.

    shapes: name -> shape (default :func:`published_shapes`); dtypes: per-name overrides of BF16;
    store_head: also store the tied ``lm_head.weight`` (as some exports do).
    """
    root.mkdir(parents=True, exist_ok=True)
    shapes = dict(shapes or published_shapes())
    if store_head:
        shapes[LM_HEAD_NAME] = shapes[EMBED_NAME]
    dtypes = dtypes or {}
    sizes = {k: 2 * _numel(v) for k, v in shapes.items()}
    shards = _shards(sizes, SHARD_BYTES)
    weight_map = {}
    for i, names in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        _write_sparse_safetensors(root / fname, {k: (dtypes.get(k, "BF16"), shapes[k]) for k in names})
        weight_map.update({k: fname for k in names})
    index = {"metadata": {"total_size": sum(sizes.values())}, "weight_map": weight_map}
    (root / WEIGHTS_INDEX_NAME).write_text(json.dumps(index, indent=2))
    (root / "config.json").write_text(json.dumps(config or PUBLIC_N15_CONFIG, indent=2))
    return root


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def small_published_config() -> dict:
    """gr00t_tiny's widths in the published structure: a 28-layer LM of which 12 are used."""
    cfg = load_config("gr00t_tiny").to_dict()
    cfg["backbone_cfg"]["llm"]["num_hidden_layers"] = LM_DEPTH
    cfg["backbone_cfg"]["select_layer"] = 12
    cfg["name"] = "gr00t_small_published"
    return cfg


def write_small_published_checkpoint(root: Path, store_head: bool = False, seed: int = 0,
                                     max_shard_bytes: int = 400_000) -> tuple[Path, dict[str, torch.Tensor]]:
    """The published layout at small widths with random bfloat16 data; returns (root, stored tensors).

    The embedding is stored as ``embed_tokens`` (store_head False) or only as ``lm_head``
    (store_head True), the two ways exports store a tied embedding.
    """
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    config = small_published_config()
    (root / "config.json").write_text(json.dumps(config, indent=2))
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in GR00TN15(load_config(root)).state_dict().items()
                  if k != LM_HEAD_NAME}
    layer0 = {k: v for k, v in shapes.items() if (m := _LAYER.match(k)) and m.group(1) == "0"}
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for k in full_lm_names(list(shapes), config["backbone_cfg"]["select_layer"]):
        m = _LAYER.match(k)
        shape = shapes[k] if k in shapes else layer0[k.replace(f"layers.{m.group(1)}.", "layers.0.", 1)]
        tensors[k] = (torch.randn(shape, generator=g) * 0.02).to(torch.bfloat16)
    if store_head:
        tensors[LM_HEAD_NAME] = tensors.pop(EMBED_NAME)
    shards = _shards({k: 2 * v.numel() for k, v in tensors.items()}, max_shard_bytes)
    weight_map = {}
    for i, names in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file({k: tensors[k] for k in names}, str(root / fname), metadata={"format": "pt"})
        weight_map.update({k: fname for k in names})
    index = {"metadata": {"total_size": sum(2 * v.numel() for v in tensors.values())}, "weight_map": weight_map}
    (root / WEIGHTS_INDEX_NAME).write_text(json.dumps(index, indent=2))
    return root, tensors
