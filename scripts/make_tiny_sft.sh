#!/usr/bin/env bash
# Make the tiny GR00T SFT checkpoint on a CPU: scripted expert demos -> flow-matching BC -> checkpoint.
#
#   bash scripts/make_tiny_sft.sh                       # defaults below
#   TASK=MuJoCo-Stack-Cube-Franka-IK-Rel-Visuomotor-v0 EPISODES=200 STEPS=6000 bash scripts/make_tiny_sft.sh
#
# Outputs under $OUT: demos/ (LeRobot v2 dataset), sft/final/ (the checkpoint: config.json,
# safetensors, experiment_cfg/metadata.json, tokenizer), sft/tensorboard/ (loss curves) and,
# with EVAL_EPISODES > 0, sft/eval.json (success rate of the deterministic policy).
# Re-running resumes the SFT from its latest checkpoint-<step>/ (demos are kept if present).
#
# Isaac Lab's task kit-less on a CPU (the simulator in the Python 3.12 venv of docs/isaaclab.md):
#   TASK=IsaacContrib-Stack-Cube-Franka-IK-Rel-Visuomotor SIM_DEVICE=cpu ISAACLAB_STACK=newton \
#   ISAACLAB_PYTHON=~/.cache/rlinf_isaac/isaaclab-lane/bin/python MAX_EPISODE_STEPS=320 bash scripts/make_tiny_sft.sh
#
# DEVICE=cuda trains and evaluates on a GPU; ACTION_NOISE=0.01 records DART-style demos (noisy
# execution, clean labels); SAVE_EVERY sets the checkpoint interval; MAX_SECONDS bounds the
# training time, the learning rate's cosine decay then ending at whichever of STEPS and
# MAX_SECONDS comes first (a run killed mid-decay leaves checkpoints that imitate far worse).
# The shipped three-cube checkpoint took three SFT runs (the first and third of this script), each
# from the previous one's weights (INIT_FROM); their commands are in checkpoints/gr00t_tiny_sft_stack3/README.md.
#
# Measured (2-core CPU, defaults = the shipped checkpoints/gr00t_tiny_sft_stack2): demos ~2 min,
# SFT 8000 steps at ~0.22-0.26 s/step (~33 min), final loss ~0.13 (noisy demos). Two-cube success
# with eval_embodiment.sh, 200 episodes, 160-step limit: 0.385 [0.32, 0.45] re-planning every 4
# actions, 0.22 [0.17, 0.28] executing all 16. Stopping at 4000 of the 8000 steps (lr not yet
# decayed) gave 0.015; clean demos and RANDOM_SHIFT=4 are worse (docs/RESULTS.md#sft-recipe).
# With DEVICE=cuda, SFT is CPU-bound (~12-14 steps/s per process on a 16-core H100 machine).
set -euo pipefail

TASK=${TASK:-MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0}
EPISODES=${EPISODES:-200}
NUM_ENVS=${NUM_ENVS:-8}
NUM_WORKERS=${NUM_WORKERS:-0}  # simulator processes recording the demos (0: in one process)
STEPS=${STEPS:-8000}
MAX_SECONDS=${MAX_SECONDS:-}  # training-time budget: stop at STEPS or this, the lr annealed to 0 by then
BATCH_SIZE=${BATCH_SIZE:-32}
LR=${LR:-1e-3}
# episodes whose decoded videos stay cached and whose frames are shuffled together (all by default)
WINDOW=${WINDOW:-$EPISODES}
MODEL_CONFIG=${MODEL_CONFIG:-gr00t_tiny}
INIT_FROM=${INIT_FROM:-}  # a local checkpoint to start from (e.g. the two-cube SFT for three cubes); MODEL_CONFIG is then unused
DROPOUT=${DROPOUT:-0}  # 0: train with dropout off (measured: SFT loss 0.042 vs 0.071 at step 2500), 1: the config's 0.2
SEED=${SEED:-0}
SUCCESS_ONLY=${SUCCESS_ONLY:-0}  # 1: SFT on the successful demos only (noisy demos include failures)
RANDOM_SHIFT=${RANDOM_SHIFT:-0}  # SFT image augmentation: random shifts of up to +-N pixels
SAVE_EVERY=${SAVE_EVERY:-1000}  # steps between checkpoint-<step>/ (the newest 4 are kept)
ACTION_NOISE=${ACTION_NOISE:-0.01}  # DART-style noise on the expert's executed arm actions (recorded clean)
EVAL_EPISODES=${EVAL_EPISODES:-16}
EVAL_CHUNK=${EVAL_CHUNK:-16}
DEVICE=${DEVICE:-cpu}  # cuda: SFT and the evaluation's policy on the GPU
MAX_EPISODE_STEPS=${MAX_EPISODE_STEPS:-}  # episode limit of the demos and the evaluation (default: the task's)
# Isaac Lab tasks: the simulator process's device, stack and interpreter (docs/isaaclab.md)
SIM_DEVICE=${SIM_DEVICE:-cuda:0}
ISAACLAB_STACK=${ISAACLAB_STACK:-auto}
ISAACLAB_PYTHON=${ISAACLAB_PYTHON:-${RLINF_ISAACLAB_PYTHON:-}}
OUT=${OUT:-outputs/tiny_sft}
case "$TASK" in *Two-Cube*) NAME=stack2 ;; Isaac*) NAME=isaaclab_stack ;; *) NAME=stack3 ;; esac
ENV_ARGS=(${MAX_EPISODE_STEPS:+--max-episode-steps "$MAX_EPISODE_STEPS"})
case "$TASK" in
  Isaac*) ENV_ARGS+=(--sim-device "$SIM_DEVICE" --isaaclab-stack "$ISAACLAB_STACK"
                     ${ISAACLAB_PYTHON:+--isaaclab-python "$ISAACLAB_PYTHON"}) ;;
esac
# where the RL configs (config/mujoco_${NAME}_*_gr00t_tiny.yaml, config/${NAME}_*_gr00t_tiny.yaml) look for it
CKPT=${CKPT:-checkpoints/gr00t_tiny_sft_${NAME}}
PYTHON=${PYTHON:-python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} LP_NUM_THREADS=${LP_NUM_THREADS:-1}

mkdir -p "$OUT"
if [[ ! -f "$OUT/demos/meta/info.json" ]]; then
  echo "[make_tiny_sft] recording $EPISODES expert episodes of $TASK -> $OUT/demos"
  "$PYTHON" -m rlinf_isaac.demos.expert --task "$TASK" --episodes "$EPISODES" --num-envs "$NUM_ENVS" \
    --seed "$SEED" --action-noise "$ACTION_NOISE" --num-workers "$NUM_WORKERS" --record "$OUT/demos" "${ENV_ARGS[@]}"
else
  echo "[make_tiny_sft] reusing demos in $OUT/demos"
fi

if (( DROPOUT )); then DROPOUT_FLAG=--train-dropout; else DROPOUT_FLAG=--no-train-dropout; fi
if (( SUCCESS_ONLY )); then SUCCESS_FLAG=--success-only; else SUCCESS_FLAG=--no-success-only; fi
echo "[make_tiny_sft] flow-matching SFT of gr00t_tiny for $STEPS steps -> $OUT/sft"
"$PYTHON" -m rlinf_isaac.sft --dataset "$OUT/demos" --config "$MODEL_CONFIG" --out "$OUT/sft" \
  --steps "$STEPS" --batch-size "$BATCH_SIZE" --lr "$LR" --seed "$SEED" --window-episodes "$WINDOW" \
  --save-every "$SAVE_EVERY" --keep-checkpoints 4 --no-progress "$DROPOUT_FLAG" --device "$DEVICE" \
  --random-shift "$RANDOM_SHIFT" "$SUCCESS_FLAG" ${INIT_FROM:+--init-from "$INIT_FROM"} \
  ${MAX_SECONDS:+--max-seconds "$MAX_SECONDS"}

if (( EVAL_EPISODES > 0 )); then
  echo "[make_tiny_sft] evaluating $OUT/sft/final on $EVAL_EPISODES episodes of $TASK"
  rm -f "$OUT/sft/eval.json"
  "$PYTHON" -m rlinf_isaac.sft.evaluate "$OUT/sft/final" --task "$TASK" --episodes "$EVAL_EPISODES" \
    --num-envs "$NUM_ENVS" --seed "$((SEED + 1000))" --device "$DEVICE" --num-action-chunks "$EVAL_CHUNK" \
    --json "$OUT/sft/eval.json" "${ENV_ARGS[@]}"
fi
mkdir -p "$(dirname "$CKPT")"
rm -rf "$CKPT.tmp" && cp -r "$OUT/sft/final" "$CKPT.tmp" && rm -rf "$CKPT" && mv "$CKPT.tmp" "$CKPT"
echo "[make_tiny_sft] done: checkpoint in $OUT/sft/final, copied to $CKPT"
