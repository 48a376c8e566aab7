#!/usr/bin/env bash
# RL runs and an SFT sweep side by side on one GPU box (one device call's worth of both):
# benchmarks/gpu_rl_results.sh (reads RUNS, TRAIN_S, SIM_PROCS, ...; gets this script's
# arguments as overrides for every run) and benchmarks/gpu_sft_sweep.sh (reads VARIANTS,
# keys such as INIT_FROM, LR, SUCCESS_ONLY, EVAL_CHUNK, and SWEEP_EVAL_EPISODES for its
# EVAL_EPISODES; lower CPU priority).
#
#   RUNS="..." VARIANTS="..." bash benchmarks/gpu_background.sh start benchmarks/gpu_both.sh [key=value ...]
set -uo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
EVAL_EPISODES=${SWEEP_EVAL_EPISODES:-100} nice -n "${SWEEP_NICE:-5}" bash "$here/gpu_sft_sweep.sh" > "${WORK:-/tmp}/sweep.out" 2>&1 &
bash "$here/gpu_rl_results.sh" "$@"
wait
tail -n 20 "${WORK:-/tmp}/sweep.out"
