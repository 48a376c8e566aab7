#!/usr/bin/env bash
# Run a job longer than one command may last, on a node that keeps files and processes between
# consecutive commands: start it detached, look at it from later commands, then collect its
# results.
#
#   bash benchmarks/offline_node/detached.sh start JOB [ARGS...]  # launch; then watch for WATCH_S
#   bash benchmarks/offline_node/detached.sh status               # running or finished (exit 0 / 1)
#   bash benchmarks/offline_node/detached.sh watch                # progress for up to WATCH_S seconds
#   bash benchmarks/offline_node/detached.sh collect              # wait (up to WATCH_S) for the end,
#                                                                 # copy its results into $OUT
#   COLLECT_PART_MIB=15 bash benchmarks/offline_node/detached.sh collect   # ... as one tar archive in
#       parts of at most 15 MiB (results.tar.part00, ...; join: cat results.tar.part* | tar -x), for a
#       node that returns only a few files
#   bash benchmarks/offline_node/detached.sh stop                 # end the job (its process group)
#
# With OUT set, start and watch also leave in $OUT what the job has made so far, as one tar
# archive in parts (snapshot.tar.part00, ...; SNAPSHOT_PART_MIB, default 15): the job's $OUT and
# log and, for every run under its $WORK, console.log, tensorboard/ and the newest checkpoint
# (checkpoints/latest and the folder it names). A node taken away mid-job then costs only what
# came after the last watch: the checkpoint resumes (runner.resume_dir) or is evaluated elsewhere.
#
# JOB is a script (JOB.sh runs with bash) or a command, e.g.
#   detached.sh start benchmarks/offline_node/run_benchmarks.sh --set full
# It runs in a new process group of its own (setsid), so it outlives the command that started it, from
# a private copy of the repository (DETACHED_DIR/repo, without .git, .venv, logs/ and the
# wheelhouse folders), so files uploaded with a later command cannot change the code under a
# running job. `start` installs the wheelhouse first (node_env.sh) and passes the environment
# on (RUNS, TRAIN_S, ... for the scripts in this folder). The job writes its results to $OUT
# (DETACHED_DIR/out) and may keep runs under $WORK (DETACHED_DIR/work); `collect` copies
# DETACHED_DIR/out and the job's log into this command's $OUT (default ./detached_out).
# Progress: the end of the job's output and the newest line of every $WORK/*/console.log.
#
# WATCH_S (default 540) bounds how long start, watch and collect wait: keep it under the
# node's time limit for one command. DETACHED_DIR defaults to /tmp/detached.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
D=${DETACHED_DIR:-/tmp/detached}
WATCH_S=${WATCH_S:-540}
SNAPSHOT_TO=${OUT:-}  # the caller's $OUT (start gives the job another)
cmd=${1:-}
[ $# -gt 0 ] && shift

running() { [ -f "$D/pid" ] && kill -0 "$(cat "$D/pid")" 2>/dev/null; }

state() {
  if running; then
    echo "job running (pid $(cat "$D/pid"), started $(cat "$D/started" 2>/dev/null), $(( $(date +%s) - $(stat -c %Y "$D/pid") )) s)"
  elif [ -f "$D/rc" ]; then
    echo "job finished with exit code $(cat "$D/rc")"
  elif [ -f "$D/pid" ]; then
    echo "job finished (ended without an exit code: killed?)"
  else
    echo "no job in $D"
  fi
}

progress() {
  echo "--- $(date +%T) $(state) ---"
  tail -n 6 "$D/job.log" 2>/dev/null
  for f in "$D"/work/*/console.log; do
    [ -f "$f" ] && echo "$(basename "$(dirname "$f")"): $(tail -n 1 "$f" | cut -c1-220)"
  done
  return 0
}

watch_for() {  # seconds: progress every 60 s; returns as soon as the job ends
  local end=$(( $(date +%s) + $1 )) last=0
  while [ "$(date +%s)" -lt "$end" ] && running; do
    if [ $(( $(date +%s) - last )) -ge 60 ]; then progress; last=$(date +%s); fi
    sleep 1
  done
  progress
}

pack() {  # DEST NAME MIB ARG...: tar's ARGs (paths relative to $D, or -C DIR first) as one archive in parts DEST/NAME.tar.partNN
  local dest=$1 name=$2 mib=$3; shift 3
  mkdir -p "$dest" && rm -f "$dest/$name.tar.part"*
  tar -C "$D" -cf - "$@" 2>/dev/null | split -b "${mib}M" -d -a 2 - "$dest/$name.tar.part"
}

snapshot() {  # what the job has made so far, into the caller's $OUT (see the header)
  [ -n "$SNAPSHOT_TO" ] && [ -d "$D" ] || return 0
  local paths=(out) run latest
  [ -f "$D/job.log" ] && paths+=(job.log)
  for run in "$D"/work/*/; do
    run=${run%/} && run=work/${run##*/}
    for f in console.log tensorboard; do [ -e "$D/$run/$f" ] && paths+=("$run/$f"); done
    latest=$(cat "$D/$run/checkpoints/latest" 2>/dev/null) || continue
    [ -d "$D/$run/checkpoints/$latest" ] && paths+=("$run/checkpoints/latest" "$run/checkpoints/$latest")
  done
  pack "$SNAPSHOT_TO" snapshot "${SNAPSHOT_PART_MIB:-15}" "${paths[@]}"
  echo "snapshot: ${paths[*]} -> $(ls "$SNAPSHOT_TO" | grep -c '^snapshot.tar.part') part(s) in $SNAPSHOT_TO"
}

case $cmd in
start)
  [ $# -gt 0 ] || { echo "start needs a job: a script or a command" >&2; exit 2; }
  if running; then echo "a job is already running (pid $(cat "$D/pid"))"; exit 1; fi
  rm -rf "$D" && mkdir -p "$D/out" "$D/work" "$D/repo"
  source "$HERE/node_env.sh"  # the wheelhouse (from this upload) and the node's settings
  tar -C "$ROOT" --exclude=./.git --exclude=./.venv --exclude=./logs --exclude=./.wheelhouse \
    --exclude=./.wheelhouse-parts -cf - . | tar -C "$D/repo" -xf -
  cd "$D/repo" || exit 1
  export PYTHONPATH=$D/repo${PYTHONPATH:+:$PYTHONPATH} OUT=$D/out WORK=$D/work
  job=("$@")
  case $1 in *.sh) job=(bash "$@") ;; esac
  date +%T > "$D/started"
  # the exit code goes to $D/rc when the job ends
  setsid nohup bash -c '"$@"; echo $? > "'"$D"'/rc"' job "${job[@]}" > "$D/job.log" 2>&1 < /dev/null &
  echo $! > "$D/pid"
  echo "started ${job[*]} (pid $(cat "$D/pid")) at $(cat "$D/started"), from $D/repo"
  watch_for "$WATCH_S"
  snapshot
  ;;
status) state; running ;;
watch) watch_for "$WATCH_S"; snapshot ;;
collect)
  [ -d "$D" ] || { echo "no job in $D"; exit 1; }
  watch_for "$WATCH_S"
  running && echo "job still running after ${WATCH_S}s: collecting what exists"
  OUT=${OUT:-$PWD/detached_out}
  mkdir -p "$OUT" && cp "$D/job.log" "$OUT/job.log"
  if [ -n "${COLLECT_PART_MIB:-}" ]; then  # one archive, in parts: few files, each of bounded size
    pack "$OUT" results "$COLLECT_PART_MIB" -C "$D/out" .
    echo "results of $(find "$D/out" -type f | wc -l) files as $(ls "$OUT" | grep -c '^results.tar.part') part(s)"
  else
    cp -r "$D/out/." "$OUT/"
  fi
  ls -la "$OUT"
  ;;
stop)
  if running; then kill -TERM -- "-$(cat "$D/pid")" && echo "stopped job $(cat "$D/pid")"; else state; fi
  ;;
*) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; [ -z "$cmd" ] || [ "$cmd" = -h ] || [ "$cmd" = --help ] || exit 2 ;;
esac
