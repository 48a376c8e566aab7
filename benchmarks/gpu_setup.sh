# Sourced by the benchmarks/gpu_*.sh scripts: the lent GPU box has no package index, so this
# unpacks the carried GL loader .debs (.gl/), points EGL at NVIDIA's vendor file, installs the
# carried wheels (.whl/, plus .whlray*/ when present) into /tmp/site and the package itself,
# editable and offline. Does nothing it has nothing for (a machine without .whl/ keeps its env).
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 LP_NUM_THREADS=1 MUJOCO_GL=${MUJOCO_GL:-egl}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
if [ -d .gl ]; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
[ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ] && \
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
if [ -d .whl ] && [ "$(cat /tmp/site/.setup_for 2>/dev/null)" = "$PWD" ]; then
  export PYTHONPATH=/tmp/site  # already installed for this copy (scripts that run side by side source this too)
elif [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl $(ls .whlray*/*.whl 2>/dev/null) 2>&1 | grep -v WARNING | tail -3
  export PYTHONPATH=/tmp/site
  # the package itself (tasks/ installs as rlinf_isaac.tasks)
  python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | grep -v WARNING | tail -3
  echo "$PWD" > /tmp/site/.setup_for
fi
