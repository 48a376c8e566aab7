#!/usr/bin/env bash
# Example: expert demos -> SFT -> PPO -> eval on the embedded two-cube task (MuJoCo, CPU).
#
# What it shows: the whole pipeline with the real commands, each step's output feeding
# the next one:
#   1. python -m rlinf_isaac.demos.expert --record  scripted expert demos (LeRobot dataset) + a video
#   2. python -m rlinf_isaac.sft                   flow-matching behaviour cloning of gr00t_tiny
#   3. bash run_embodiment.sh CONFIG actor.model.checkpoint_path=<SFT checkpoint>   PPO
#   4. bash eval_embodiment.sh CONFIG runner.resume_dir=<the PPO run's checkpoints>  eval
#   5. python examples/read_tensorboard.py <the PPO run>                               curves
#
# How long (2-core CPU): the defaults are a smoke run, measured at 3 min 12 s (expert 20 s,
# SFT 40 s, PPO 75 s, eval 60 s; most of it Ray start-up); success stays 0 at these
# sizes. A policy that stacks needs e.g.
#   EPISODES=100 SFT_STEPS=3000 SFT_BATCH=32 PPO_STEPS=100 ENVS=16 EPISODE_STEPS=160 \
#   EVAL_EPISODES=200 bash examples/sft_to_ppo.sh        (hours on a CPU; use a GPU config)
#
# What you see: the expert's success rate, the SFT loss and checkpoint path, the placement
# table and per-step PPO progress, the eval JSON line
#   {"success_rate": ..., "ci95": [lo, hi], "episodes": N, "video_dir": ...}
# and a table of the run's metrics. Everything lands under $OUT (default outputs/sft_to_ppo).
#
# Knobs (environment variables): TASK, EPISODES, NUM_ENVS (expert), SFT_STEPS, SFT_BATCH,
# CONFIG (cpu_quickstart; on a GPU machine e.g. mujoco_stack2_ppo_gr00t_tiny), PPO_STEPS,
# ENVS, EPISODE_STEPS (a multiple of the 16-action chunk), BATCH, MICRO_BATCH,
# EVAL_EPISODES, OUT. Extra arguments are passed to run_embodiment.sh as Hydra overrides.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} LP_NUM_THREADS=${LP_NUM_THREADS:-1}

TASK=${TASK:-MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0}
EPISODES=${EPISODES:-8}
NUM_ENVS=${NUM_ENVS:-4}
SFT_STEPS=${SFT_STEPS:-20}
SFT_BATCH=${SFT_BATCH:-8}
CONFIG=${CONFIG:-cpu_quickstart}
PPO_STEPS=${PPO_STEPS:-2}
ENVS=${ENVS:-4}
EPISODE_STEPS=${EPISODE_STEPS:-32}
BATCH=${BATCH:-8}
MICRO_BATCH=${MICRO_BATCH:-4}
EVAL_EPISODES=${EVAL_EPISODES:-4}
OUT=${OUT:-outputs/sft_to_ppo}
mkdir -p "$OUT"
START=$(date +%s)
say() { echo "[sft_to_ppo +$(( $(date +%s) - START ))s] $*"; }

say "1/5 expert: $EPISODES episodes of $TASK -> $OUT/demos (video $OUT/expert.mp4)"
rm -rf "$OUT/demos"
"$PY" -m rlinf_isaac.demos.expert --task "$TASK" --episodes "$EPISODES" --num-envs "$NUM_ENVS" \
  --record "$OUT/demos" --video "$OUT/expert.mp4"

say "2/5 SFT: gr00t_tiny, $SFT_STEPS steps of batch $SFT_BATCH -> $OUT/sft/final"
"$PY" -m rlinf_isaac.sft --dataset "$OUT/demos" --config gr00t_tiny --out "$OUT/sft" \
  --steps "$SFT_STEPS" --batch-size "$SFT_BATCH" --save-every "$SFT_STEPS" --no-resume --no-progress
SFT_CKPT=$OUT/sft/final

RUN=$OUT/ppo
say "3/5 PPO: $CONFIG from $SFT_CKPT, $PPO_STEPS steps, $ENVS envs -> $RUN"
rm -rf "$RUN"
bash run_embodiment.sh "$CONFIG" \
  env.train.task_id="$TASK" env.eval.task_id="$TASK" \
  actor.model.checkpoint_path="$SFT_CKPT" \
  runner.max_steps="$PPO_STEPS" runner.save_interval="$PPO_STEPS" runner.val_check_interval=-1 \
  env.train.total_num_envs="$ENVS" env.train.max_episode_steps="$EPISODE_STEPS" \
  actor.global_batch_size="$BATCH" actor.micro_batch_size="$MICRO_BATCH" \
  env.train.video_cfg.save_video=true env.train.video_cfg.interval="$PPO_STEPS" \
  runner.logger.log_path="$RUN" "$@"

say "4/5 eval: $EVAL_EPISODES episodes of the policy in $RUN/checkpoints (latest)"
bash eval_embodiment.sh "$CONFIG" \
  env.train.task_id="$TASK" env.eval.task_id="$TASK" \
  actor.model.checkpoint_path="$SFT_CKPT" runner.resume_dir="$RUN/checkpoints" \
  env.eval.total_num_envs="$ENVS" env.eval.max_episode_steps="$EPISODE_STEPS" \
  runner.eval_episodes="$EVAL_EPISODES" env.eval.video_cfg.save_video=true \
  runner.logger.log_path="$OUT/eval" | tee "$OUT/eval.log"
tail -n 3 "$OUT/eval.log" | grep '^{' > "$OUT/eval.json" || true

say "5/5 metrics of the PPO run"
"$PY" examples/read_tensorboard.py "$RUN" --png "$OUT/plots"
say "done: demos $OUT/demos, SFT $SFT_CKPT, PPO run $RUN, eval report $OUT/eval.json, plots $OUT/plots"
