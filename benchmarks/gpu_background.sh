#!/usr/bin/env bash
# Runs longer than one device call (the lent box allows 10 minutes a command, but keeps a
# machine up to 30 minutes while calls follow each other): start a script detached in its own
# process session, then watch it from later calls, then collect what it wrote.
#
#   bash benchmarks/gpu_background.sh start SCRIPT [ARGS...]  # setup, copy the repo, launch; watch ~WATCH_S
#   bash benchmarks/gpu_background.sh watch                   # progress for ~WATCH_S seconds
#   bash benchmarks/gpu_background.sh collect                 # wait (<= WATCH_S) for the end, copy results to $OUT
#
# The job runs from a private copy of the repo (/tmp/bg/repo), so a later call's fresh copy of
# the working tree cannot change code under a running job. Its environment (RUNS, TRAIN_S, ...)
# is passed through. Its results directory is /tmp/bg/out (the job sees it as $OUT); `collect`
# copies it to this call's $OUT. Progress: the job's stdout (/tmp/bg/job.log) and the newest
# console line of every run under /tmp/bg/work.
set -uo pipefail
BG=${BG:-/tmp/bg}  # job state: pid, job.log, repo copy, work/, out/
WATCH_S=${WATCH_S:-540}
cmd=${1:?usage: gpu_background.sh start SCRIPT [ARGS...] | watch | collect}
shift

running() { [ -f $BG/pid ] && kill -0 "$(cat $BG/pid)" 2>/dev/null; }

progress() {
  echo "--- $(date +%T) job $(running && echo running || echo finished) ---"
  tail -n 6 $BG/job.log 2>/dev/null
  for f in $BG/work/*/console.log; do
    [ -f "$f" ] && echo "$(basename "$(dirname "$f")"): $(tail -n 1 "$f" | cut -c1-220)"
  done
}

watch_for() {  # seconds: progress every 60 s; returns as soon as the job ends
  local end=$(( $(date +%s) + $1 )) last=0
  while [ "$(date +%s)" -lt "$end" ] && running; do
    if [ $(( $(date +%s) - last )) -ge 60 ]; then progress; last=$(date +%s); fi
    sleep $(( end - $(date +%s) < 5 ? 1 : 5 ))
  done
  progress
}

case $cmd in
start)
  script=${1:?start needs a script}; shift
  if running; then echo "a job is already running (pid $(cat $BG/pid))"; exit 1; fi
  rm -rf $BG && mkdir -p $BG/out $BG/work
  mkdir -p $BG/repo && tar -C . --exclude=./.venv --exclude=./logs --exclude=./outputs -cf - . | tar -C $BG/repo -xf -
  cd $BG/repo || exit 1
  source benchmarks/gpu_setup.sh  # wheels, GL, editable install of this copy
  OUT=$BG/out WORK=$BG/work setsid nohup bash "$script" "$@" > $BG/job.log 2>&1 < /dev/null &
  echo $! > $BG/pid
  echo "started $script (pid $(cat $BG/pid)) at $(date +%T)"
  watch_for "$WATCH_S"
  ;;
watch) watch_for "$WATCH_S" ;;
collect)
  watch_for "$WATCH_S"
  running && echo "job still running after ${WATCH_S}s: collecting what exists"
  mkdir -p "${OUT:?}" && cp -r $BG/out/. "$OUT/" && cp $BG/job.log "$OUT/job.log"
  ls -la "$OUT"
  ;;
*) echo "unknown command $cmd"; exit 2 ;;
esac
