"""CLI: ``python -m rlinf_isaac.sft --dataset DIR --out DIR [--config gr00t_tiny] [--steps N] ...``.

Every field of :class:`rlinf_isaac.sft.trainer.SFTConfig` is a flag (booleans take
``--flag`` / ``--no-flag``). Prints one JSON line with the final metrics and checkpoint path.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing

from rlinf_isaac.sft.trainer import SFTConfig, SFTTrainer


def build_parser() -> argparse.ArgumentParser:
    """An argparse parser generated from :class:`SFTConfig`'s fields and defaults."""
    parser = argparse.ArgumentParser(prog="python -m rlinf_isaac.sft", description=__doc__.splitlines()[0])
    hints = typing.get_type_hints(SFTConfig)
    for f in dataclasses.fields(SFTConfig):
        flag, hint = "--" + f.name.replace("_", "-"), hints[f.name]
        required = f.default is dataclasses.MISSING
        if hint is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
            continue
        base = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
        parser.add_argument(flag, type=base, required=required,
                            default=None if required else f.default,
                            help=None if required else f"default: {f.default}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = SFTConfig(**vars(args))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    trainer = SFTTrainer(cfg)
    metrics = trainer.fit()
    print(json.dumps({"step": trainer.step, "checkpoint": str(trainer.out / "final"), **metrics}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
