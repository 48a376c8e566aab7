# shellcheck shell=bash
# Sourced by the scripts in this folder: the environment for running the project on a GPU node
# from a copy of the repository (no install of the package itself: the copy goes first on
# PYTHONPATH).
#
# - installs the wheelhouse in $WHEELHOUSE (default: .wheelhouse in the repository root) into
#   $SITE (default /tmp/site) when there is one (install_wheelhouse.sh; quick once installed),
#   then loads $SITE/env.sh when it exists;
# - one thread per process for OpenMP and llvmpipe (the simulator processes share the cores),
#   MuJoCo rendering through EGL, unbuffered Python output;
# - NVLink multicast (NVLS) off in NCCL, PyTorch symmetric memory and NVSHMEM: many container
#   setups lack the fabric-manager support it needs. Set any of these beforehand to override.
_node_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} LP_NUM_THREADS=${LP_NUM_THREADS:-1}
export MUJOCO_GL=${MUJOCO_GL:-egl}
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0} TORCH_SYMM_MEM_DISABLE_MULTICAST=${TORCH_SYMM_MEM_DISABLE_MULTICAST:-1}
export NVSHMEM_DISABLE_NVLS=${NVSHMEM_DISABLE_NVLS:-1}
export PYTHON=${PYTHON:-python3}
SITE=${SITE:-/tmp/site}
WHEELHOUSE=${WHEELHOUSE:-$_node_root/.wheelhouse}
if [ -d "$WHEELHOUSE" ]; then
  bash "$_node_root/benchmarks/offline_node/install_wheelhouse.sh" --wheelhouse "$WHEELHOUSE" --target "$SITE" \
    --python "$PYTHON" > /dev/null || echo "warning: the wheelhouse in $WHEELHOUSE is not installed (see install_wheelhouse.sh)" >&2
fi
if [ -f "$SITE/env.sh" ]; then
  case ":${PYTHONPATH:-}:" in *":$SITE:"*) ;; *) source "$SITE/env.sh" ;; esac
fi
case ":${PYTHONPATH:-}:" in *":$_node_root:"*) ;; *) export PYTHONPATH=$_node_root${PYTHONPATH:+:$PYTHONPATH} ;; esac
# The Isaac Lab simulator's packages (build_wheelhouse.sh --lane isaaclab) go into a folder of
# their own: Newton needs mujoco 3.12, the project's MuJoCo tasks 4.0. The simulator's
# interpreter is a wrapper that puts that folder first; RLINF_ISAACLAB_PYTHON names it.
ISAACLAB_SITE=${ISAACLAB_SITE:-/tmp/isaaclab-site}
ISAACLAB_WHEELHOUSE=${ISAACLAB_WHEELHOUSE:-$_node_root/.wheelhouse-isaaclab}
if [ -d "$ISAACLAB_WHEELHOUSE" ]; then
  bash "$_node_root/benchmarks/offline_node/install_wheelhouse.sh" --wheelhouse "$ISAACLAB_WHEELHOUSE" \
    --target "$ISAACLAB_SITE" --python "$PYTHON" > /dev/null \
    || echo "warning: the Isaac Lab wheelhouse in $ISAACLAB_WHEELHOUSE is not installed (see install_wheelhouse.sh)" >&2
fi
if [ -f "$ISAACLAB_SITE/.wheelhouse-id" ]; then
  printf '#!/bin/sh\n# the Isaac Lab simulator: its own packages first\nPYTHONPATH=%s${PYTHONPATH:+:$PYTHONPATH} exec %s "$@"\n' \
    "$ISAACLAB_SITE" "$(command -v "$PYTHON")" > "$ISAACLAB_SITE/python"
  chmod +x "$ISAACLAB_SITE/python"
  export RLINF_ISAACLAB_PYTHON=${RLINF_ISAACLAB_PYTHON:-$ISAACLAB_SITE/python}
fi
unset _node_root

# SIM_ARGS: the episode limit (MAX_EPISODE_STEPS) and, for an Isaac Lab task ($1), the simulator
# options (SIM_DEVICE, ISAACLAB_STACK, ISAACLAB_PYTHON else RLINF_ISAACLAB_PYTHON) of the
# project's env CLIs (rlinf_isaac.demos.expert, rlinf_isaac.sft.evaluate)
sim_args() {
  local py=${ISAACLAB_PYTHON:-${RLINF_ISAACLAB_PYTHON:-}}
  SIM_ARGS=(${MAX_EPISODE_STEPS:+--max-episode-steps "$MAX_EPISODE_STEPS"})
  case $1 in Isaac*) SIM_ARGS+=(--sim-device "${SIM_DEVICE:-cuda:0}" --isaaclab-stack "${ISAACLAB_STACK:-auto}"
                                ${py:+--isaaclab-python "$py"}) ;; esac
}
