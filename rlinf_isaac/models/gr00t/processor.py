"""GR00T input processor: images, prompt tokens, normalised state; action (un)normalisation.

Everything is vectorised torch, so rollout and training run the same code and see tensors
of identical shapes (the prompt is padded to a fixed ``max_length``).

Prompt (one block per camera view, Eagle 2.5-like chat layout)::

    <|im_start|>user\\n<image 1><img>{<IMG_CONTEXT> x N}</img><image 2><img>...</img>
    {instruction}<|im_end|>\\n<|im_start|>assistant\\n

N = ``num_image_tokens`` (256 per 224 px view for GR00T N1.5); the backbone overwrites the
embeddings at ``image_token_index`` with the projected image features. ``template="plain"``
drops the chat markers and ``<image i>`` labels.

Normalisation follows GR00T's ``Normalizer`` (gr00t/data/transform/state_action.py), per
key of ``experiment_cfg/metadata.json`` statistics:

* ``min_max``: y = 2 (x - min) / (max - min) - 1 (not clipped); y = 0 where max == min.
* ``q99``: y = clip(2 (x - q01) / (q99 - q01) - 1, -1, 1); y = clip(x, -1, 1) where q99 == q01.
* ``mean_std``: y = (x - mean) / std; y = x where std == 0 (also passed through on the
  inverse, so the round trip is exact; GR00T's inverse returns ``mean`` there).
* ``binary``: y = 1[x > 0.5]. Keys without a mode are passed through.

Images: uint8 [B, H, W, 3] -> centre crop ``crop_scale`` -> bilinear (antialiased) resize
to S x S -> SigLIP normalisation (x / 255 - 0.5) / 0.5.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from rlinf_isaac.models.gr00t.tokenizer import (
    IMAGE_CONTEXT_TOKEN,
    IMAGE_END_TOKEN,
    IMAGE_START_TOKEN,
)

__all__ = [
    "EMBODIMENT_TAG_MAPPING",
    "NORMALIZATION_MODES",
    "Normalizer",
    "GR00TProcessorConfig",
    "GR00TProcessor",
    "compute_statistics",
    "identity_metadata",
    "load_metadata",
]

# Projector slot of each embodiment tag in GR00T N1.5 (gr00t/data/embodiment_tags.py).
EMBODIMENT_TAG_MAPPING = {"new_embodiment": 31, "gr1": 24, "oxe_droid": 17, "agibot_genie1": 26}
NORMALIZATION_MODES = ("min_max", "q99", "mean_std", "binary")
_MODE_ID = {None: 0, "min_max": 1, "q99": 2, "mean_std": 3, "binary": 4}
_STAT_KEYS = ("min", "max", "mean", "std", "q01", "q99")


class Normalizer:
    """Per-dimension GR00T normalisation of a concatenated vector float [..., D].

    stats: ordered ``{key: {min, max, mean, std, q01, q99}}`` whose lists concatenate to D.
    modes: ``{key: mode}`` with mode in ``NORMALIZATION_MODES``; missing keys pass through.
    """

    def __init__(self, stats: Mapping[str, Mapping[str, Sequence[float]]],
                 modes: Mapping[str, str | None], where: str = "statistics") -> None:
        unknown = sorted(set(modes) - set(stats))
        if unknown:
            raise KeyError(f"{where}: normalisation modes name keys {unknown} that have no "
                           f"statistics; keys with statistics: {list(stats)}")
        cols: dict[str, list[float]] = {k: [] for k in _STAT_KEYS}
        mode_ids: list[int] = []
        self.slices: dict[str, slice] = {}
        for key, st in stats.items():
            mode = modes.get(key)
            if mode not in _MODE_ID:
                raise ValueError(f"{where}.{key}: normalisation mode {mode!r} is not one of "
                                 f"{NORMALIZATION_MODES}")
            missing = [k for k in _STAT_KEYS if k not in st]
            if missing:
                raise KeyError(f"{where}.{key}: statistics lack {missing}")
            d = len(st["min"])
            self.slices[key] = slice(len(mode_ids), len(mode_ids) + d)
            for k in _STAT_KEYS:
                if len(st[k]) != d:
                    raise ValueError(f"{where}.{key}.{k} has {len(st[k])} values, min has {d}")
                cols[k] += [float(v) for v in st[k]]
            mode_ids += [_MODE_ID[mode]] * d
        self.dim = len(mode_ids)
        self.mode = torch.tensor(mode_ids, dtype=torch.int64)  # [D]
        s = {k: torch.tensor(v, dtype=torch.float64) for k, v in cols.items()}
        q99 = self.mode == _MODE_ID["q99"]
        self._param_cache: dict = {}  # (device, dtype) -> the statistics there
        self.lo = torch.where(q99, s["q01"], s["min"]).float()  # [D]
        self.hi = torch.where(q99, s["q99"], s["max"]).float()  # [D]
        self.mean, self.std = s["mean"].float(), s["std"].float()  # [D]

    def _params(self, x: torch.Tensor):
        """lo, hi, mean, std in x's dtype and the modes, on x's device (copied there once)."""
        key = (x.device, x.dtype)
        cache = self._param_cache
        if key not in cache:
            cache[key] = [t.to(x.device, x.dtype) for t in (self.lo, self.hi, self.mean, self.std)] + [
                self.mode.to(x.device)]
        return cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise x float [..., D] -> float [..., D]."""
        if x.shape[-1] != self.dim:
            raise ValueError(f"Normalizer expects [..., {self.dim}], got {tuple(x.shape)}")
        lo, hi, mean, std, mode = self._params(x)
        rng = hi - lo
        span = torch.where(rng == 0, torch.ones_like(rng), rng)
        affine = 2 * (x - lo) / span - 1  # y = 2 (x - lo) / (hi - lo) - 1
        min_max = torch.where(rng == 0, torch.zeros_like(x), affine)
        q99 = torch.where(rng == 0, x, affine).clamp(-1.0, 1.0)
        safe_std = torch.where(std == 0, torch.ones_like(std), std)
        mean_std = torch.where(std == 0, x, (x - mean) / safe_std)  # y = (x - mean) / std
        binary = (x > 0.5).to(x.dtype)
        out = torch.where(mode == 1, min_max, x)
        out = torch.where(mode == 2, q99, out)
        out = torch.where(mode == 3, mean_std, out)
        return torch.where(mode == 4, binary, out)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`forward` on y float [..., D] (clipped q99 values map to q01/q99)."""
        if y.shape[-1] != self.dim:
            raise ValueError(f"Normalizer expects [..., {self.dim}], got {tuple(y.shape)}")
        lo, hi, mean, std, mode = self._params(y)
        affine = (y + 1) / 2 * (hi - lo) + lo  # x = (y + 1) / 2 * (hi - lo) + lo
        mean_std = torch.where(std == 0, y, y * std + mean)  # x = y * std + mean
        out = torch.where((mode == 1) | (mode == 2), affine, y)
        out = torch.where(mode == 3, mean_std, out)
        return torch.where(mode == 4, (y > 0.5).to(y.dtype), out)


@dataclass
class GR00TProcessorConfig:
    """Static settings of :class:`GR00TProcessor` (``processor.<field>`` in configs)."""

    image_size: int = 224
    num_image_tokens: int = 256
    max_length: int = 600
    num_views: int = 2
    state_dim: int = 8
    action_dim: int = 7
    state_dim_pad: int = 64
    action_dim_pad: int = 32
    action_horizon: int = 16
    embodiment_id: int = 31
    gripper_dims: tuple[int, ...] = (6,)
    crop_scale: float = 1.0
    template: str = "eagle"
    padding_side: str = "right"
    state_modes: dict[str, str] = field(default_factory=dict)
    action_modes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("image_size", "num_image_tokens", "max_length", "num_views", "state_dim",
                     "action_dim", "action_horizon"):
            if getattr(self, name) < 1:
                raise ValueError(f"processor.{name} must be >= 1, got {getattr(self, name)}")
        if self.state_dim > self.state_dim_pad:
            raise ValueError(f"processor.state_dim_pad ({self.state_dim_pad}) must be >= "
                             f"state_dim ({self.state_dim})")
        if self.action_dim > self.action_dim_pad:
            raise ValueError(f"processor.action_dim_pad ({self.action_dim_pad}) must be >= "
                             f"action_dim ({self.action_dim})")
        if not 0 <= self.embodiment_id < 32:
            raise ValueError(f"processor.embodiment_id must be in [0, 31], got {self.embodiment_id}")
        if not 0 < self.crop_scale <= 1:
            raise ValueError(f"processor.crop_scale must be in (0, 1], got {self.crop_scale}")
        if self.template not in ("eagle", "plain"):
            raise ValueError(f"processor.template must be 'eagle' or 'plain', got {self.template!r}")
        if self.padding_side not in ("left", "right"):
            raise ValueError(f"processor.padding_side must be 'left' or 'right', "
                             f"got {self.padding_side!r}")
        bad = [d for d in self.gripper_dims if not 0 <= d < self.action_dim]
        if bad:
            raise ValueError(f"processor.gripper_dims {bad} outside [0, {self.action_dim})")
        self.gripper_dims = tuple(self.gripper_dims)


def _to_tensor(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


class GR00TProcessor:
    """Turn env observations into GR00T model inputs and map actions to/from model space.

    tokenizer: a ``PreTrainedTokenizerBase`` holding ``<img>``, ``</img>``, ``<IMG_CONTEXT>``.
    state_stats / action_stats: ordered ``{key: {min, max, mean, std, q01, q99}}`` (the
        ``statistics.state`` / ``statistics.action`` blocks of GR00T's metadata.json) whose
        lengths sum to ``state_dim`` / ``action_dim``.
    image_token_index: expected id of ``<IMG_CONTEXT>`` (checked against the tokenizer;
        None takes the tokenizer's).
    Other settings: :class:`GR00TProcessorConfig` fields as keyword arguments.
    """

    def __init__(self, tokenizer: Any, state_stats: Mapping[str, Any],
                 action_stats: Mapping[str, Any], image_token_index: int | None = None,
                 **config: Any) -> None:
        self.cfg = cfg = GR00TProcessorConfig(**config)
        self.tokenizer = tokenizer
        ids = tokenizer.convert_tokens_to_ids([IMAGE_START_TOKEN, IMAGE_END_TOKEN,
                                               IMAGE_CONTEXT_TOKEN])
        unk = getattr(tokenizer, "unk_token_id", None)
        if any(i is None or i == unk for i in ids):
            raise ValueError(f"tokenizer lacks the image tokens {IMAGE_START_TOKEN!r}, "
                             f"{IMAGE_END_TOKEN!r}, {IMAGE_CONTEXT_TOKEN!r} (ids {ids})")
        if image_token_index is not None and image_token_index != ids[2]:
            raise ValueError(f"image_token_index={image_token_index} but the tokenizer maps "
                             f"{IMAGE_CONTEXT_TOKEN!r} to {ids[2]}; they must agree")
        self.image_token_index = ids[2]
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        state_modes = cfg.state_modes or {k: "min_max" for k in state_stats}
        action_modes = cfg.action_modes or {k: "min_max" for k in action_stats}
        self.state_norm = Normalizer(state_stats, state_modes, "statistics.state")
        self.action_norm = Normalizer(action_stats, action_modes, "statistics.action")
        for name, norm, want in (("state", self.state_norm, cfg.state_dim),
                                 ("action", self.action_norm, cfg.action_dim)):
            if norm.dim != want:
                raise ValueError(f"statistics.{name} covers {norm.dim} dims "
                                 f"({list(norm.slices)}), processor.{name}_dim is {want}")
        self._prompt_cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    # ------------------------------------------------------------------ text
    def prompt(self, instruction: str) -> str:
        """The prompt string of one instruction (image blocks first, then the text)."""
        block = IMAGE_START_TOKEN + IMAGE_CONTEXT_TOKEN * self.cfg.num_image_tokens + IMAGE_END_TOKEN
        if self.cfg.template == "plain":
            return block * self.cfg.num_views + instruction
        views = "".join(f"<image {v + 1}>{block}" for v in range(self.cfg.num_views))
        return f"<|im_start|>user\n{views}{instruction}<|im_end|>\n<|im_start|>assistant\n"

    def _padded_row(self, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt token ids -> (input_ids int64 [L], attention_mask int64 [L]), padded."""
        L = self.cfg.max_length
        input_ids = torch.full((L,), self.pad_token_id, dtype=torch.int64)
        mask = torch.zeros(L, dtype=torch.int64)
        span = slice(0, len(ids)) if self.cfg.padding_side == "right" else slice(L - len(ids), L)
        input_ids[span], mask[span] = torch.tensor(ids, dtype=torch.int64), 1
        return input_ids, mask

    def _rows(self, instructions: Sequence[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The padded rows of distinct instructions, in order: cached ones reused, the others
        tokenized (the 1,024 most recently used are kept, evicted only after this batch's
        rows are taken)."""
        fresh = {text: self.tokenizer(self.prompt(text), add_special_tokens=False)["input_ids"]
                 for text in instructions if text not in self._prompt_cache}
        need = max((len(ids) for ids in fresh.values()), default=0)
        if need > self.cfg.max_length:
            text = next(t for t, ids in fresh.items() if len(ids) == need)
            raise ValueError(f"prompt for instruction {text[:60]!r} needs {need} tokens but "
                             f"processor.max_length is {self.cfg.max_length}; set max_length >= {need}")
        for text, ids in fresh.items():
            self._prompt_cache[text] = self._padded_row(ids)
        for text in instructions:
            self._prompt_cache.move_to_end(text)
        rows = [self._prompt_cache[text] for text in instructions]
        while len(self._prompt_cache) > 1024:
            self._prompt_cache.popitem(last=False)
        return rows

    def tokenize(self, instructions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Instructions (list of B str) -> input_ids int64 [B, L], attention_mask int64 [B, L]
        (1 on prompt tokens, 0 on padding; L = max_length). Each distinct instruction is
        tokenized once and cached; the batch gathers their rows."""
        distinct: dict[str, int] = {}
        index = torch.tensor([distinct.setdefault(text, len(distinct)) for text in instructions],
                             dtype=torch.int64)
        if not distinct:
            empty = torch.zeros((0, self.cfg.max_length), dtype=torch.int64)
            return empty, empty.clone()
        rows = self._rows(list(distinct))
        return torch.stack([ids for ids, _ in rows])[index], torch.stack([m for _, m in rows])[index]

    # ------------------------------------------------------------------ images
    def images(self, images: Any) -> torch.Tensor:
        """uint8 [B, H, W, 3] -> float32 [B, 3, S, S], SigLIP-normalised to [-1, 1]."""
        x = _to_tensor(images)
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != torch.uint8:
            raise ValueError(f"images must be uint8 [B, H, W, 3], got {x.dtype} {tuple(x.shape)}")
        x = x.permute(0, 3, 1, 2).float() / 255.0  # [B, H, W, 3] -> [B, 3, H, W]
        if self.cfg.crop_scale < 1:
            h, w = x.shape[-2:]
            ch, cw = round(h * self.cfg.crop_scale), round(w * self.cfg.crop_scale)
            top, left = (h - ch) // 2, (w - cw) // 2
            x = x[..., top:top + ch, left:left + cw]
        s = self.cfg.image_size
        if tuple(x.shape[-2:]) != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return (x - 0.5) / 0.5  # SigLIP: mean 0.5, std 0.5

    # ------------------------------------------------------------------ state / actions
    def normalize_state(self, states: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """states float [B, D] -> (state float32 [B, 1, state_dim_pad], state_mask bool same)."""
        x = _to_tensor(states).float()
        if x.ndim != 2 or x.shape[1] != self.cfg.state_dim:
            raise ValueError(f"states must be [B, {self.cfg.state_dim}], got {tuple(x.shape)}")
        b, d, pad = x.shape[0], self.cfg.state_dim, self.cfg.state_dim_pad
        out = torch.zeros((b, 1, pad), dtype=torch.float32, device=x.device)
        out[:, 0, :d] = self.state_norm.forward(x)
        mask = torch.zeros((b, 1, pad), dtype=torch.bool, device=x.device)
        mask[:, 0, :d] = True
        return out, mask

    def normalize_actions(self, actions: Any, step_mask: Any = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """actions float [B, C, A] -> (float32 [B, C, action_dim_pad], mask bool same).

        step_mask: optional bool [B, C] (e.g. the dataset's ``action_mask``) ANDed into mask.
        """
        x = _to_tensor(actions).float()
        c, a, pad = self.cfg.action_horizon, self.cfg.action_dim, self.cfg.action_dim_pad
        if x.ndim != 3 or x.shape[1:] != (c, a):
            raise ValueError(f"actions must be [B, {c}, {a}], got {tuple(x.shape)}")
        out = torch.zeros((x.shape[0], c, pad), dtype=torch.float32, device=x.device)
        out[..., :a] = self.action_norm.forward(x)
        mask = torch.zeros_like(out, dtype=torch.bool)
        mask[..., :a] = True
        if step_mask is not None:
            mask &= _to_tensor(step_mask).to(device=x.device, dtype=torch.bool)[..., None]
        return out, mask

    def unnormalize_actions(self, actions: torch.Tensor, binarize_gripper: bool = True
                            ) -> torch.Tensor:
        """Model actions float [B, C, action_dim_pad] -> env actions float32 [B, C, A].

        The gripper dims become -1 (close) where the value is < 0, else +1 (open).
        """
        c, a, pad = self.cfg.action_horizon, self.cfg.action_dim, self.cfg.action_dim_pad
        if actions.ndim != 3 or tuple(actions.shape[1:]) != (c, pad):
            raise ValueError(f"model actions must be [B, {c}, {pad}], got {tuple(actions.shape)}")
        x = self.action_norm.inverse(actions[..., :a].float())
        if binarize_gripper:
            g = list(self.cfg.gripper_dims)
            x[..., g] = torch.where(x[..., g] < 0, -1.0, 1.0)
        return x

    # ------------------------------------------------------------------ all inputs
    def __call__(self, obs: Mapping[str, Any], device: str | torch.device | None = None
                 ) -> dict[str, torch.Tensor]:
        """Env observation -> model inputs.

        obs: ``main_images`` uint8 [B, H, W, 3], ``wrist_images`` uint8 [B, H, W, 3],
            ``states`` float [B, 8], ``task_descriptions`` list[str] of length B.
        Returns pixel_values float32 [B, V=2, 3, S, S], input_ids int64 [B, L],
        attention_mask int64 [B, L] (1 = token), state float32 [B, 1, 64], state_mask bool [B, 1, 64],
        embodiment_id int64 [B].
        """
        missing = [k for k in ("main_images", "wrist_images", "states", "task_descriptions")
                   if k not in obs]
        if missing:
            raise KeyError(f"observation lacks {missing}; got keys {sorted(obs)}")
        views = [self.images(obs["main_images"]), self.images(obs["wrist_images"])]
        pixel_values = torch.stack(views[: self.cfg.num_views], dim=1)  # [B, V, 3, S, S]
        b = pixel_values.shape[0]
        texts = list(obs["task_descriptions"])
        if len(texts) != b:
            raise ValueError(f"task_descriptions has {len(texts)} entries, images have B = {b}")
        input_ids, attention_mask = self.tokenize(texts)
        state, state_mask = self.normalize_state(obs["states"])
        out = {"pixel_values": pixel_values, "input_ids": input_ids,
               "attention_mask": attention_mask, "state": state.to(pixel_values.device),
               "state_mask": state_mask.to(pixel_values.device),
               "embodiment_id": torch.full((b,), self.cfg.embodiment_id, dtype=torch.int64)}
        return out if device is None else {k: v.to(device) for k, v in out.items()}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_metadata(cls, metadata: str | os.PathLike | Mapping[str, Any], embodiment_tag: str,
                      tokenizer: Any, **config: Any) -> "GR00TProcessor":
        """Build from GR00T's metadata.json (a path, a checkpoint folder or the dict).

        ``metadata[embodiment_tag]["statistics"]["state"|"action"]`` gives the statistics;
        ``embodiment_id`` defaults to ``EMBODIMENT_TAG_MAPPING[embodiment_tag]``.
        """
        meta = load_metadata(metadata) if not isinstance(metadata, Mapping) else metadata
        if embodiment_tag not in meta:
            raise KeyError(f"metadata has no embodiment tag {embodiment_tag!r}; available: "
                           f"{sorted(meta)}")
        stats = meta[embodiment_tag].get("statistics", {})
        for part in ("state", "action"):
            if part not in stats:
                raise KeyError(f"metadata.{embodiment_tag}.statistics.{part} is missing")
        if "embodiment_id" not in config and embodiment_tag in EMBODIMENT_TAG_MAPPING:
            config["embodiment_id"] = EMBODIMENT_TAG_MAPPING[embodiment_tag]
        return cls(tokenizer, stats["state"], stats["action"], **config)


    @classmethod
    def for_model(cls, model_config: Any, metadata: str | os.PathLike | Mapping[str, Any] | None = None,
                  tokenizer: Any = None, embodiment_tag: str = "new_embodiment",
                  **config: Any) -> "GR00TProcessor":
        """Processor matching a ``GR00TConfig``: image size, image tokens per view,
        image_token_index, state/action padding and horizon come from the model config.

        metadata: GR00T metadata (dict/path); None -> identity statistics
            (:func:`identity_metadata`: min -1, max 1, so ``min_max`` leaves values unchanged).
        tokenizer: None builds the tiny tokenizer, valid only for a model whose vocabulary is
            the tiny one (vocab_size 1024, image_token_index 6).
        max_length defaults to num_views * (tokens_per_view + 2) + 96 (room for the chat
        markers and an instruction of ~80 tokens).
        """
        from rlinf_isaac.models.gr00t.tokenizer import TINY_VOCAB_SIZE, build_tiny_tokenizer

        bb, ah = model_config.backbone_cfg, model_config.action_head_cfg
        if tokenizer is None:
            if bb.llm.vocab_size != TINY_VOCAB_SIZE or bb.image_token_index != 6:
                raise ValueError(
                    f"GR00TProcessor.for_model: tokenizer=None builds the tiny tokenizer, but "
                    f"backbone_cfg.llm.vocab_size={bb.llm.vocab_size} / image_token_index="
                    f"{bb.image_token_index} is not the tiny model; pass the checkpoint's "
                    f"tokenizer (rlinf_isaac.models.gr00t.tokenizer.load_tokenizer(path))")
            tokenizer = build_tiny_tokenizer()
        n = bb.image_tokens_per_view
        views = config.get("num_views", 2)
        config = {"image_size": bb.vision.image_size, "num_image_tokens": n,
                  "state_dim_pad": ah.max_state_dim, "action_dim_pad": ah.max_action_dim,
                  "action_horizon": ah.action_horizon, "max_length": views * (n + 2) + 96,
                  **config}
        if metadata is None:
            metadata = identity_metadata(embodiment_tag)
        return cls.from_metadata(metadata, embodiment_tag, tokenizer,
                                 image_token_index=bb.image_token_index, **config)

    @classmethod
    def from_pretrained(cls, local_dir: str | os.PathLike, model_config: Any,
                        metadata: Mapping[str, Any] | None = None,
                        embodiment_tag: str = "new_embodiment", tokenizer: Any = None,
                        **config: Any) -> "GR00TProcessor":
        """Processor of a LOCAL checkpoint folder: its tokenizer files (unless ``tokenizer`` is
        given) and (unless given) ``experiment_cfg/metadata.json``; the rest as :meth:`for_model`."""
        from rlinf_isaac.models.gr00t.tokenizer import load_tokenizer

        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(local_dir)
        meta = metadata if metadata is not None else load_metadata(local_dir)
        return cls.for_model(model_config, meta, tokenizer=tokenizer,
                             embodiment_tag=embodiment_tag, **config)


def identity_metadata(embodiment_tag: str = "new_embodiment") -> dict[str, Any]:
    """Metadata whose statistics make ``min_max``/``q99`` the identity on [-1, 1] (and
    ``mean_std`` the identity), keyed like meta/modality.json; for untrained models."""
    from rlinf_isaac.demos.dataset import MODALITY

    def ident(d: int) -> dict[str, list[float]]:
        return {"min": [-1.0] * d, "max": [1.0] * d, "mean": [0.0] * d, "std": [1.0] * d,
                "q01": [-1.0] * d, "q99": [1.0] * d}

    stats = {part: {k: ident(s["end"] - s["start"]) for k, s in MODALITY[part].items()}
             for part in ("state", "action")}
    return {embodiment_tag: {"statistics": stats, "embodiment_tag": embodiment_tag,
                             "modalities": {"state": _modalities(MODALITY["state"]),
                                            "action": _modalities(MODALITY["action"])}}}


def load_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Read GR00T's metadata.json from a file, or from ``<folder>/experiment_cfg/metadata.json``
    or ``<folder>/metadata.json``."""
    p = Path(path)
    candidates = [p] if p.is_file() else [p / "experiment_cfg" / "metadata.json", p / "metadata.json"]
    for c in candidates:
        if c.is_file():
            return json.loads(c.read_text(encoding="utf-8"))
    raise FileNotFoundError(
        f"GR00T metadata not found: tried {[str(c) for c in candidates]}; it ships with a GR00T "
        f"checkpoint (experiment_cfg/metadata.json) or is produced by "
        f"rlinf_isaac.models.gr00t.processor.compute_statistics(dataset)")


def _split_stats(x: torch.Tensor, slices: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    from rlinf_isaac.demos.dataset import compute_feature_stats

    ordered = sorted(slices.items(), key=lambda kv: kv[1]["start"])
    return {k: compute_feature_stats(x[:, s["start"]:s["end"]].double().numpy())
            for k, s in ordered}


def _modalities(slices: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {k: {"absolute": bool(s.get("absolute", True)),
                "rotation_type": s.get("rotation_type"),
                "shape": [int(s["end"]) - int(s["start"])], "continuous": True}
            for k, s in sorted(slices.items(), key=lambda kv: kv[1]["start"])}


def compute_statistics(dataset: Any, embodiment_tag: str = "new_embodiment") -> dict[str, Any]:
    """GR00T metadata.json content for a :class:`rlinf_isaac.sft.LeRobotDataset`.

    Returns ``{embodiment_tag: {"statistics": {"state": {key: stats}, "action": {...}},
    "modalities": {"video": ..., "state": ..., "action": ...}, "embodiment_tag": tag}}``,
    keys split by the dataset's meta/modality.json slices, in slice order.
    """
    modality = dataset.modality()
    states, actions = dataset.all_states(), dataset.all_actions()  # [N, 8], [N, 7]
    video = {}
    for name, spec in modality.get("video", {}).items():
        h, w, c = dataset.video_shape(spec["original_key"])
        video[name] = {"resolution": [w, h], "channels": c, "fps": dataset.fps}
    return {embodiment_tag: {
        "statistics": {"state": _split_stats(states, modality["state"]),
                       "action": _split_stats(actions, modality["action"])},
        "modalities": {"video": video, "state": _modalities(modality["state"]),
                       "action": _modalities(modality["action"])},
        "embodiment_tag": embodiment_tag,
    }}
