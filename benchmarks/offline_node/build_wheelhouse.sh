#!/usr/bin/env bash
# Build a wheelhouse for a GPU node without a package index, on a machine that has one.
#
#   bash benchmarks/offline_node/build_wheelhouse.sh --python 3.12 --platform manylinux_2_28_x86_64 \
#       [--out DIR] [--exclude LIST] [--node-packages FILE] [--extras LIST] [--trim-ray] [--drop PREFIXES] \
#       [--repack-over-mib N] [--with-gl] [--split-mib N] [--build-python PY] [--lane isaaclab] [--dry-run]
#
# Reads the project's requirements from pyproject.toml ([project].dependencies plus the named
# --extras), leaves out the packages the node already has (--exclude, default: the list in
# wheelhouse.py, a PyTorch + transformers image; --node-packages FILE: the node's
# `python3 -m pip list --format=freeze`), resolves the full dependency closure of the rest for
# the node's Python and platform (`pip install --dry-run --report`, one version per package),
# keeps what is reachable without passing through an excluded package and downloads those
# wheels (`pip download --no-deps --only-binary=:all:` with every manylinux tag the platform
# accepts: pip matches tags exactly). A dependency published only as source is built here
# with `pip wheel` when it is pure Python. Then, optionally:
#   --trim-ray / --drop P1,P2   leave out members of the wheels under these prefixes (Ray's
#                               unused libraries, e.g. ray/rllib/) and recompress them (LZMA)
#   --repack-over-mib N         recompress every wheel larger than N MiB (LZMA, same contents)
#   --with-gl                   Debian GL loader packages (libEGL through glvnd) for headless
#                               EGL rendering, into DIR/gl/ (needs apt-get; pick a build
#                               machine of the node's Debian/Ubuntu release)
#   --split-mib N               cut the wheelhouse into parts of at most N MiB in DIR-parts/,
#                               one per transfer (install_wheelhouse.sh joins them)
#   --lane isaaclab             instead of the project's requirements, the simulator side of Isaac
#                               Lab 3.0 kit-less on Newton (scripts/isaaclab_lane/: requirements.txt
#                               resolved as above, requirements-nodeps.txt taken without their
#                               dependencies), default DIR .wheelhouse-isaaclab; node_env.sh installs
#                               it into its own folder and points RLINF_ISAACLAB_PYTHON at it
# --dry-run prints what would be resolved and downloaded, and the commands, without network.
#
# Output: DIR (default .wheelhouse in the repository root) with the wheels, gl/*.deb and
# wheelhouse.json (target, requirements, excludes, sha256 of every file).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

PYV=3.12 PLATFORM=manylinux_2_28_x86_64 OUT=$ROOT/.wheelhouse EXCLUDE=default NODE_PKGS="" EXTRAS=""
DROP="" TRIM_RAY=0 REPACK=0 WITH_GL=0 SPLIT=0 DRY=0 BUILD_PY=${PYTHON:-} LANE="" OUT_SET=0
GL_PACKAGES=${GL_PACKAGES:-"libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2"}
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --python) PYV=$2; shift ;;
    --platform) PLATFORM=$2; shift ;;
    --out) OUT=$2; OUT_SET=1; shift ;;
    --lane) LANE=$2; shift ;;
    --exclude) EXCLUDE=$2; shift ;;
    --node-packages) NODE_PKGS=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift ;;
    --extras) EXTRAS=$2; shift ;;
    --drop) DROP=$2; shift ;;
    --trim-ray) TRIM_RAY=1 ;;
    --repack-over-mib) REPACK=$2; shift ;;
    --with-gl) WITH_GL=1 ;;
    --split-mib) SPLIT=$2; shift ;;
    --build-python) BUILD_PY=$2; shift ;;
    --dry-run) DRY=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option $1 (--help lists them)" >&2; exit 2 ;;
  esac
  shift
done
case $LANE in
  "") ;;
  isaaclab) [ "$OUT_SET" = 1 ] || OUT=$ROOT/.wheelhouse-isaaclab ;;
  *) echo "unknown --lane $LANE (isaaclab is the one there is)" >&2; exit 2 ;;
esac
OUT=${OUT%/}
PARTS=$OUT-parts

# the Python that resolves: the node's version if this machine has it (pip evaluates
# environment markers such as python_version < "3.12" for the Python it runs under)
if [ -z "$BUILD_PY" ]; then
  for c in "python$PYV" python3; do
    if "$c" -c "import pip" >/dev/null 2>&1; then BUILD_PY=$c; break; fi
  done
fi
[ -n "$BUILD_PY" ] || { echo "no Python with pip found: pass --build-python" >&2; exit 2; }
helper() { "$BUILD_PY" "$HERE/wheelhouse.py" "$@"; }
node_args=(); [ -n "$NODE_PKGS" ] && node_args=(--node-packages "$NODE_PKGS")
target=(--python "$PYV" --platform "$PLATFORM")
mapfile -t TAGS < <(helper platforms --platform "$PLATFORM")
plat=(--only-binary=:all: --python-version "$PYV" --implementation cp)
for t in "${TAGS[@]}"; do plat+=(--platform "$t"); done
# requirement sources: the project's pyproject.toml, or a lane's files (the no-deps ones apart)
src=() nodeps=""
if [ "$LANE" = isaaclab ]; then
  src=(--from "$ROOT/scripts/isaaclab_lane/requirements.txt")
  nodeps=$(helper requirements "${target[@]}" --from "$ROOT/scripts/isaaclab_lane/requirements-nodeps.txt" \
    --exclude "$EXCLUDE" "${node_args[@]}")
fi
reqs=$(helper requirements "${target[@]}" "${src[@]}" --extras "$EXTRAS" --exclude "$EXCLUDE" "${node_args[@]}")
have_py=$("$BUILD_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

if [ "$DRY" = 1 ]; then
  echo "wheelhouse for Python $PYV on $PLATFORM -> $OUT"
  echo "platform tags: ${TAGS[*]}"
  echo "resolving Python: $BUILD_PY ($have_py)"
  echo "requirements (pyproject.toml${EXTRAS:+ + extras $EXTRAS}), minus the excluded:"
  echo "$reqs" | sed 's/^/  /'
  [ -n "$nodeps" ] && { echo "taken without their dependencies:"; echo "$nodeps" | sed 's/^/  /'; }
  helper requirements "${target[@]}" "${src[@]}" --extras "$EXTRAS" --exclude "$EXCLUDE" "${node_args[@]}" --show-excluded \
    | { grep '^# excluded' || true; } | sed 's/^# /  /'
  p="--only-binary=:all: --python-version $PYV --implementation cp --platform TAG (each tag above)"
  echo "would run: $BUILD_PY -m pip install --dry-run --ignore-installed --report REPORT $p <requirements>"
  echo "           (their closure, less what only excluded packages need), then"
  echo "           $BUILD_PY -m pip download --no-deps $p -d $OUT <closure>"
  [ "$TRIM_RAY$DROP" != 0 ] && echo "would trim: ${DROP:+$DROP }$([ "$TRIM_RAY" = 1 ] && echo "Ray's unused libraries")"
  [ "$WITH_GL" = 1 ] && echo "would download into $OUT/gl: $GL_PACKAGES"
  [ "$SPLIT" != 0 ] && echo "would split into parts of at most $SPLIT MiB in $PARTS"
  exit 0
fi

if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ] && [ ! -f "$OUT/wheelhouse.json" ]; then
  echo "$OUT exists and is not a wheelhouse: choose another --out" >&2; exit 2
fi
[ "$have_py" = "$PYV" ] || echo "warning: resolving with Python $have_py for a $PYV node: environment markers" \
  "are evaluated for $have_py (pass --build-python python$PYV if you have it)" >&2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/src"
echo "$reqs" > "$WORK/roots.txt"
[ -s "$WORK/roots.txt" ] || { echo "nothing to build: every requirement is excluded" >&2; exit 1; }

# 1. resolve the closure for the node; a requirement with no wheel for it is built here from
#    source when that gives a pure-Python wheel (e.g. antlr4-python3-runtime, which omegaconf needs)
built=()
for round in $(seq 1 10); do
  if "$BUILD_PY" -m pip install -q --dry-run --ignore-installed --report "$WORK/report.json" --target "$WORK/t" \
      "${plat[@]}" --find-links "$WORK/src" -r "$WORK/roots.txt" 2> "$WORK/resolve.err"; then
    break
  fi
  need=$(sed -n 's/.*No matching distribution found for \([^ ]*\).*/\1/p' "$WORK/resolve.err" | head -1)
  if [ -z "$need" ] || [ "$round" = 10 ]; then grep -v '^WARNING' "$WORK/resolve.err" >&2; exit 1; fi
  echo "no $PLATFORM wheel for $need: building it from source here"
  before=$(ls "$WORK/src")
  "$BUILD_PY" -m pip wheel -q --no-deps -w "$WORK/src" "$need" 2>&1 | grep -v '^WARNING' || true
  new=$(comm -13 <(echo "$before") <(ls "$WORK/src"))
  case $new in
    *-none-any.whl) built+=("$(echo "$new" | sed 's/-.*//')") ;;
    "") echo "could not build $need" >&2; exit 1 ;;
    *) echo "$need builds a platform-specific wheel ($new): build it on a machine like the node" >&2; exit 1 ;;
  esac
done
helper select --report "$WORK/report.json" --roots "$WORK/roots.txt" "${target[@]}" --exclude "$EXCLUDE" \
  "${node_args[@]}" > "$WORK/closure.txt"
echo "closure: $(wc -l < "$WORK/closure.txt") packages: $(tr '\n' ' ' < "$WORK/closure.txt")"

# 2. download (wheels built from source come from the find-links folder)
rm -rf "$OUT" && mkdir -p "$OUT"
"$BUILD_PY" -m pip download -q --no-deps "${plat[@]}" --find-links "$WORK/src" -d "$OUT" -r "$WORK/closure.txt" \
  2>&1 | grep -v '^WARNING' || true
if [ -n "$nodeps" ]; then
  echo "$nodeps" > "$WORK/nodeps.txt"
  "$BUILD_PY" -m pip download -q --no-deps "${plat[@]}" -d "$OUT" -r "$WORK/nodeps.txt" 2>&1 | grep -v '^WARNING' || true
  cat "$WORK/nodeps.txt" >> "$WORK/closure.txt"
fi
n=$(ls "$OUT"/*.whl 2>/dev/null | wc -l)
[ "$n" = "$(wc -l < "$WORK/closure.txt")" ] || { echo "downloaded $n wheels for $(wc -l < "$WORK/closure.txt") packages" >&2; exit 1; }

# 3. optional trimming
if [ "$TRIM_RAY" = 1 ] || [ -n "$DROP" ] || [ "$REPACK" != 0 ]; then
  trim=(--drop "$DROP" --repack-over-mib "$REPACK"); [ "$TRIM_RAY" = 1 ] && trim+=(--trim-ray)
  helper trim "$OUT" "${trim[@]}"
fi

# 4. optional GL loader packages (Debian) for EGL rendering
if [ "$WITH_GL" = 1 ]; then
  case $PLATFORM in *aarch64) arch=arm64 ;; *) arch=amd64 ;; esac
  o=("-oAPT::Architecture=$arch" "-oAPT::Architectures=$arch" "-oDir::State::Lists=$WORK/apt-lists")
  mkdir -p "$WORK/apt-lists/partial" "$OUT/gl"
  apt-get "${o[@]}" update -qq
  (cd "$OUT/gl" && apt-get "${o[@]}" download $GL_PACKAGES >/dev/null)
fi

# 5. manifest (and parts)
echo "$reqs" > "$WORK/requirements.txt"
helper requirements "${target[@]}" "${src[@]}" --extras "$EXTRAS" --exclude none > "$WORK/all_requirements.txt"
[ "$LANE" = isaaclab ] && helper requirements "${target[@]}" --exclude none \
  --from "$ROOT/scripts/isaaclab_lane/requirements-nodeps.txt" >> "$WORK/all_requirements.txt"
helper manifest "$OUT" "${target[@]}" --requirements "$WORK/all_requirements.txt" --extras "$EXTRAS" \
  --exclude "$EXCLUDE" "${node_args[@]}" --built-from-source "$(IFS=,; echo "${built[*]}")"
du -sh "$OUT"
if [ "$SPLIT" != 0 ]; then
  helper split "$OUT" --out "$PARTS" --part-mib "$SPLIT"
  echo "upload the parts (each with $(basename "$PARTS")/*.sha256) into the node's wheelhouse folder and run"
  echo "install_wheelhouse.sh after each transfer: it installs once all parts are there"
fi
