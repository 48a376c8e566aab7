#!/usr/bin/env bash
# Install a wheelhouse on a GPU node without a package index (no network needed).
#
#   bash benchmarks/offline_node/install_wheelhouse.sh [--wheelhouse DIR] [--target DIR] [--python PY] [--force]
#
# DIR (default: .wheelhouse in the repository root) holds either the wheelhouse that
# build_wheelhouse.sh made (wheels, gl/*.deb, wheelhouse.json) or parts of it
# (wheelhouse-<id>.partKKofNN, with wheelhouse-<id>.sha256). Parts may arrive over several
# commands, one or more each time, as long as the node keeps files between them: each run
# keeps the parts it finds in TARGET.parts/ and installs once all of them are there (until
# then it says which are missing and exits with 3).
#
# Installing: every wheel with `pip install --no-index --no-deps --target TARGET` (default
# /tmp/site), then the GL loader .debs if any: with `dpkg -x` into / and `ldconfig` when run as
# root, else into TARGET/gl-root with LD_LIBRARY_PATH. The files are checked against
# wheelhouse.json first. TARGET/env.sh gets the exports (PYTHONPATH: TARGET and the folders its
# .pth files add, which Python would read only in a site folder; PATH, LD_LIBRARY_PATH and the
# NVIDIA EGL vendor file when it lies outside glvnd's search path), which are printed too:
#
#   source /tmp/site/env.sh      # or paste the printed export lines
#
# Idempotent: TARGET/.wheelhouse-id names the installed wheelhouse; running again with the same
# one only prints the exports (--force installs again). A different wheelhouse replaces it.
# Then the project requirements that the node still lacks, or has in other versions than the
# pins, are listed (packages left out of the wheelhouse as already on the node).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WH=$ROOT/.wheelhouse TARGET=/tmp/site PY=${PYTHON:-python3} FORCE=0
while [ $# -gt 0 ]; do
  case $1 in
    --wheelhouse) WH=$2; shift ;;
    --target) TARGET=$2; shift ;;
    --python) PY=$2; shift ;;
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (--help lists them)" >&2; exit 2 ;;
  esac
  shift
done
TARGET=${TARGET%/}
case $TARGET in /*) ;; *) TARGET=$PWD/$TARGET ;; esac
STAMP=$TARGET/.wheelhouse-id
helper() { "$PY" "$HERE/wheelhouse.py" "$@"; }

exports() {  # print the exports and how to load them
  echo "# environment for this wheelhouse (also in $TARGET/env.sh):"
  grep '^export' "$TARGET/env.sh" || true
}
installed=$(cat "$STAMP" 2>/dev/null || true)
if [ ! -d "$WH" ]; then
  if [ -n "$installed" ]; then echo "no wheelhouse at $WH; wheelhouse $installed is installed in $TARGET"; exports; exit 0; fi
  echo "no wheelhouse at $WH (build one with build_wheelhouse.sh and upload it there)" >&2; exit 2
fi

# parts: collect them, install once complete
if ls "$WH"/wheelhouse-*.part* >/dev/null 2>&1; then
  [ "$FORCE" = 1 ] && installed=""
  set +e
  got=$(helper gather "$WH" --spool "$TARGET.parts" --installed-id "$installed")
  rc=$?
  set -e
  case $rc in
    0) WH=$got; echo "all parts are here: joined into $WH" ;;
    10) echo "$got"; exports; exit 0 ;;
    3) echo "$got"; exit 3 ;;
    *) exit "$rc" ;;
  esac
fi

ID=$(helper id --verify "$WH")
if [ "$installed" = "$ID" ] && [ "$FORCE" = 0 ] && [ -f "$TARGET/env.sh" ]; then
  echo "wheelhouse $ID is already installed in $TARGET"
  exports
  exit 0
fi
# a different wheelhouse installed here before (the stamp says this script made the folder):
# start from an empty target
if [ -n "$installed" ]; then
  case $TARGET in /|"$HOME"|/tmp|/usr|/usr/*) echo "refusing to empty $TARGET" >&2; exit 2 ;; esac
  rm -rf "$TARGET"
fi
mkdir -p "$TARGET"
shopt -s nullglob
wheels=("$WH"/*.whl)
debs=("$WH"/gl/*.deb)
if [ ${#wheels[@]} -gt 0 ]; then
  log=$(mktemp)
  if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --disable-pip-version-check --target "$TARGET" "${wheels[@]}" > "$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; echo "pip install failed" >&2; exit 1
  fi
  grep -v -e '^WARNING: Target directory' -e 'already exists' -e "Running pip as the 'root' user" "$log" || true
  rm -f "$log"
fi
echo "installed ${#wheels[@]} wheels into $TARGET"

# the folders the target's .pth files add (Python reads .pth files only in its site folders)
extra=$(helper pth-paths "$TARGET") || { echo "reading the .pth files in $TARGET failed" >&2; exit 1; }
{
  echo "# written by install_wheelhouse.sh (wheelhouse $ID)"
  echo "export PYTHONPATH=$TARGET${extra:+:$extra}\${PYTHONPATH:+:\$PYTHONPATH}"
  [ -d "$TARGET/bin" ] && echo "export PATH=$TARGET/bin:\$PATH"
} > "$TARGET/env.sh.tmp"

if [ ${#debs[@]} -gt 0 ]; then
  if ! command -v dpkg >/dev/null; then
    echo "warning: no dpkg on this node: the GL loader packages in $WH/gl are not installed" >&2
  elif [ "$(id -u)" = 0 ]; then
    for f in "${debs[@]}"; do dpkg -x "$f" /; done
    ldconfig
    echo "unpacked ${#debs[@]} GL loader packages into /"
  else
    for f in "${debs[@]}"; do dpkg -x "$f" "$TARGET/gl-root"; done
    libs=$(find "$TARGET/gl-root" -name 'libEGL.so*' -printf '%h\n' | sort -u | paste -sd:)
    echo "export LD_LIBRARY_PATH=$libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" >> "$TARGET/env.sh.tmp"
    echo "unpacked ${#debs[@]} GL loader packages into $TARGET/gl-root (not root: LD_LIBRARY_PATH)"
  fi
fi
# glvnd looks for vendor files in /etc and /usr/share only; some container runtimes mount the
# NVIDIA driver's elsewhere
if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] && [ ! -f /usr/share/glvnd/egl_vendor.d/10_nvidia.json ] \
    && [ ! -f /etc/glvnd/egl_vendor.d/10_nvidia.json ]; then
  for f in /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json /usr/local/share/glvnd/egl_vendor.d/10_nvidia.json; do
    if [ -f "$f" ]; then echo "export __EGL_VENDOR_LIBRARY_FILENAMES=$f" >> "$TARGET/env.sh.tmp"; break; fi
  done
fi
mv "$TARGET/env.sh.tmp" "$TARGET/env.sh"
echo "$ID" > "$STAMP"
(source "$TARGET/env.sh" && helper check-node "$WH") || true
rm -rf "$TARGET.parts"  # joined and installed: the parts are no longer needed
exports
