#!/usr/bin/env bash
# Run the GPU benchmarks and GPU tests on a machine with no package index (the lent GPU box).
#
#   bash benchmarks/gpu_session.sh single   # 1 GPU: GPU tests, env (EGL), policy, pipeline S=1 vs S=2
#   bash benchmarks/gpu_session.sh multi    # 2-4 GPUs: pipeline under shared / hybrid / separated layouts
#
# Expects wheels the machine lacks in .whl/ (and .whlray/ for Ray), GL loader .debs in .gl/
# (see benchmarks/README.md for how they are fetched), and writes logs + JSON under $OUT.
set -uo pipefail
PHASE=${1:-single}
OUT=${OUT:-/tmp/bench_out}
mkdir -p "$OUT"
source "$(dirname "${BASH_SOURCE[0]}")/gpu_setup.sh"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpus.txt"
python3 -c "import torch, transformers, mujoco; print('torch', torch.__version__, 'transformers', transformers.__version__, 'mujoco', mujoco.__version__)" | tee "$OUT/versions.txt"
NCPU=$(python3 -c "import os; print(len(os.sched_getaffinity(0)))")  # not nproc: it honours OMP_NUM_THREADS=1

run() {  # run NAME TIMEOUT CMD...: log to $OUT/NAME.log, keep going on failure
  local name=$1 t=$2; shift 2
  echo "=== $name ($(date +%T)) ==="
  timeout "$t" "$@" > "$OUT/$name.log" 2>&1
  echo "[$name] exit $?"; tail -n 12 "$OUT/$name.log"
}

# The full-size policy with random weights: its Qwen3 tokenizer is not shipped, so a benchmark
# tokenizer (tiny BPE, special tokens at the full model's ids) stands in; token values do not
# change the compute.
FULL=(actor.model.config_name=gr00t_n1_5 actor.model.allow_random_init=true actor.model.precision=bf16
  actor.model.checkpoint_path=null actor.model.tokenizer_path=/tmp/tok_gr00t_n1_5 env.train.total_num_envs=32
  env.train.max_episode_steps=64 actor.global_batch_size=64 actor.micro_batch_size=16 algorithm.update_epochs=1)
full_tokenizer() { python3 benchmarks/policy_throughput.py --config gr00t_n1_5 --save-tokenizer /tmp/tok_gr00t_n1_5; }

pipe() {  # NAME TIMEOUT ARGS... [-- OVERRIDES...]: benchmarks/pipeline.py, its JSON in $OUT/NAME.json
  local name=$1 t=$2; shift 2
  run "$name" "$t" python3 benchmarks/pipeline.py --json "$OUT/$name.json" "$@"
}
# CMD... from a baseline tree's code, measured in the same call (BASE_TREE: an older commit's
# rlinf_isaac/ benchmarks/ config/, e.g. `git archive e3a2e5f rlinf_isaac benchmarks config | tar -x -C .carry/base`)
in_base() { (cd "${BASE_TREE:-.carry/base}" && export PYTHONPATH="$PWD:${PYTHONPATH:-}" && "$@"); }
STACK3=(--config mujoco_stack3_ppo_gr00t_tiny)
STACK2=(--config mujoco_stack2_ppo_gr00t_tiny)

if [ "$PHASE" = single ]; then
  RUNS=${RUNS:-"gpu_tests env_egl policy pipeline_tiny"}
  for r in $RUNS; do case $r in
  gpu_tests) run gpu_tests 150 python3 -m pytest -q -m gpu tests -p no:cacheprovider ;;
  env_egl) run env_egl 150 python3 benchmarks/env_throughput.py --num-envs 32 --workers "$NCPU" --chunks 6 ;;
  policy) run policy 330 python3 benchmarks/policy_throughput.py --config gr00t_n1_5 --device cuda --dtype bf16 \
    --batch-sizes 32 64 128 --compile --time-budget-s 300 --json "$OUT/policy.json" ;;
  pipeline_tiny) pipe pipeline_tiny 200 "${STACK3[@]}" --stages 1 2 --steps 3 --sim-procs 8 -- cluster=1gpu \
    actor.model.checkpoint_path=null env.train.total_num_envs=64 actor.global_batch_size=256 \
    actor.micro_batch_size=64 algorithm.update_epochs=1 ;;
  # Stored inputs on the rollout workers + CUDA IPC (session 8), with IPC off, and the same
  # benchmark from a baseline tree (in_base)
  full_ipc) full_tokenizer
    pipe full_ipc 420 "${STACK3[@]}" --stages 2 --steps 3 --sim-procs 8 --cuda-ipc on off -- cluster=1gpu "${FULL[@]}" ;;
  full_base) full_tokenizer
    in_base pipe full_base 240 "${STACK3[@]}" --stages 2 --steps 3 --sim-procs 8 -- cluster=1gpu "${FULL[@]}" ;;
  tiny_ipc) pipe tiny_ipc 300 "${STACK2[@]}" --stages 2 --steps 3 --sim-procs 12 --cuda-ipc on off -- cluster=1gpu ;;
  tiny_base) ck=$PWD/checkpoints/gr00t_tiny_sft_stack2
    in_base pipe tiny_base 150 "${STACK2[@]}" --stages 2 --steps 3 --sim-procs 12 -- cluster=1gpu \
      "actor.model.checkpoint_path=$ck" ;;
  # S = 1 vs 2 with simulation and inference of comparable length (few simulator processes)
  full_stages) full_tokenizer
    pipe full_stages 480 "${STACK3[@]}" --stages 1 2 --steps 3 --sim-procs "${SIM_PROCS:-2}" -- cluster=1gpu "${FULL[@]}" ;;
  # the same with the rollout's policy call replayed from CUDA graphs, for each count of
  # simulator processes in STAGE_PROCS (session 10)
  full_stages_graph) full_tokenizer
    for p in ${STAGE_PROCS:-1 2}; do
      pipe "full_stages_graph_p$p" 480 "${STACK3[@]}" --stages 1 2 --steps 3 --sim-procs "$p" -- cluster=1gpu \
        "${FULL[@]}" actor.model.cuda_graph=true
    done ;;
  full_stages_base) full_tokenizer  # S = 2 of full_stages from the baseline tree
    in_base pipe full_stages_base 300 "${STACK3[@]}" --stages 2 --steps 3 --sim-procs "${SIM_PROCS:-2}" -- cluster=1gpu \
      "${FULL[@]}" ;;
  pipeline_full) full_tokenizer
    pipe pipeline_full 300 "${STACK3[@]}" --stages 1 2 --steps 2 --sim-procs 8 -- cluster=1gpu "${FULL[@]}" ;;
  esac; done
else
  for layout in ${LAYOUTS-2gpu_shared 2gpu_hybrid 2gpu_separated 4gpu_shared 4gpu_hybrid 4gpu_separated}; do
    pipe "pipeline_$layout" 150 "${STACK3[@]}" --stages 2 --steps 3 --sim-procs 8 -- "cluster=$layout" \
      actor.model.checkpoint_path=null env.train.total_num_envs=64 actor.global_batch_size=256 \
      actor.micro_batch_size=32 algorithm.update_epochs=1
  done
  [ -n "${FULL_LAYOUTS:-}${FULL_BASE_LAYOUTS:-}" ] && full_tokenizer
  full_layout() {  # NAME LAYOUT: the full-size policy (random init, bf16); LAYOUT+fsdp trains with FSDP
    local backend=ddp; case $2 in *+fsdp) backend=fsdp ;; esac
    pipe "$1" 240 "${STACK3[@]}" --stages 2 --steps "${FULL_STEPS:-2}" --sim-procs 8 -- \
      "cluster=${2%+fsdp}" "actor.training_backend=$backend" "${FULL[@]}"
  }
  for layout in ${FULL_LAYOUTS:-}; do full_layout "pipeline_full_${layout/+/_}" "$layout"; done
  for layout in ${FULL_BASE_LAYOUTS:-}; do in_base full_layout "pipeline_full_base_${layout/+/_}" "$layout"; done
fi
echo "=== done $(date +%T) ==="
