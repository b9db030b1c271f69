#!/usr/bin/env bash
# Run every benchmark against the HolySheep simulator and write BENCHMARKS.md.
#
#   benchmarks/run.sh                  full run (~13 minutes on 2 cores)
#   BENCH_QUICK=1 benchmarks/run.sh    tiny counts, to check the harness
#   benchmarks/run.sh overhead async   only some benchmarks (BENCHMARKS.md still
#                                      collects every result file present)
#
# Creates benchmarks/.venv (gitignored) with the project (-e ..[sim,cli,aiohttp,redis,metrics,serve]) and
# the benchmark-only requirements (LiteLLM and its proxy never become project dependencies).
# BENCH_SKIP_INSTALL=1 reuses an existing venv as is. PYTHON picks the
# interpreter for the venv (default python3, >= 3.10).
set -euo pipefail
cd "$(dirname "$0")"
BENCH_DIR=$(pwd)
VENV="$BENCH_DIR/.venv"
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
    "${PYTHON:-python3}" -m venv "$VENV"
fi
if [ "${BENCH_SKIP_INSTALL:-0}" != "1" ]; then
    "$PY" -m pip install -q --disable-pip-version-check -e "..[sim,cli,aiohttp,redis,metrics,serve]" -r requirements.txt
    # litellm without its dependencies: they are listed in requirements.txt
    # (its certifi pin is newer than the package mirror's; see requirements.txt)
    "$PY" -m pip install -q --disable-pip-version-check --no-deps -r requirements-litellm.txt
    # LiteLLM's proxy server (bench_proxy.py), with its dependencies
    "$PY" -m pip install -q --disable-pip-version-check -r requirements-litellm-proxy.txt
fi

ALL=(overhead stream async failover replay spend state shared_breakers network startup proxy)
if [ "$#" -gt 0 ]; then SELECTED=("$@"); else SELECTED=("${ALL[@]}"); fi
mkdir -p results
if [ "$#" -eq 0 ]; then
    rm -f results/*.json
fi
"$PY" -c 'import json, datetime, harness; json.dump({"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "machine": harness.machine()}, open("results/_run.json", "w"), indent=2)'

status=0
for name in "${SELECTED[@]}"; do
    echo "=== bench_${name}.py $(date -u +%H:%M:%S)" >&2
    start=$(date +%s)
    if ! "$PY" "bench_${name}.py"; then
        echo "bench_${name}.py FAILED" >&2
        status=1
    fi
    echo "=== bench_${name}.py took $(( $(date +%s) - start )) s" >&2
done
"$PY" report.py
exit $status
