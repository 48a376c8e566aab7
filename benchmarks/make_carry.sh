#!/usr/bin/env bash
# Build what the lent GPU box needs and cannot fetch (no package index there): Python 3.12
# wheels in .whl/ and a trimmed Ray in .whlray2/ (installed by benchmarks/gpu_setup.sh), and the
# GL loader .debs in .gl/ (EGL rendering). Run once on the dev machine, from the repo root; the
# three folders are git-ignored and go to the box as `carry: [".whl", ".whlray2", ".gl"]`
# (under the 64 MiB limit, with room for two tiny-policy checkpoints). Versions: pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
plat=(--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
      --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
      --platform manylinux1_x86_64)
get() { "$PY" -m pip download -q --no-deps "${plat[@]}" -d "$@"; }
rm -rf .whl .whlray2 .gl && mkdir -p .whl .whlray2 .gl
# what the box's image lacks (KINDS.md lists what it has)
get .whl mujoco==4.0.0 mujoco-core==4.0.0 PyOpenGL==3.1.10 glfw==2.11.0 diffusers==0.42.1 \
  importlib_metadata==10.2.0 hydra-core==1.3.8 omegaconf==2.3.1
# omegaconf's parser runtime is published as source only: build its (pure-Python) wheel here
"$PY" -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3
get .whlray2 ray==2.60.0 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 \
  rpds-py==2026.9.1
# Ray without the libraries the pipeline never imports (Java jars, RLlib, Data, Serve, Tune,
# Train, LLM, AIR, the dashboard's web client, the runtime-env agent's vendored aiohttp)
drop=()
for p in jars rllib data serve tune train llm air dashboard/client/build \
         _private/runtime_env/agent/thirdparty_files; do drop+=(--drop "ray/$p/"); done
"$PY" benchmarks/repack_wheel.py .whlray2/ray-*.whl "${drop[@]}"
"$PY" benchmarks/repack_wheel.py .whl/mujoco_core-*.whl
# the GL loader packages (Debian, amd64), unpacked on the box by gpu_setup.sh
o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
mkdir -p /tmp/amd64/partial && apt-get "${o[@]}" update -qq
(cd .gl && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
du -shc .whl .whlray2 .gl
