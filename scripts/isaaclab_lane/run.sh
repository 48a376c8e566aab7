#!/usr/bin/env bash
# The Isaac Lab lane: Python 3.12, Isaac Lab 3.0 kit-less on Newton (no Isaac Sim), our Isaac Lab
# backend run against it (tests/isaaclab_lane, marker isaaclab). CI runs it after the main suite.
#
#   bash scripts/isaaclab_lane/run.sh              # install (cached) + run tests/isaaclab_lane
#   bash scripts/isaaclab_lane/run.sh --install    # only create / refresh the cached venv
#   bash scripts/isaaclab_lane/run.sh -k spec      # extra args go to pytest (no training run then)
#
# Without pytest arguments it then trains two PPO steps of the tiny policy on the real task through
# the whole pipeline (Ray workers in the project's .venv, the simulator in this venv; CPU).
#
# The venv holds torch (Isaac Lab 3.0 pins 2.11.0; PyPI's Linux build is the CUDA one, which also
# runs on a CPU), the packages of requirements-nodeps.txt without their dependencies and those
# of requirements.txt: ~5.6 GB, cached in $ISAACLAB_LANE_VENV and rebuilt when a pin changes.
# Warp compiles its kernels on the first run of a machine (cached in ~/.cache/warp).
#
# Env: ISAACLAB_LANE_VENV (default ~/.cache/rlinf_isaac/isaaclab-lane), ISAACLAB_LANE_PYTHON
#      (default: pyenv's 3.12, else python3.12).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../.."
VENV=${ISAACLAB_LANE_VENV:-$HOME/.cache/rlinf_isaac/isaaclab-lane}
PY=${ISAACLAB_LANE_PYTHON:-}
if [ -z "$PY" ]; then
  for cand in "$(command -v pyenv >/dev/null && echo "$(pyenv root)/versions/3.12.1/bin/python")" \
              /root/.pyenv/versions/3.12.1/bin/python "$(command -v python3.12 || true)"; do
    if [ -n "$cand" ] && [ -x "$cand" ]; then PY=$cand; break; fi
  done
fi
[ -n "$PY" ] || { echo "[isaaclab-lane] needs Python 3.12 (set ISAACLAB_LANE_PYTHON)" >&2; exit 2; }

start=$(date +%s)
pins=$(cat "$HERE/requirements-nodeps.txt" "$HERE/requirements.txt" | sha256sum | cut -c1-16)
stamp="$VENV/.rlinf_isaac_lane_$pins"
if [ ! -f "$stamp" ]; then
  echo "[isaaclab-lane] creating $VENV with $($PY --version) (pins $pins)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "torch==2.11.0"
  "$VENV/bin/python" -m pip install -q --no-deps -r "$HERE/requirements-nodeps.txt"
  "$VENV/bin/python" -m pip install -q -r "$HERE/requirements.txt"
  touch "$stamp"
fi
# Our package without its training dependencies (the adapter needs torch + gymnasium only).
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1
echo "[isaaclab-lane] venv ready in $(( $(date +%s) - start )) s ($(du -sh "$VENV" | cut -f1))"
[ "${1:-}" = "--install" ] && exit 0

t0=$(date +%s)
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$VENV/bin/python" -m pytest tests/isaaclab_lane -m isaaclab -W ignore::DeprecationWarning -W ignore::FutureWarning \
  -p no:cacheprovider -q "$@"
echo "[isaaclab-lane] tests took $(( $(date +%s) - t0 )) s"
[ $# -gt 0 ] && exit 0
if [ ! -x .venv/bin/python ]; then
  echo "[isaaclab-lane] no project .venv (bash scripts/install.sh): training run skipped"
  exit 0
fi
t0=$(date +%s)
log=$(mktemp -d)
RLINF_ISAACLAB_PYTHON="$VENV/bin/python" bash run_embodiment.sh isaaclab_stack_ppo_gr00t_tiny cluster=cpu \
  env.train.total_num_envs=4 env.eval.total_num_envs=2 env.train.max_episode_steps=32 env.eval.max_episode_steps=32 \
  env.train.image_size=64 env.eval.image_size=64 actor.global_batch_size=16 actor.micro_batch_size=8 \
  runner.max_steps=2 runner.val_check_interval=2 runner.eval_episodes=2 runner.logger.log_path="$log" \
  > "$log.out" 2>&1 || { tail -40 "$log.out"; echo "[isaaclab-lane] training run failed" >&2; exit 1; }
grep -E "^env: |\[train\] step 2/2" "$log.out"
[ -d "$log/checkpoints/global_step_2" ] || { echo "[isaaclab-lane] no checkpoint written" >&2; exit 1; }
echo "[isaaclab-lane] 2 PPO steps on the real task took $(( $(date +%s) - t0 )) s"
