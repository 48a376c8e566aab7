"""scripts/make_tiny_sft.sh: its SFT command line parses, and its defaults are the tuned ones."""

import re
import subprocess
from pathlib import Path

from rlinf_isaac.sft.__main__ import build_parser
from rlinf_isaac.sft.trainer import SFTConfig

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_tiny_sft.sh"


def _defaults() -> dict[str, str]:
    """The script's default variables, evaluated by bash from its ``NAME=${NAME:-...}`` lines."""
    lines = [ln for ln in SCRIPT.read_text().splitlines() if re.match(r"^[A-Z_]+=\$\{[A-Z_]+:-", ln)]
    names = [ln.split("=", 1)[0] for ln in lines]
    echo = "; ".join(f'echo "{n}=${n}"' for n in names)
    out = subprocess.run(["bash", "-c", "\n".join(lines) + "\n" + echo], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"}, check=True)
    return dict(line.split("=", 1) for line in out.stdout.splitlines())


def _sft_argv(defaults: dict[str, str]) -> list[str]:
    """The ``python -m rlinf_isaac.sft`` arguments of the script with its defaults substituted."""
    text = SCRIPT.read_text()
    call = re.search(r'-m rlinf_isaac\.sft (.*?)\n\n', text, re.S).group(1).replace("\\\n", " ")
    call = call.replace('"$OUT/demos"', "demos").replace('"$OUT/sft"', "sft")
    flag = "--train-dropout" if int(defaults["DROPOUT"]) else "--no-train-dropout"
    call = call.replace('"$DROPOUT_FLAG"', flag)
    call = call.replace('"$SUCCESS_FLAG"', "--success-only" if int(defaults["SUCCESS_ONLY"]) else "--no-success-only")
    # optional flags: ${NAME:+--flag "$NAME"} expands to "--flag value" only when NAME is set
    call = re.sub(r'\$\{([A-Z_]+):\+(--[a-z-]+) "\$\1"\}',
                  lambda m: f"{m.group(2)} {defaults[m.group(1)]}" if defaults[m.group(1)] else "", call)
    call = re.sub(r'"\$([A-Z_]+)"', lambda m: defaults[m.group(1)], call)
    return call.split()


def test_sft_command_line_parses_into_the_tuned_config():
    defaults = _defaults()
    # tuned defaults (measured, see the script header): 200 noise-injected demos, 8000 steps,
    # lr 1e-3, all episodes in one shuffling window, dropout off while training
    assert (defaults["EPISODES"], defaults["STEPS"], defaults["LR"], defaults["DROPOUT"]) == (
        "200", "8000", "1e-3", "0")
    assert defaults["ACTION_NOISE"] == "0.01" and defaults["RANDOM_SHIFT"] == "0"
    assert defaults["WINDOW"] == defaults["EPISODES"]
    cfg = SFTConfig(**vars(build_parser().parse_args(_sft_argv(defaults))))
    assert (cfg.dataset, cfg.out, cfg.config) == ("demos", "sft", "gr00t_tiny")
    assert (cfg.steps, cfg.batch_size, cfg.lr, cfg.window_episodes) == (8000, 32, 1e-3, 200)
    assert cfg.scratch_init == "fan_in" and cfg.save_every == 1000 and not cfg.progress
    assert cfg.train_dropout is False and cfg.success_only is False and cfg.init_from is None
    # INIT_FROM (the three-cube recipe starts from the two-cube checkpoint) reaches --init-from
    cfg = SFTConfig(**vars(build_parser().parse_args(_sft_argv({**defaults, "INIT_FROM": "ckpt2"}))))
    assert cfg.init_from == "ckpt2"
    # MAX_SECONDS (a training-time budget) reaches --max-seconds; unset, there is none
    assert cfg.max_seconds is None
    cfg = SFTConfig(**vars(build_parser().parse_args(_sft_argv({**defaults, "MAX_SECONDS": "420"}))))
    assert cfg.max_seconds == 420.0


def _name_and_env_args(**env: str) -> tuple[str, list[str]]:
    """NAME and ENV_ARGS as the script sets them for the given variables (its defaults otherwise)."""
    text = SCRIPT.read_text()
    block = text[text.index('case "$TASK" in *Two-Cube*'):]
    block = block[: block.index("esac\n", block.index("ENV_ARGS=(")) + 4]
    defaults = {**_defaults(), **env}
    assigns = "\n".join(f"{k}={v!r}" for k, v in defaults.items())
    out = subprocess.run(["bash", "-c", f'{assigns}\n{block}\necho "$NAME"; for a in "${{ENV_ARGS[@]}}"; do echo "$a"; done'],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=True)
    name, *args = out.stdout.splitlines()
    return name, args


def test_isaaclab_task_gets_its_own_checkpoint_name_and_the_simulator_options():
    assert _name_and_env_args() == ("stack2", [])
    assert _name_and_env_args(TASK="MuJoCo-Stack-Cube-Franka-IK-Rel-Visuomotor-v0", MAX_EPISODE_STEPS="250") == (
        "stack3", ["--max-episode-steps", "250"])
    name, args = _name_and_env_args(TASK="IsaacContrib-Stack-Cube-Franka-IK-Rel-Visuomotor", SIM_DEVICE="cpu",
                                    ISAACLAB_STACK="newton", ISAACLAB_PYTHON="/venv312/bin/python")
    assert name == "isaaclab_stack"
    assert args == ["--sim-device", "cpu", "--isaaclab-stack", "newton", "--isaaclab-python", "/venv312/bin/python"]
    # the same options parse in both tools the script calls
    import argparse

    from rlinf_isaac.envs.isaaclab.cli import add_simulator_arguments, simulator_kwargs

    p = argparse.ArgumentParser()
    add_simulator_arguments(p)
    assert simulator_kwargs(p.parse_args(args), "isaaclab") == {
        "device": "cpu", "stack": "newton", "python": "/venv312/bin/python"}
    assert simulator_kwargs(p.parse_args(args), "mujoco") == {}
