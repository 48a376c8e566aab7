#!/usr/bin/env bash
# Opt-in Python 3.12 lane: real isaaclab==3.0.0 (PyPI, no Isaac Sim) checks of our Isaac Lab
# backend. Not part of the default CI (see docs/isaaclab.md for its cost).
#
#   bash scripts/isaaclab_lane.sh              # install (cached) + run tests/isaaclab_lane
#   bash scripts/isaaclab_lane.sh --install    # only create / refresh the cached venv
#   bash scripts/isaaclab_lane.sh -k spec      # extra args go to pytest
#   bash scripts/isaaclab_lane.sh -k "not kitless"   # skip the real kit-less env (about 1-4 min)
#
# tests/isaaclab_lane/test_kitless_env.py runs a real kit-less ManagerBasedRLEnv (Newton physics,
# Newton Warp cameras, CPU) through our adapter. The first run on a machine compiles Warp kernels
# (about 3 min here, cached in ~/.cache/warp); later runs start each env in about 20 s.
#
# Env: ISAACLAB_LANE_VENV (default ~/.cache/rlinf_isaac/isaaclab-py312),
#      ISAACLAB_LANE_PYTHON (default: pyenv 3.12, else python3.12), ISAACLAB_VERSION (3.0.0).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${ISAACLAB_LANE_VENV:-$HOME/.cache/rlinf_isaac/isaaclab-py312}
VERSION=${ISAACLAB_VERSION:-3.0.0}
PY=${ISAACLAB_LANE_PYTHON:-}
if [ -z "$PY" ]; then
  if command -v pyenv >/dev/null && [ -x "$(pyenv root)/versions/3.12.1/bin/python" ]; then
    PY="$(pyenv root)/versions/3.12.1/bin/python"
  elif [ -x /root/.pyenv/versions/3.12.1/bin/python ]; then
    PY=/root/.pyenv/versions/3.12.1/bin/python
  else
    PY=$(command -v python3.12 || true)
  fi
fi
[ -n "$PY" ] || { echo "[isaaclab-lane] needs Python 3.12 (set ISAACLAB_LANE_PYTHON)" >&2; exit 2; }

start=$(date +%s)
stamp="$VENV/.rlinf_isaac_lane_$VERSION"
if [ ! -f "$stamp" ]; then
  echo "[isaaclab-lane] creating $VENV with $($PY --version) and isaaclab==$VERSION (several GB)"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install "isaaclab==$VERSION" pytest==9.2.0 pytest-timeout==2.4.0
  touch "$stamp"
fi
# Our package without its training dependencies (the adapter needs torch + gymnasium only).
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e . >/dev/null
echo "[isaaclab-lane] venv ready in $(( $(date +%s) - start )) s ($(du -sh "$VENV" | cut -f1))"
[ "${1:-}" = "--install" ] && exit 0

t0=$(date +%s)
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$VENV/bin/python" -m pytest tests/isaaclab_lane -m isaaclab \
  -p no:cacheprovider -q "$@"
echo "[isaaclab-lane] tests took $(( $(date +%s) - t0 )) s"
