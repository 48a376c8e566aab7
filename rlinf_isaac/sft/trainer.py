"""Flow-matching behaviour cloning (SFT) of the GR00T policy on a LeRobot v2 dataset.

One step: a batch of frames -> ``GR00TProcessor`` (images, prompt, normalised state) and
``normalize_actions`` (normalised, padded action chunks) -> backbone features -> action-head
context -> ``flow_matching_loss`` (GR00T's masked MSE between the predicted velocity and
``x_1 - x_0`` at Beta-sampled times) -> AdamW step (linear warm-up, cosine decay, grad clip).

Training ends at ``steps`` or, with ``max_seconds``, when that much training time has passed,
whichever comes first; the cosine decay follows whichever of the two is further along, so the
last checkpoint is fully annealed either way (a checkpoint cut off mid-decay imitates far
worse: 0.015 against 0.22 on two cubes at half of an 8,000-step run).

Outputs under ``out``: ``checkpoint-<step>/`` every ``save_every`` steps and ``final/`` at the
end, each in the layout of ``checkpoint.save_pretrained`` (config.json, safetensors,
experiment_cfg/metadata.json with the dataset statistics the processor normalises with) plus
the tokenizer files and ``trainer_state.pt`` (optimizer, step, training time, RNG) for resuming;
written into a temporary folder and renamed into place, so a crash never leaves a half
checkpoint. ``tensorboard/`` holds the loss curves (``sft/loss``, ``sft/lr``, ``sft/grad_norm``,
``sft/progress``).

Batches come from :class:`EpisodeWindowSampler`: episodes are shuffled per epoch and frames
shuffled within windows of ``window_episodes`` episodes, so each episode's videos are decoded
once per epoch; the order is a pure function of (seed, step), which makes resuming exact.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import Tensor

__all__ = ["SFTConfig", "EpisodeWindowSampler", "SFTTrainer", "collate_frames", "find_latest_checkpoint"]

_CKPT_PREFIX = "checkpoint-"
_STATE_FILE = "trainer_state.pt"


@dataclass
class SFTConfig:
    """Options of ``python -m rlinf_isaac.sft`` (every field is a ``--flag``).

    The defaults train every part, which a tiny model started from scratch needs; to finetune
    a pretrained GR00T N1.5 (``--init-from DIR``) use GR00T's own defaults
    ``--no-tune-visual --no-tune-llm`` (frozen backbone).
    """

    dataset: str
    out: str
    config: str = "gr00t_tiny"  # shipped model config name or path (ignored with init_from)
    init_from: Optional[str] = None  # local checkpoint dir to start from (e.g. GR00T N1.5)
    steps: int = 1000
    # training-time budget in seconds (summed over resumed runs; model and data loading not
    # counted): stop at whichever of steps and max_seconds comes first, the cosine decay
    # following whichever is further along. None: steps only
    max_seconds: Optional[float] = None
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 1e-5
    warmup_steps: int = 50
    grad_clip: float = 1.0
    save_every: int = 500
    log_every: int = 10
    keep_checkpoints: int = 2
    seed: int = 0
    window_episodes: int = 8
    # threads decoding a batch's not-yet-cached episode videos side by side (1: one at a time)
    decode_workers: int = 4
    embodiment_tag: str = "new_embodiment"
    tune_visual: bool = True
    tune_llm: bool = True
    tune_projector: bool = True
    tune_diffusion_model: bool = True
    resume: bool = True
    # from-scratch init of the embodiment-specific W of state/action encoders + decoder:
    # "fan_in" (std 1/sqrt(in)) or "gr00t" (std 0.02, GR00T's, meant for finetuning; a tiny
    # model started from it barely learns: measured loss 1.01 -> 0.98 in 60 steps vs -> 0.05)
    scratch_init: str = "fan_in"
    # dropout of the model config (GR00T: 0.2 in the DiT and VL self-attention) while training;
    # False trains with p = 0 (RL and evaluation always run with dropout off)
    train_dropout: bool = True
    # image augmentation: each training image is shifted by up to +-N pixels (edge-replicated
    # pad, random crop back to size; DrQ's random shift), drawn per (seed, step). 0: off
    random_shift: int = 0
    # train only on episodes whose episodes.jsonl "success" is true (noise-injected expert
    # demos include failures: 8.5% on two cubes, 29.5% on three at noise 0.01)
    success_only: bool = False
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size", "save_every", "log_every", "keep_checkpoints", "window_episodes",
                    "decode_workers"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"sft.{key} must be a positive int, got {value!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"sft.warmup_steps must be >= 0, got {self.warmup_steps!r}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"sft.max_seconds must be > 0 (seconds) or None for no time budget, "
                             f"got {self.max_seconds!r}")
        if not isinstance(self.random_shift, int) or self.random_shift < 0:
            raise ValueError(f"sft.random_shift must be an int >= 0 (pixels), got {self.random_shift!r}")
        for key in ("lr", "grad_clip"):
            if not getattr(self, key) > 0:
                raise ValueError(f"sft.{key} must be > 0, got {getattr(self, key)!r}")
        if self.scratch_init not in ("fan_in", "gr00t"):
            raise ValueError(f"sft.scratch_init must be 'fan_in' or 'gr00t', got {self.scratch_init!r}")
        if self.weight_decay < 0:
            raise ValueError(f"sft.weight_decay must be >= 0, got {self.weight_decay!r}")


class EpisodeWindowSampler:
    """Deterministic, resumable frame order: epoch-shuffled episodes, frames shuffled per window.

    episode_lengths: frames per episode (dataset order: episode e's frames are the global
    indices ``offset[e] .. offset[e] + len[e] - 1``). ``batch(step)`` -> int64 [batch_size].
    """

    def __init__(self, episode_lengths: list[int], batch_size: int, window: int, seed: int,
                 episodes: Optional[list[int]] = None):
        if not episode_lengths or min(episode_lengths) < 1:
            raise ValueError(f"dataset must hold at least one non-empty episode, got lengths {episode_lengths[:8]}")
        self.lengths = torch.tensor(episode_lengths, dtype=torch.int64)
        self.offsets = torch.cumsum(self.lengths, 0) - self.lengths  # start index of each episode
        # the episodes drawn from (all by default; frame indices stay those of the whole dataset)
        self.episodes = (torch.arange(len(self.lengths)) if episodes is None
                         else torch.tensor(sorted(set(episodes)), dtype=torch.int64))
        if len(self.episodes) == 0:
            raise ValueError("no episodes to sample from (success_only on a dataset without a successful episode?)")
        self.num_frames = int(self.lengths[self.episodes].sum())
        self.batch_size, self.window, self.seed = batch_size, window, seed
        self._cache: tuple[int, Tensor] | None = None

    def epoch_order(self, epoch: int) -> Tensor:
        """int64 [N], the frame order of one epoch."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        episodes = self.episodes[torch.randperm(len(self.episodes), generator=gen)]
        parts = []
        for w in range(0, len(episodes), self.window):
            frames = torch.cat([torch.arange(int(self.offsets[e]), int(self.offsets[e] + self.lengths[e]))
                                for e in episodes[w : w + self.window]])
            parts.append(frames[torch.randperm(len(frames), generator=gen)])
        return torch.cat(parts)

    def _order(self, epoch: int) -> Tensor:
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, self.epoch_order(epoch))
        return self._cache[1]

    def batch(self, step: int) -> Tensor:
        """int64 [batch_size], frame indices of training step ``step`` (0-based)."""
        start = step * self.batch_size
        positions = range(start, start + self.batch_size)
        return torch.tensor([int(self._order(p // self.num_frames)[p % self.num_frames]) for p in positions])


def collate_frames(items: list[dict[str, Any]]) -> tuple[dict[str, Any], Tensor, Tensor]:
    """Dataset items -> (obs in the env contract's layout, actions [B, C, 7], action_mask bool [B, C])."""
    obs = {
        "main_images": torch.stack([it["main_image"] for it in items]),  # [B, H, W, 3]
        "wrist_images": torch.stack([it["wrist_image"] for it in items]),  # [B, H, W, 3]
        "states": torch.stack([it["state"] for it in items]).float(),  # [B, 8]
        "task_descriptions": [it["instruction"] for it in items],
    }
    actions = torch.stack([it["actions"] for it in items]).float()  # [B, C, 7]
    mask = torch.stack([it["action_mask"] for it in items]).to(torch.bool)  # [B, C]
    return obs, actions, mask


def shift_images(images: Tensor, pad: int, generator: torch.Generator) -> Tensor:
    """Shift each image of uint8 [B, H, W, C] by a random (dy, dx) in [-pad, pad]^2.

    Edge-replicated padding by ``pad`` then a random H x W crop per image; the content moves,
    the size does not (DrQ's augmentation for learning from pixels with few samples).
    """
    if pad == 0:
        return images
    b, h, w, _ = images.shape
    x = images.permute(0, 3, 1, 2).float()  # [B, C, H, W]
    x = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
    off = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator)
    out = torch.stack([x[i, :, oy : oy + h, ox : ox + w] for i, (oy, ox) in enumerate(off.tolist())])
    return out.round().to(images.dtype).permute(0, 2, 3, 1).contiguous()


def find_latest_checkpoint(out: str | os.PathLike) -> Optional[Path]:
    """The ``checkpoint-<step>`` folder with the largest step that has a trainer state, or None."""
    root = Path(out)
    if not root.is_dir():
        return None
    found = [(int(p.name[len(_CKPT_PREFIX):]), p) for p in root.iterdir()
             if p.name.startswith(_CKPT_PREFIX) and p.name[len(_CKPT_PREFIX):].isdigit()
             and (p / _STATE_FILE).is_file()]
    return max(found)[1] if found else None


def _decay_progress(step: int, warmup: int, total: int, elapsed_s: float = 0.0,
                    max_seconds: Optional[float] = None) -> float:
    """How far the cosine decay is, in [0, 1]: after ``warmup`` steps, the larger of the step
    fraction ``(step - warmup) / (total - warmup)`` and the time fraction ``elapsed_s / max_seconds``."""
    by_steps = max(0.0, (step - warmup) / max(1, total - warmup))
    by_time = elapsed_s / max_seconds if max_seconds else 0.0
    return min(1.0, max(by_steps, by_time))


def _lr_factor(step: int, warmup: int, total: int, elapsed_s: float = 0.0,
               max_seconds: Optional[float] = None) -> float:
    """Linear warm-up to 1 over ``warmup`` steps, then cosine decay to 0 at ``total`` steps or
    ``max_seconds``, whichever :func:`_decay_progress` says is nearer."""
    progress = _decay_progress(step, warmup, total, elapsed_s, max_seconds)
    if step < warmup and progress < 1.0:
        return (step + 1) / warmup  # lr = lr0 * (s + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * progress))  # lr = lr0 * (1 + cos(pi p)) / 2


@torch.no_grad()
def _fan_in_init(model: torch.nn.Module) -> None:
    """W[k] ~ N(0, 1 / in_dim) for every embodiment-specific linear (W: [slots, in, out])."""
    from rlinf_isaac.models.gr00t.action_head import CategorySpecificLinear

    for module in model.modules():
        if isinstance(module, CategorySpecificLinear):
            module.W.normal_(0.0, 1.0 / math.sqrt(module.W.shape[1]))  # std = 1 / sqrt(fan_in)


def _replace_dir(tmp: Path, final: Path) -> None:
    """Move folder ``tmp`` to ``final`` (replacing it) with renames only."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)


class SFTTrainer:
    """Flow-matching behaviour cloning; ``fit()`` runs from the latest checkpoint to ``cfg.steps``
    (or ``cfg.max_seconds`` of training time). ``clock`` returns seconds (tests pass a fake one)."""

    def __init__(self, cfg: SFTConfig, clock: Callable[[], float] = time.perf_counter):
        from rlinf_isaac.sft.dataset import LeRobotDataset

        self.cfg = cfg
        self.out = Path(cfg.out)
        self.device = torch.device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.model, self.tokenizer = self._build_model()
        horizon = self.model.config.action_head_cfg.action_horizon
        self.dataset = LeRobotDataset(cfg.dataset, action_horizon=horizon,
                                      max_cached_episodes=cfg.window_episodes)
        self.metadata = self._build_metadata()
        self.processor = self._build_processor()
        lengths = [int(e["length"]) for e in self.dataset.episodes]
        chosen = ([i for i, e in enumerate(self.dataset.episodes) if e.get("success", True)]
                  if cfg.success_only else None)
        self.sampler = EpisodeWindowSampler(lengths, cfg.batch_size, cfg.window_episodes, cfg.seed, chosen)
        self.model.set_dropout(cfg.train_dropout)
        self.model.set_trainable(tune_visual=cfg.tune_visual, tune_llm=cfg.tune_llm,
                                 tune_projector=cfg.tune_projector,
                                 tune_diffusion_model=cfg.tune_diffusion_model)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.clock = clock
        self.step = 0
        self.elapsed_s = 0.0  # training time so far, over resumed runs too

    # ------------------------------------------------------------------ construction
    def _build_model(self):
        from rlinf_isaac.models.gr00t.checkpoint import load_pretrained
        from rlinf_isaac.models.gr00t.config import load_config
        from rlinf_isaac.models.gr00t.modeling import GR00TN15
        from rlinf_isaac.models.gr00t.tokenizer import build_tiny_tokenizer, load_tokenizer

        if self.cfg.init_from:
            model, _ = load_pretrained(self.cfg.init_from, device=self.device)
            return model, load_tokenizer(self.cfg.init_from)
        model = GR00TN15(load_config(self.cfg.config)).to(self.device)
        if self.cfg.scratch_init == "fan_in":
            _fan_in_init(model)
        return model, build_tiny_tokenizer()

    def _build_metadata(self) -> dict[str, Any]:
        from rlinf_isaac.models.gr00t.processor import compute_statistics

        return compute_statistics(self.dataset, embodiment_tag=self.cfg.embodiment_tag)

    def _build_processor(self):
        from rlinf_isaac.models.gr00t.processor import GR00TProcessor

        return GR00TProcessor.for_model(self.model.config, self.metadata, tokenizer=self.tokenizer,
                                        embodiment_tag=self.cfg.embodiment_tag)

    # ------------------------------------------------------------------ training
    def batch_inputs(self, step: int) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """Model inputs, normalised actions [B, C, 32] and loss mask bool [B, C, 32] of a step."""
        items = self.dataset.items(self.sampler.batch(step).tolist(), self.cfg.decode_workers)
        obs, actions, step_mask = collate_frames(items)
        if self.cfg.random_shift:
            # a stream of its own: the sampler seeds its epoch orders with seed * 1_000_003 + epoch
            gen = torch.Generator().manual_seed((self.cfg.seed * 1_000_003 + step) ^ 0x5A1F7)
            for key in ("main_images", "wrist_images"):
                obs[key] = shift_images(obs[key], self.cfg.random_shift, gen)
        # uint8 images go to the device first: the processor's resize then runs there, not on the host
        obs = {k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in obs.items()}
        inputs = {k: v.to(self.device) if isinstance(v, Tensor) else v
                  for k, v in self.processor(obs).items()}
        # mask [B, C, 32]: real action dims of real (not past-the-end) steps
        norm, mask = self.processor.normalize_actions(actions, step_mask=step_mask)
        return inputs, norm.to(self.device), mask.to(self.device)

    def loss(self, inputs: dict[str, Tensor], actions: Tensor, mask: Tensor) -> Tensor:
        """Scalar flow-matching loss of one batch."""
        features, vl_mask = self.model.backbone(inputs["pixel_values"], inputs["input_ids"],
                                                inputs["attention_mask"])
        head = self.model.action_head
        ctx = head.prepare_context(features, vl_mask, inputs["state"], inputs["embodiment_id"])
        return head.flow_matching_loss(ctx, actions, mask)

    def progress(self) -> float:
        """How far the cosine decay is, in [0, 1]; training ends at 1."""
        cfg = self.cfg
        return _decay_progress(self.step, cfg.warmup_steps, cfg.steps, self.elapsed_s, cfg.max_seconds)

    def _set_lr(self) -> float:
        cfg = self.cfg
        lr = cfg.lr * _lr_factor(self.step, cfg.warmup_steps, cfg.steps, self.elapsed_s, cfg.max_seconds)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def train_step(self) -> dict[str, float]:
        """One optimisation step at the learning rate of the current step and elapsed time;
        returns its metrics."""
        self.model.train()
        inputs, actions, mask = self.batch_inputs(self.step)
        loss = self.loss(inputs, actions, mask)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in self.model.parameters() if p.requires_grad]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        lr = self._set_lr()
        progress = self.progress()
        self.optimizer.step()
        self.step += 1
        return {"sft/loss": loss.item(), "sft/grad_norm": grad_norm.item(), "sft/lr": lr,
                "sft/progress": progress}

    def _done(self) -> bool:
        return self.step >= self.cfg.steps or (self.step > 0 and self.progress() >= 1.0)

    def fit(self) -> dict[str, float]:
        """Train to ``cfg.steps`` or ``cfg.max_seconds`` (resuming when a checkpoint exists);
        returns the last metrics."""
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        if self.cfg.resume and (ckpt := find_latest_checkpoint(self.out)) is not None:
            self.load_checkpoint(ckpt)
        self.out.mkdir(parents=True, exist_ok=True)
        writer = SummaryWriter(str(self.out / "tensorboard"))
        bar = tqdm(total=self.cfg.steps, initial=self.step, disable=not self.cfg.progress, desc="sft")
        metrics: dict[str, float] = {}
        try:
            while not self._done():
                start = self.clock()
                metrics = self.train_step()
                metrics["time/step_s"] = self.clock() - start
                self.elapsed_s += metrics["time/step_s"]  # checkpoint writing is not counted
                if self.step % self.cfg.save_every == 0 and not self._done():
                    self.save_checkpoint(f"{_CKPT_PREFIX}{self.step}")
                if self.step % self.cfg.log_every == 0 or self._done():
                    for key, value in metrics.items():
                        writer.add_scalar(key, value, self.step)
                bar.set_postfix(loss=f"{metrics['sft/loss']:.4f}")
                bar.update(1)
            if self.step < self.cfg.steps:
                print(f"[sft] training-time budget of {self.cfg.max_seconds} s reached at step "
                      f"{self.step} of {self.cfg.steps} (learning rate decayed to 0)", flush=True)
            self.save_checkpoint(f"{_CKPT_PREFIX}{self.step}")
            self.save_checkpoint("final", trainer_state=False)
        finally:
            bar.close()
            writer.close()
        return metrics

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, name: str, trainer_state: bool = True) -> Path:
        """Write ``out/<name>/`` atomically (temporary folder + rename) and prune old ones."""
        from rlinf_isaac.models.gr00t.checkpoint import save_pretrained

        self.out.mkdir(parents=True, exist_ok=True)
        final, tmp = self.out / name, self.out / f".{name}.tmp-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        save_pretrained(self.model, tmp, metadata=self.metadata)
        self.tokenizer.save_pretrained(str(tmp))
        (tmp / "sft_config.json").write_text(json.dumps(asdict(self.cfg), indent=2) + "\n")
        if trainer_state:
            torch.save(self._trainer_state(), tmp / _STATE_FILE)
        _replace_dir(tmp, final)
        self._prune()
        return final

    def _trainer_state(self) -> dict[str, Any]:
        return {"step": self.step, "elapsed_s": self.elapsed_s, "optimizer": self.optimizer.state_dict(),
                "torch_rng": torch.get_rng_state()}

    def _prune(self) -> None:
        ckpts = sorted((int(p.name[len(_CKPT_PREFIX):]), p) for p in self.out.iterdir()
                       if p.name.startswith(_CKPT_PREFIX) and p.name[len(_CKPT_PREFIX):].isdigit())
        for _, path in ckpts[: max(0, len(ckpts) - self.cfg.keep_checkpoints)]:
            shutil.rmtree(path)

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore weights, optimizer, step, training time and RNG from ``checkpoint-<step>/``."""
        from rlinf_isaac.models.gr00t.checkpoint import load_pretrained

        loaded, _ = load_pretrained(path, device=self.device)
        self.model.load_state_dict(loaded.state_dict())
        state = torch.load(Path(path) / _STATE_FILE, map_location="cpu", weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        self.step = int(state["step"])
        self.elapsed_s = float(state.get("elapsed_s", 0.0))
