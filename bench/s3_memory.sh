#!/usr/bin/env bash
# Peak memory of `scenes ingest s3://...` against bag size: the 0.5 and 2 GB image drives of
# bench/memory.sh (generated there, cached in bench/out/) are uploaded to a local moto_server
# (S3 on 127.0.0.1, started and stopped here, as in the tests) and ingested from `s3://` into a
# local lake, so every byte of the bag arrives by ranged GETs. Appends wall time and peak RSS
# (GNU time) to bench/RESULTS.md.
#
# The binary is the debug build of the default features (the benchmark release build leaves out
# the AWS crates, and a release build with them takes most of an hour on 2 cores): the figure
# that matters here is memory, not speed.
#
#   bash bench/s3_memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
BIN=target/debug/scenes
OUT=bench/out
for name in mem0.5g mem2g; do
    [ -f "$OUT/$name.bag" ] || { echo "run bash bench/memory.sh first (it generates $OUT/$name.bag)"; exit 1; }
done

VENV=.venv
if [ ! -x "$VENV/bin/moto_server" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/py/requirements.txt
fi
export SCENES_TEST_PYTHON="$PWD/$VENV/bin/python"
source tests/aws-local.sh

"$SCENES_TEST_PYTHON" tests/py/s3_tool.py mb bench-drives
config=$(mktemp -p "$OUT" --suffix .json)
echo "{\"s3\": {\"endpoint_url\": \"$SCENES_TEST_S3_ENDPOINT\"}}" > "$config"

{
    echo
    echo "### peak RSS of ingest from s3:// (moto_server on 127.0.0.1, debug build), $(date -u +%Y-%m-%d), $(nproc) cores ($(git rev-parse --short HEAD 2>/dev/null || echo worktree))"
    echo
    echo "| bag | bag size | messages | wall s | peak RSS MiB |"
    echo "|---|---|---|---|---|"
} >> bench/RESULTS.md

for name in mem0.5g mem2g; do
    bag="$OUT/$name.bag"
    size=$(stat -c %s "$bag")
    "$SCENES_TEST_PYTHON" tests/py/s3_tool.py put "$bag" "s3://bench-drives/$name.bag"
    lake=$(mktemp -d -p "$OUT")
    /usr/bin/time -f "%e %M" -o "$OUT/time.txt" "$BIN" --config "$config" ingest --json --lake "$lake" "s3://bench-drives/$name.bag" > "$OUT/report.json"
    read -r wall kb < "$OUT/time.txt"
    msgs=$(python3 -c "import json;print(json.load(open('$OUT/report.json'))['ingested'][0]['messages_ingested'])")
    rm -rf "$lake"
    printf '| %s | %.2f GB | %d | %.2f | %d |\n' "$name" "$(echo "$size/1000000000" | bc -l)" "$msgs" "$wall" "$((kb / 1024))" | tee -a bench/RESULTS.md
done
rm -f "$config"
