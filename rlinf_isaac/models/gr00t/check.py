"""Check a GR00T N1.5 checkpoint directory before training: ``python -m rlinf_isaac.models.gr00t.check PATH``.

Reads the directory's ``config.json``, its safetensors index and the shard headers (no weights
are loaded), builds the model the config describes on the meta device, and reports:

* tensors the model needs that the checkpoint lacks (missing), tensors the model has no place
  for (unexpected), tensors whose shape or dtype the model cannot take;
* what loading will do on its own: skip LM layers past ``backbone_cfg.select_layer``, take the
  tied ``lm_head`` from the embedding (or the embedding from a stored ``lm_head``);
* the config values that differ from a reference config (``gr00t_n1_5`` unless ``--reference``);
* the ``<IMG_CONTEXT>`` and pad token ids of the tokenizer files in the directory, if any,
  against ``backbone_cfg.image_token_index`` / ``pad_token_id``;

and ends with one verdict line, ``OK: ...`` or ``FAIL: ...`` (exit code 0 or 1). Training runs
the same check on ``actor.model.checkpoint_path`` before any worker starts.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

__all__ = ["CheckReport", "check_checkpoint", "main"]

FLOAT_DTYPES = ("F32", "BF16", "F16", "F64")  # what load_state_dict copies into float parameters
_INFORMATIONAL = ("name", "backbone_cfg.eagle_path")  # differences that change nothing


@dataclass
class CheckReport:
    """What :func:`check_checkpoint` found; ``ok`` when the checkpoint loads strictly."""

    path: Path
    errors: list[str] = field(default_factory=list)  # fatal: unreadable config or files, token ids
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    wrong_shape: list[str] = field(default_factory=list)
    wrong_dtype: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what loading does on its own
    config_diffs: list[str] = field(default_factory=list)
    reference: str = "gr00t_n1_5"
    num_tensors: int = 0
    num_params: int = 0

    @property
    def ok(self) -> bool:
        return not (self.errors or self.missing or self.unexpected or self.wrong_shape or self.wrong_dtype)

    def verdict(self) -> str:
        """One line: ``OK: ...`` or ``FAIL: ...`` with the counts."""
        if self.ok:
            return (f"OK: {self.path} loads strictly: {self.num_tensors} tensors, {self.num_params:,} parameters "
                    f"in the model")
        counts = [f"{len(v)} {k}" for k, v in (("errors", self.errors), ("missing", self.missing),
                                                ("unexpected", self.unexpected), ("wrong shape", self.wrong_shape),
                                                ("wrong dtype", self.wrong_dtype)) if v]
        return f"FAIL: {self.path}: " + ", ".join(counts)

    def format(self, limit: int = 20) -> str:
        """The whole report, one section per finding, the verdict last."""
        lines = [f"checkpoint {self.path}"]
        for title, items in (("errors", self.errors), ("missing from the checkpoint", self.missing),
                             ("unexpected in the checkpoint", self.unexpected), ("wrong shape", self.wrong_shape),
                             ("wrong dtype", self.wrong_dtype), ("notes", self.notes),
                             (f"config values that differ from {self.reference}", self.config_diffs)):
            if items:
                lines.append(f"  {title} ({len(items)}):")
                lines += [f"    {item}" for item in items[:limit]]
                if len(items) > limit:
                    lines.append(f"    ... and {len(items) - limit} more")
        lines.append(self.verdict())
        return "\n".join(lines)


def check_checkpoint(path: str | Path, reference: str = "gr00t_n1_5") -> CheckReport:
    """Check the checkpoint directory ``path`` without loading its weights (see the module doc)."""
    from rlinf_isaac.config.structured import ConfigError
    from rlinf_isaac.models.gr00t.checkpoint import CheckpointFileError, read_tensor_index

    report = CheckReport(Path(path), reference=reference)
    try:
        config = _read_config(report.path, report)
        stored = read_tensor_index(report.path)
    except (ConfigError, CheckpointFileError, FileNotFoundError, ValueError) as e:
        report.errors.append(str(e))
        return report
    _compare_tensors(config, stored, report)
    report.config_diffs = _config_diffs(config, reference)
    p = report.path
    if not ((p / "tokenizer.json").is_file() or ((p / "vocab.json").is_file() and (p / "merges.txt").is_file())):
        report.notes.append("no tokenizer files here (tokenizer.json, or vocab.json + merges.txt): set "
                            "actor.model.tokenizer_path to the folder of the Eagle 2.5 processor files")
    return report


def _read_config(path: Path, report: CheckReport):
    """The GR00TConfig of ``path``, with the token ids of its tokenizer files applied (or recorded as errors)."""
    from rlinf_isaac.models.gr00t.checkpoint import CONFIG_NAME, read_checkpoint_config

    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a directory (a GR00T checkpoint directory holds {CONFIG_NAME} "
                                f"and safetensors weights)")
    config, notes = read_checkpoint_config(path)
    report.notes += notes
    return config


def _compare_tensors(config, stored: dict, report: CheckReport) -> None:
    import torch

    from rlinf_isaac.models.gr00t.checkpoint import EMBED_NAME, LM_HEAD_NAME, skipped_lm_layers
    from rlinf_isaac.models.gr00t.modeling import GR00TN15

    with torch.device("meta"):
        model = GR00TN15(config)
    expected = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
    report.num_params = model.num_parameters()
    tied = config.backbone_cfg.llm.tie_word_embeddings
    skipped = skipped_lm_layers(stored, config.backbone_cfg.select_layer)
    if skipped:
        report.notes.append(f"LM layers {skipped[0]}..{skipped[-1]} are past backbone_cfg.select_layer="
                            f"{config.backbone_cfg.select_layer}: unused by GR00T, skipped when loading")
        stored = {k: v for k, v in stored.items() if k not in set(_layer_names(stored, skipped))}
    if tied:
        expected.pop(LM_HEAD_NAME, None)
        if LM_HEAD_NAME in stored:
            head = stored.pop(LM_HEAD_NAME)
            report.notes.append(f"{LM_HEAD_NAME} is stored although tie_word_embeddings=true: "
                                + ("the embedding is used for both" if EMBED_NAME in stored
                                   else "it becomes the embedding"))
            stored.setdefault(EMBED_NAME, head)
    report.num_tensors = len(stored)
    report.missing = sorted(set(expected) - set(stored))
    report.unexpected = sorted(set(stored) - set(expected))
    for name in sorted(set(stored) & set(expected)):
        shape, dtype = expected[name]
        got = stored[name]
        if got.shape != shape:
            report.wrong_shape.append(f"{name}: model {list(shape)}, checkpoint {list(got.shape)} ({got.file})")
        if dtype.is_floating_point and got.dtype not in FLOAT_DTYPES:
            report.wrong_dtype.append(f"{name}: {got.dtype} in {got.file}; the model takes {', '.join(FLOAT_DTYPES)}")


def _layer_names(stored: dict, layers: list[int]) -> list[str]:
    from rlinf_isaac.models.gr00t.checkpoint import LM_PREFIX

    prefixes = tuple(f"{LM_PREFIX}model.layers.{i}." for i in layers)
    return [k for k in stored if k.startswith(prefixes)]


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _config_diffs(config, reference: str) -> list[str]:
    """``key: ours <ref value>, checkpoint <value>`` for every differing config value."""
    from rlinf_isaac.models.gr00t.config import load_config

    ours, theirs = _flatten(load_config(reference).to_dict()), _flatten(config.to_dict())
    keys = sorted((set(ours) | set(theirs)) - set(_INFORMATIONAL))
    return [f"{k}: {reference} {json.dumps(ours.get(k))}, checkpoint {json.dumps(theirs.get(k))}"
            for k in keys if ours.get(k) != theirs.get(k)]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rlinf_isaac.models.gr00t.check", description=__doc__.split("\n")[0])
    p.add_argument("path", help="checkpoint directory (config.json + model.safetensors[.index.json])")
    p.add_argument("--reference", default="gr00t_n1_5", help="shipped config whose values the checkpoint's are compared with")
    p.add_argument("--limit", type=int, default=20, help="entries shown per section")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    report = check_checkpoint(args.path, args.reference)
    print(report.format(args.limit))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
