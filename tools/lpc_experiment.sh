#!/usr/bin/env bash
# The LPC experiment (issue 6) moved to tools/lpc_experiment.py; this wrapper runs it with the
# venv's python (matplotlib for the report). Usage: tools/lpc_experiment.sh --seed 1 [options]
# (tools/lpc_experiment.py --help). The data: tools/make_population_data.py.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$("$root/tools/venv.sh")}
exec "$PY" "$root/tools/lpc_experiment.py" "$@"
