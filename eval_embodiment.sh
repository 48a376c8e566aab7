#!/usr/bin/env bash
# Evaluate:  bash eval_embodiment.sh [CONFIG] [key=value ...]
#   Same arguments as run_embodiment.sh (CONFIG from config/, --list, Hydra overrides; logs to
#   logs/CONFIG/TIMESTAMP unless runner.logger.log_path=... is given). Runs
#   runner.eval_episodes episodes of the deterministic policy on fresh seeds, e.g.
#   bash eval_embodiment.sh mujoco_stack2_ppo_gr00t_tiny runner.resume_dir=logs/<run>/checkpoints
# Ends with a JSON line {"success_rate", "ci95", "episodes", "video_dir"}.
RLINF_MODULE=rlinf_isaac.runners.eval RLINF_SCRIPT=$(basename "$0") \
  exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/run_embodiment.sh" "$@"
