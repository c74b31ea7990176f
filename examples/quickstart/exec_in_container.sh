#!/bin/sh
# gridtune quickstart evaluation, in the style of PanDA's exec_in_container.sh: run the training in
# the current working directory (the job's working dir: input.json in, output.json out), then pack
# the per-epoch metrics into the tarball named by the task's evaluationMetrics (metrics.tgz).
# POSIX sh, so it runs with Debian's dash and with busybox sh. Usage: sh ./exec_in_container.sh [train.py args]
set -u
CURRENT_DIR="$PWD"
METRICS_TGZ="${GRIDTUNE_METRICS_TGZ:-metrics.tgz}"
METRICS_DIR="$CURRENT_DIR/metrics"

echo "exec_in_container.sh: working directory $CURRENT_DIR"
# python3 -u: progress lines reach the agent as they are printed.
python3 -u "$(dirname "$0")/train.py" --metrics-csv "$METRICS_DIR/metrics.csv" --meta "$CURRENT_DIR/meta.json" "$@"
rc=$?
echo "exec_in_container.sh: train.py exited with $rc"

# Metrics are packed even after a failure, so the partial history can be read.
if [ -d "$METRICS_DIR" ]; then
  tar -czf "$CURRENT_DIR/$METRICS_TGZ" -C "$METRICS_DIR" . && echo "exec_in_container.sh: wrote $METRICS_TGZ"
fi
exit "$rc"
