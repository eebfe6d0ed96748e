#!/usr/bin/env bash
# The Kubernetes topology as local processes: see scripts/local_cluster.py.
#   scripts/local-cluster.sh [--background]   start (foreground: Ctrl-C stops everything it started)
#   scripts/local-cluster.sh stop             stop the pids its state file lists
set -euo pipefail
# An absolute path: `stop` recognises the supervisor and router by it in /proc/<pid>/cmdline.
exec python3 "$(cd "$(dirname "$0")" && pwd -P)/local_cluster.py" "$@"
