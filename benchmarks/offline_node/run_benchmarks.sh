#!/usr/bin/env bash
# Run the benchmark set on a node (a GPU node, or a CPU machine for the smoke set), each result
# as JSON in the output folder, optionally each next to the same benchmark from a baseline tree.
#
#   bash benchmarks/offline_node/run_benchmarks.sh [--set smoke|full|isaaclab|levers] [--out DIR] [--baseline-tree DIR]
#        [--only NAME,...] [--device auto|cuda|cpu] [--list]
#
#   --set smoke   small sizes of every benchmark (minutes; CPU or GPU): checks that all run
#   --set full    the sizes docs/PERFORMANCE.md reports (GPU; about 30 minutes on one GPU, more
#                 with several: the pipeline then also runs under the multi-GPU layouts that fit)
#   --set isaaclab  Isaac Lab's stack task kit-less on Newton (GPU; the simulator's packages from
#                 build_wheelhouse.sh --lane isaaclab, RLINF_ISAACLAB_PYTHON): its GPU tests, the
#                 env alone at 1024 and 4096 envs, the whole pipeline at 2048 envs and the MuJoCo
#                 pipeline beside it, and the scripted expert over 100 episodes (~10 minutes)
#   --set levers  the full-size policy's PPO pipeline on one GPU (S = 2, 3 steps each, samples/s
#                 against the FLOP-bound limit at PEAK_TFLOPS, default 790): as shipped (32 envs)
#                 and with each lever: 64 envs per GPU, the compiled backbone (and action head),
#                 the backbone in FP8, the update beside the next rollout, all but FP8 together
#                 (with 64-sample micro-batches, fused AdamW), without and with the overlap, at
#                 128 envs without and with it, with the backbone in FP8 and with only the
#                 backbone compiled; the shipped full-size settings (config/isaaclab_ppo_gr00t.yaml's
#                 batch and micro-batches, 16-action chunks, no CUDA graphs) at 64 envs, as they are
#                 and with 64-sample micro-batches, fused AdamW and the compiled backbone (without
#                 and with the update beside the next rollout); the FP8 backbone's speed and
#                 effect on the actions against bf16 on the same inputs; the policy's speed with
#                 each SDPA attention kernel preferred and with FlashAttention 4 where installed
#                 (pip install .[fa4]) (~30 minutes; start it with detached.sh)
#   --out DIR     where NAME.json and NAME.log go (default $OUT, else /tmp/bench_out), plus
#                 node.txt (GPUs, versions) and summary.jsonl (one line per run: name, tree,
#                 exit code, seconds, JSON file)
#   --baseline-tree DIR   an older checkout of the repository (at least rlinf_isaac/, benchmarks/
#                 and config/), e.g. `git archive OLD rlinf_isaac benchmarks config | tar -x -C DIR`:
#                 every benchmark runs from it right after the current tree, as NAME.base.json,
#                 so each number has its baseline measured on the same node in the same run
#   --only        a subset, by name (--list prints the names and commands of a set)
#   --device      what the smoke set runs on (auto: cuda when torch sees a GPU)
#
# A benchmark that fails or passes its time limit is logged and the set goes on. For a set
# longer than one command may last, start it with detached.sh:
#   bash benchmarks/offline_node/detached.sh start benchmarks/offline_node/run_benchmarks.sh --set full
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SET=smoke OUTDIR=${OUT:-/tmp/bench_out} BASE="" ONLY="" DEVICE=auto LIST=0
while [ $# -gt 0 ]; do
  case $1 in
    --set) SET=$2; shift ;;
    --out) OUTDIR=$2; shift ;;
    --baseline-tree) BASE=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --device) DEVICE=$2; shift ;;
    --list) LIST=1 ;;
    -h|--help) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (--help lists them)" >&2; exit 2 ;;
  esac
  shift
done
case $SET in smoke|full|isaaclab|levers) ;; *) echo "--set is smoke, full, isaaclab or levers, not $SET" >&2; exit 2 ;; esac
if [ -n "$BASE" ]; then
  BASE=$(cd "$BASE" 2>/dev/null && pwd) || { echo "no baseline tree at $BASE" >&2; exit 2; }
fi

if [ "$LIST" = 1 ]; then  # no environment needed: placeholders for what the node decides
  PY=python3 NCPU='$NCPU' NGPU=${NGPU:-1} DEV=${DEVICE/auto/cuda}
else
  source "$HERE/node_env.sh"
  PY=$PYTHON
  mkdir -p "$OUTDIR" && OUTDIR=$(cd "$OUTDIR" && pwd)
  NCPU=$("$PY" -c "import os; print(len(os.sched_getaffinity(0)))")  # not nproc: it honours OMP_NUM_THREADS
  NGPU=${NGPU:-$("$PY" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)}
  DEV=$DEVICE
  [ "$DEV" = auto ] && { [ "$NGPU" -gt 0 ] && DEV=cuda || DEV=cpu; }
  { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    "$PY" - <<'EOF'
import platform
from importlib import metadata
have = []
for name in ("torch", "transformers", "diffusers", "mujoco", "ray", "numpy"):
    try:
        have.append(f"{name} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        have.append(f"{name} missing")
print("python", platform.python_version() + ",", ", ".join(have))
EOF
    echo "cpus $NCPU, gpus $NGPU, set $SET, device $DEV, tree $ROOT${BASE:+, baseline $BASE}"
  } | tee "$OUTDIR/node.txt"
fi
SIM=$([ "$LIST" = 1 ] && echo '$SIM' || echo $(( NCPU < 8 ? NCPU : 8 )))  # simulator processes
CLUSTER=cpu; [ "$DEV" = cuda ] && CLUSTER=1gpu
CKPT=$ROOT/checkpoints/gr00t_tiny_sft_stack2  # both trees measure the same checkpoint
TOK=${TMPDIR:-/tmp}/bench_tokenizer_gr00t_n1_5

# The full-size policy with random weights; its own tokenizer is not shipped, so a benchmark
# tokenizer (the tiny BPE with the special tokens at the full model's ids) stands in: token
# values do not change the compute.
FULL=(actor.model.config_name=gr00t_n1_5 actor.model.allow_random_init=true actor.model.precision=bf16
  actor.model.checkpoint_path=null "actor.model.tokenizer_path=$TOK" env.train.total_num_envs=32
  env.train.max_episode_steps=64 actor.global_batch_size=64 actor.micro_batch_size=16 algorithm.update_epochs=1)
TINY=(actor.model.checkpoint_path=null env.train.total_num_envs=64 actor.global_batch_size=256
  algorithm.update_epochs=1)

wanted() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

run_in() {  # TREE SUFFIX NAME TIMEOUT SCRIPT ARGS...: one benchmark from one tree
  local tree=$1 suffix=$2 name=$3 t=$4 script=$5; shift 5
  local log=$OUTDIR/$name$suffix.log json=$OUTDIR/$name$suffix.json args=("$@") t0 rc label=baseline
  [ "$tree" = "$ROOT" ] && label=current
  if [ ! -f "$tree/benchmarks/$script" ]; then
    echo "[$name$suffix] $script is not in the $label tree: skipped"
    echo "{\"name\": \"$name\", \"tree\": \"$label\", \"rc\": null, \"skipped\": true}" >> "$OUTDIR/summary.jsonl"
    return
  fi
  # --json FILE where the script has it (an older tree's may not), before any `--`
  grep -q '"--json"' "$tree/benchmarks/$script" && args=(--json "$json" "${args[@]}")
  echo "=== $name$suffix ($label tree, $(date +%T)) ==="
  t0=$(date +%s)
  (cd "$tree" && PYTHONPATH=$tree:$PYTHONPATH timeout "$t" "$PY" "benchmarks/$script" "${args[@]}") > "$log" 2>&1
  rc=$?
  # a script without --json prints its JSON as the last line of its output
  [ -f "$json" ] || "$PY" - "$log" "$json" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1], errors="replace").read().splitlines() if l.startswith("{")]
if lines:
    try:
        json.dump(json.loads(lines[-1]), open(sys.argv[2], "w"), indent=1)
    except ValueError:
        pass
EOF
  local j=null; [ -f "$json" ] && j="\"$(basename "$json")\""
  echo "{\"name\": \"$name\", \"tree\": \"$label\", \"rc\": $rc, \"seconds\": $(( $(date +%s) - t0 )), \"json\": $j}" \
    >> "$OUTDIR/summary.jsonl"
  echo "[$name$suffix] exit $rc in $(( $(date +%s) - t0 )) s$([ "$rc" = 124 ] && echo ' (time limit)')"
  tail -n 8 "$log"
}

bench() {  # NAME TIMEOUT SCRIPT ARGS...: from the current tree, then from the baseline tree
  local name=$1; wanted "$name" || return 0
  if [ "$LIST" = 1 ]; then shift 2; echo "$name: $PY benchmarks/$*"; return; fi
  run_in "$ROOT" "" "$@"
  [ -n "$BASE" ] && run_in "$BASE" .base "$@"
}

tokenizer() {  # the full-size policy's benchmark tokenizer, once
  [ "$LIST" = 1 ] || [ -f "$TOK/tokenizer_config.json" ] || \
    (cd "$ROOT" && "$PY" benchmarks/policy_throughput.py --config gr00t_n1_5 --save-tokenizer "$TOK" > /dev/null)
}

gpu_tests() {  # PYTEST_ARGS...: the GPU tests among them
  wanted gpu_tests && "$PY" -c "import pytest" 2>/dev/null || return 0
  if [ "$LIST" = 1 ]; then echo "gpu_tests: $PY -m pytest -q -m gpu $*"; return; fi
  echo "=== gpu_tests ($(date +%T)) ==="
  (cd "$ROOT" && timeout 300 "$PY" -m pytest -q -m gpu "$@" -p no:cacheprovider) > "$OUTDIR/gpu_tests.log" 2>&1
  echo "[gpu_tests] exit $?"; tail -n 5 "$OUTDIR/gpu_tests.log"
}

if [ "$SET" = isaaclab ]; then
  ISAAC_TASK=IsaacContrib-Stack-Cube-Franka-IK-Rel-Visuomotor
  SIMPY=${RLINF_ISAACLAB_PYTHON:-$PY}
  gpu_tests tests/envs/isaaclab tests/cluster/test_cuda_ipc.py
  bench isaaclab_env 600 isaaclab_throughput.py --num-envs 1024 4096 --image-size 84 --transport cuda_ipc \
    --reset-seeding per_env batched --python "$SIMPY"
  bench isaaclab_env_200px 240 isaaclab_throughput.py --num-envs 1024 --image-size 200 --transport cuda_ipc pipe \
    --python "$SIMPY"
  bench isaaclab_pipeline 420 pipeline.py --config isaaclab_stack_ppo_gr00t_tiny --stages 2 --steps 3 -- \
    cluster=1gpu actor.model.checkpoint_path=null env.train.total_num_envs=2048 env.train.max_episode_steps=64 \
    actor.global_batch_size=8192 actor.micro_batch_size=2048 "env.train.isaaclab.python=$SIMPY"
  bench pipeline_tiny 300 pipeline.py --config mujoco_stack3_ppo_gr00t_tiny --stages 2 --steps 3 --sim-procs "$SIM" \
    -- cluster=1gpu "${TINY[@]}" actor.micro_batch_size=64
  if wanted isaaclab_expert; then
    if [ "$LIST" = 1 ]; then echo "isaaclab_expert: $PY -m rlinf_isaac.demos.expert --task $ISAAC_TASK --episodes 100 ..."
    else
      echo "=== isaaclab_expert ($(date +%T)) ==="
      (cd "$ROOT" && timeout 420 "$PY" -m rlinf_isaac.demos.expert --task "$ISAAC_TASK" --episodes 100 --num-envs 100 \
        --seed 1 --sim-device cuda:0 --isaaclab-stack newton --isaaclab-python "$SIMPY" --max-episode-steps 320) \
        > "$OUTDIR/isaaclab_expert.log" 2>&1
      echo "[isaaclab_expert] exit $?"; tail -n 5 "$OUTDIR/isaaclab_expert.log"
    fi
  fi
elif [ "$SET" = levers ]; then
  # every pipeline_full_* benchmark and attention_backends read the tokenizer
  if [ -z "$ONLY" ] || [[ ",$ONLY," == *",pipeline_full_"* ]] || wanted attention_backends; then tokenizer; fi
  LEV=(pipeline.py --config mujoco_stack3_ppo_gr00t_tiny --stages 2 --steps 3 --sim-procs "$SIM"
       --peak-tflops "${PEAK_TFLOPS:-790}")
  bench pipeline_full_s2 300 "${LEV[@]}" -- cluster=1gpu "${FULL[@]}"
  bench pipeline_full_64envs 300 "${LEV[@]}" -- cluster=1gpu "${FULL[@]}" env.train.total_num_envs=64
  bench pipeline_full_compile 420 "${LEV[@]}" -- cluster=1gpu "${FULL[@]}" actor.model.cuda_graph=false \
    actor.model.compile_backbone=true
  bench pipeline_full_compile_all 480 "${LEV[@]}" -- cluster=1gpu "${FULL[@]}" actor.model.cuda_graph=false \
    actor.model.compile_backbone=true actor.model.compile_action_head=true
  bench pipeline_full_fp8 420 "${LEV[@]}" -- cluster=1gpu "${FULL[@]}" actor.model.backbone_fp8=true
  bench pipeline_full_overlap 420 "${LEV[@]}" --overlap off on -- cluster=1gpu "${FULL[@]}"
  # the levers together: 64 envs, whole minibatches per micro-batch, fused AdamW, both compiled;
  # then the same with the update beside the next rollout
  CORE=(env.train.total_num_envs=64 actor.global_batch_size=128 actor.micro_batch_size=64 actor.optim.fused=true
        actor.model.compile_backbone=true)
  NO_HEAD=("${CORE[@]}" actor.model.cuda_graph=false)
  ALL=("${NO_HEAD[@]}" actor.model.compile_action_head=true)
  bench pipeline_full_levers 480 "${LEV[@]}" -- cluster=1gpu "${FULL[@]}" "${ALL[@]}"
  bench pipeline_full_levers_overlap 480 "${LEV[@]}" --overlap on -- cluster=1gpu "${FULL[@]}" "${ALL[@]}"
  bench pipeline_full_levers_128envs 480 "${LEV[@]}" -- cluster=1gpu "${FULL[@]}" "${ALL[@]}" \
    env.train.total_num_envs=128 actor.global_batch_size=256
  # ... with only the backbone compiled: the update's action head runs eagerly, so it needs no recompute
  # of the old log-probs (see actor.model.compile_action_head)
  bench pipeline_full_levers_backbone_128envs 480 "${LEV[@]}" -- cluster=1gpu "${FULL[@]}" "${NO_HEAD[@]}" \
    env.train.total_num_envs=128 actor.global_batch_size=256
  # ... and replayed from CUDA graphs (the compiled backbone captured with the rest of each call)
  bench pipeline_full_levers_graphs_128envs 480 "${LEV[@]}" -- cluster=1gpu "${FULL[@]}" "${CORE[@]}" \
    actor.model.cuda_graph=true env.train.total_num_envs=128 actor.global_batch_size=256
  bench pipeline_full_levers_overlap_128envs 480 "${LEV[@]}" --overlap on -- cluster=1gpu "${FULL[@]}" "${ALL[@]}" \
    env.train.total_num_envs=128 actor.global_batch_size=256
  # ... and with the frozen backbone in FP8 (opt-in: it moves the actions, see fp8_backbone)
  bench pipeline_full_levers_fp8_128envs 480 "${LEV[@]}" -- cluster=1gpu "${FULL[@]}" "${ALL[@]}" \
    env.train.total_num_envs=128 actor.global_batch_size=256 actor.model.backbone_fp8=true
  # the shipped full-size settings at 64 envs per GPU: isaaclab_ppo_gr00t's batch of 256 in 16-sample
  # micro-batches, gr00t_n1_5.yaml's 16-action chunks and policy calls replayed from CUDA graphs
  SHIPPED_RUN=(env.train.total_num_envs=64 actor.global_batch_size=256 actor.model.num_action_chunks=16)
  bench pipeline_full_shipped_64envs 300 "${LEV[@]}" -- cluster=1gpu "${FULL[@]}" "${SHIPPED_RUN[@]}" \
    actor.model.cuda_graph=true actor.micro_batch_size=16
  # ... with the levers that keep the PPO ratio exact without a recompute (64-sample micro-batches, fused
  # AdamW, the compiled backbone), first with eager policy calls, then replayed from CUDA graphs (the
  # compiled backbone captured with the rest of each call)
  SHIPPED_LEVERS=("${SHIPPED_RUN[@]}" actor.micro_batch_size=64 actor.optim.fused=true actor.model.compile_backbone=true)
  bench pipeline_full_shipped_levers_64envs 360 "${LEV[@]}" -- cluster=1gpu "${FULL[@]}" "${SHIPPED_LEVERS[@]}" \
    actor.model.cuda_graph=false
  SHIPPED_GRAPHS=("${SHIPPED_LEVERS[@]}" actor.model.cuda_graph=true)
  bench pipeline_full_shipped_graphs_64envs 360 "${LEV[@]}" -- cluster=1gpu "${FULL[@]}" "${SHIPPED_GRAPHS[@]}"
  # ... then with 12 simulator processes (6 per stage: a stage's 16-step chunk simulates in about one policy
  # call), then also with the update beside the next rollout
  bench pipeline_full_shipped_graphs_12procs_64envs 360 "${LEV[@]}" --sim-procs 12 -- cluster=1gpu "${FULL[@]}" \
    "${SHIPPED_GRAPHS[@]}"
  bench pipeline_full_shipped_graphs_12procs_overlap_64envs 420 "${LEV[@]}" --sim-procs 12 --overlap on -- \
    cluster=1gpu "${FULL[@]}" "${SHIPPED_GRAPHS[@]}"
  bench fp8_backbone 420 fp8_backbone.py --config gr00t_n1_5 --device cuda --dtype bf16 --batch-sizes 16 64 --compile
  bench attention_backends 300 attention_backends.py --config gr00t_n1_5 --device cuda --dtype bf16 --batch-sizes 32 64
elif [ "$SET" = smoke ]; then
  bench env 150 env_throughput.py --num-envs 4 --workers 2 --chunks 2
  bench policy 300 policy_throughput.py --config gr00t_tiny --device "$DEV" --dtype fp32 --batch-sizes 8 \
    --steps 2 --warmup 1 --time-budget-s 120
  bench predict 240 predict_latency.py --checkpoint "$CKPT" --device "$DEV" --batch 8 --calls 5 --warmup 2
  bench weight_sync 240 weight_sync.py --device "$DEV" --scale 0.05 --repeats 2
  bench ray_transfer 240 ray_transfer.py --envs 4 --steps 2 --repeats 2
  bench pipeline 480 pipeline.py --config mujoco_stack2_ppo_gr00t_tiny --stages 1 2 --steps 2 --sim-procs 2 -- \
    "cluster=$CLUSTER" actor.model.checkpoint_path=null env.train.total_num_envs=8 env.train.max_episode_steps=32 \
    actor.global_batch_size=64 actor.micro_batch_size=32 algorithm.update_epochs=1
else
  gpu_tests tests
  bench env 150 env_throughput.py --num-envs 32 --workers "$NCPU" --chunks 6
  bench policy 420 policy_throughput.py --config gr00t_n1_5 --device cuda --dtype bf16 --batch-sizes 32 64 128 \
    --compile --time-budget-s 300
  bench predict 240 predict_latency.py --checkpoint "$CKPT" --device cuda --batch 32 64 128 --calls 20
  bench weight_sync 240 weight_sync.py --device cuda --repeats 3
  bench ray_transfer 240 ray_transfer.py --envs 32 --steps 8 --repeats 3
  bench pipeline_tiny 300 pipeline.py --config mujoco_stack3_ppo_gr00t_tiny --stages 1 2 --steps 3 --sim-procs "$SIM" \
    -- cluster=1gpu "${TINY[@]}" actor.micro_batch_size=64
  wanted pipeline_full && tokenizer
  bench pipeline_full 480 pipeline.py --config mujoco_stack3_ppo_gr00t_tiny --stages 1 2 --steps 2 --sim-procs "$SIM" \
    -- cluster=1gpu "${FULL[@]}"
  # the layouts that fit this node's GPUs (config/cluster/): shared, hybrid, separated
  for n in 2 4 8; do
    [ "$NGPU" -ge "$n" ] || continue
    for layout in shared hybrid separated; do
      bench "pipeline_${n}gpu_$layout" 240 pipeline.py --config mujoco_stack3_ppo_gr00t_tiny --stages 2 --steps 3 \
        --sim-procs "$SIM" -- "cluster=${n}gpu_$layout" "${TINY[@]}" actor.micro_batch_size=32
    done
  done
fi
[ "$LIST" = 1 ] || echo "=== done $(date +%T): $OUTDIR ==="
