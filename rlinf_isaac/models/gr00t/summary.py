"""Parameter table of a GR00T config: ``python -m rlinf_isaac.models.gr00t.summary --config NAME_OR_PATH``.

Builds the model on the meta device by default (no memory, no weights), prints parameter counts
per part and, last, one JSON line ``{"params": N, "trainable": M}``. ``--keys`` first prints every
parameter as ``name (d0, d1, ...)``.
"""

from __future__ import annotations

import argparse
import json
from collections import OrderedDict

import torch

from rlinf_isaac.models.gr00t.config import load_config
from rlinf_isaac.models.gr00t.modeling import GR00TN15

__all__ = ["PARTS", "part_of", "count_parts", "parameter_shapes", "main"]

# (part, name prefixes) in display order; the first matching prefix wins, the rest is "other"
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("vision", ("backbone.eagle_model.vision_model.",)),
    ("projector", ("backbone.eagle_model.mlp1.", "backbone.eagle_linear.")),
    ("llm", ("backbone.eagle_model.language_model.",)),
    ("vlln+vl_self_attention", ("action_head.vlln.", "action_head.vl_self_attention.")),
    ("dit", ("action_head.model.",)),
    ("state/action encoders", ("action_head.state_encoder.", "action_head.action_encoder.")),
    ("action decoder", ("action_head.action_decoder.",)),
)


def part_of(name: str) -> str:
    """The part a parameter name belongs to (see :data:`PARTS`), else ``"other"``."""
    for part, prefixes in PARTS:
        if name.startswith(prefixes):
            return part
    return "other"


def count_parts(model: GR00TN15) -> "OrderedDict[str, tuple[int, int]]":
    """part -> (parameters, trainable parameters); tied weights count once."""
    out: OrderedDict[str, tuple[int, int]] = OrderedDict((p, (0, 0)) for p, _ in PARTS)
    out["other"] = (0, 0)
    for name, p in model.named_parameters():
        total, train = out[part_of(name)]
        out[part_of(name)] = (total + p.numel(), train + (p.numel() if p.requires_grad else 0))
    return out


def parameter_shapes(model: GR00TN15) -> "OrderedDict[str, tuple[int, ...]]":
    """Every parameter name -> shape, in module order (the name -> shape manifest)."""
    return OrderedDict((n, tuple(p.shape)) for n, p in model.named_parameters())


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="gr00t_n1_5", help="shipped config name, config.json or checkpoint dir")
    ap.add_argument("--device", default="meta", help="device to build on (meta: no memory)")
    ap.add_argument("--keys", action="store_true", help="print every parameter name and shape first")
    args = ap.parse_args(argv)
    with torch.device(args.device):
        model = GR00TN15(load_config(args.config))
    if args.keys:
        for name, shape in parameter_shapes(model).items():
            print(f"{name} {shape}")
    parts = count_parts(model)
    total = sum(t for t, _ in parts.values())
    train = sum(t for _, t in parts.values())
    print(f"{'part':<26}{'params':>16}{'trainable':>16}{'share':>9}")
    for part, (n, t) in parts.items():
        print(f"{part:<26}{n:>16,}{t:>16,}{100.0 * n / max(total, 1):>8.2f}%")
    print(f"{'total':<26}{total:>16,}{train:>16,}{100.0:>8.2f}%")
    print(json.dumps({"params": total, "trainable": train}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
