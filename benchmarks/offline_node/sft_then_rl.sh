#!/usr/bin/env bash
# From nothing to a learning result on one GPU node: scripted-expert demos -> SFT variants side
# by side -> the SFT checkpoint picked from them -> RL runs from it, each evaluated.
#
#   TASK=IsaacContrib-Stack-Cube-Franka-IK-Rel-Visuomotor MAX_EPISODE_STEPS=320 ISAACLAB_STACK=newton \
#   DEMO_EPISODES=1600 DEMO_ENVS=400 \
#   VARIANTS="a:TASK:DEMOS:3000:INIT_FROM=checkpoints/gr00t_tiny_sft_stack3,BATCH_SIZE=128,LR=1e-3" \
#   RUNS="base:isaaclab_stack_ppo_gr00t_tiny ppo:isaaclab_stack_ppo_gr00t_tiny grpo:isaaclab_stack_grpo_gr00t_tiny" \
#   TRAIN_S=420 bash benchmarks/offline_node/sft_then_rl.sh [key=value overrides for every RL run]
#
# 1. The expert records DEMO_EPISODES episodes of TASK (seed DEMO_SEED, action noise ACTION_NOISE,
#    DEMO_ENVS envs at once, DEMO_ARGS more expert options, e.g. "--funnel 0.03") into
#    $WORK/demos, unless a dataset is already there.
# 2. sft_sweep.sh trains VARIANTS (TASK and DEMOS in a variant stand for $TASK and that dataset)
#    and evaluates every checkpoint on SWEEP_EVAL_EPISODES episodes.
# 3. Of all evaluated checkpoints the pick is the most successful one inside [PICK_LOW,
#    PICK_HIGH], else the one nearest that range (sft_sweep.sh's rule, across variants).
# 4. run_experiments.sh trains RUNS from it (actor.model.checkpoint_path=<pick>) and evaluates
#    them; a run named base* only evaluates the pick.
# Writes under $OUT: sweep/ (sft_sweep.sh's files), sft_pick.tgz (the pick), pick.json, the RL
# runs' NAME.tgz, and demos.json (the expert's success). For runs longer than one command may
# last, start this through detached.sh.
set -uo pipefail
OUT=${OUT:-/tmp/sft_rl_results}
WORK=${WORK:-/tmp/sft_rl}
TASK=${TASK:?set TASK to a task id}
DEMO_EPISODES=${DEMO_EPISODES:-1000}
DEMO_ENVS=${DEMO_ENVS:-200}
DEMO_SEED=${DEMO_SEED:-7}
ACTION_NOISE=${ACTION_NOISE:-0.01}
mkdir -p "$OUT" "$WORK" && OUT=$(cd "$OUT" && pwd) && WORK=$(cd "$WORK" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/node_env.sh"  # wheelhouse, threads, EGL; the repository on PYTHONPATH
cd "$HERE/../.." || exit 1
export MAX_EPISODE_STEPS=${MAX_EPISODE_STEPS:-}
sim_args "$TASK"  # -> SIM_ARGS, the expert's episode limit and simulator (node_env.sh)
t0=$(date +%s)
stamp() { echo "[sft_then_rl] $* at $(( $(date +%s) - t0 )) s"; }

demos=$WORK/demos
if [ ! -f "$demos/meta/info.json" ]; then
  stamp "recording $DEMO_EPISODES expert episodes"
  $PYTHON -m rlinf_isaac.demos.expert --task "$TASK" --episodes "$DEMO_EPISODES" --num-envs "$DEMO_ENVS" \
    --seed "$DEMO_SEED" --action-noise "$ACTION_NOISE" --record "$demos" "${SIM_ARGS[@]}" ${DEMO_ARGS:-} \
    2> "$WORK/demos.err" | tail -1 | tee "$OUT/demos.json"
  [ -f "$demos/meta/info.json" ] || { tail -20 "$WORK/demos.err"; echo "[sft_then_rl] recording failed" >&2; exit 1; }
fi

stamp "SFT sweep"
v=${VARIANTS:?set VARIANTS="NAME:TASK:DEMOS:STEPS[:KEY=V,...] ..."}
v=${v//:TASK:/:$TASK:} && v=${v//:DEMOS:/:$demos:}
VARIANTS=$v EVAL_EPISODES=${SWEEP_EVAL_EPISODES:-100} OUT=$OUT/sweep WORK=$WORK/sweep \
  bash "$HERE/sft_sweep.sh" > "$WORK/sweep.out" 2>&1
tail -n 30 "$WORK/sweep.out"

pick=$(cat "$OUT/sweep/sweep.jsonl" 2>/dev/null | $PYTHON "$HERE/pick_start.py" --low "${PICK_LOW:-0.2}" --high "${PICK_HIGH:-0.7}")
[ -n "$pick" ] || { echo "[sft_then_rl] no SFT checkpoint was evaluated" >&2; exit 1; }
echo "$pick" > "$OUT/pick.json"
ckpt=$(echo "$pick" | $PYTHON "$HERE/pick_start.py" --field checkpoint)
tar -C "$(dirname "$ckpt")" -czf "$OUT/sft_pick.tgz" --exclude trainer_state.pt "$(basename "$ckpt")"
stamp "picked $pick"

[ -n "${RUNS:-}" ] || exit 0
stamp "RL runs"
# without VARIANTS: run_experiments.sh would run the sweep again beside the RL runs
env -u VARIANTS OUT="$OUT" WORK="$WORK/rl" bash "$HERE/run_experiments.sh" "actor.model.checkpoint_path=$ckpt" "$@"
stamp "done"
