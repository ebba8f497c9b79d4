#!/usr/bin/env bash
# The runtime-loop benchmark in one command: sets the project up if it is not yet
# (bin/setup), then runs `python -m bench.runtime`, which installs the benchmark's
# own packages, starts its own Kafka broker (port 45092) and writes
# bench/results/runtime-*.json and the "Runtime loop" section of docs/benchmarks.md.
# Arguments go on to it: bash bench/runtime/run.sh --help
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv/bin/python ] || [ ! -f .venv/.troupe-installed ]; then
  bin/setup
fi
exec .venv/bin/python -m bench.runtime "$@"
