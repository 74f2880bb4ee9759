#!/usr/bin/env bash
# Peak memory of `scenes ingest s3://...` against bag size: the 0.5, 2 and 5 GB image drives of
# bench/memory.sh (generated there, cached in bench/out/) are uploaded to a local S3 server on
# 127.0.0.1 and ingested from `s3://` into a local lake, so every byte of the bag arrives by
# ranged GETs. Appends wall time and peak RSS (GNU time) to bench/RESULTS.md.
#
# The server is s3s-fs (`cargo install s3s-fs@0.14.1 --features binary`, installed here on first
# use; objects on disk, SigV4 checked): moto_server, which the tests use, copies the whole
# object for every ranged GET and serves a 0.5 GB bag at ~2 MB/s.
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
for name in mem0.5g mem2g mem5g; do
    [ -f "$OUT/$name.bag" ] || { echo "run bash bench/memory.sh first (it generates $OUT/$name.bag)"; exit 1; }
done
command -v s3s-fs >/dev/null || cargo install s3s-fs@0.14.1 --features binary --locked
[ -x .venv/bin/python ] && .venv/bin/python -c "import boto3" 2>/dev/null || {
    python3 -m venv .venv && .venv/bin/pip install --quiet -r tests/py/requirements.txt; }

data=$(mktemp -d -p "$OUT")
mkdir -p "$data/bench-drives"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
s3s-fs --host 127.0.0.1 --port "$port" --access-key test --secret-key test "$data" > "$OUT/s3s.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$data"' EXIT
sleep 1
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
config=$(mktemp -p "$OUT" --suffix .json)
echo "{\"s3\": {\"endpoint_url\": \"http://127.0.0.1:$port\"}}" > "$config"
export SCENES_TEST_S3_ENDPOINT="http://127.0.0.1:$port"

{
    echo
    echo "### peak RSS of ingest from s3:// (s3s-fs on 127.0.0.1, debug build), $(date -u +%Y-%m-%d), $(nproc) cores ($(git rev-parse --short HEAD 2>/dev/null || echo worktree))"
    echo
    echo "| bag | bag size | messages | wall s | peak RSS MiB |"
    echo "|---|---|---|---|---|"
} >> bench/RESULTS.md

for name in mem0.5g mem2g mem5g; do
    bag="$OUT/$name.bag"
    size=$(stat -c %s "$bag")
    # Large parts: s3s-fs refused boto3's default 8 MB parts of the 5 GB bag at
    # CompleteMultipartUpload.
    S3_TOOL_PART_MB=128 .venv/bin/python tests/py/s3_tool.py put "$bag" "s3://bench-drives/$name.bag"
    lake=$(mktemp -d -p "$OUT")
    /usr/bin/time -f "%e %M" -o "$OUT/time.txt" "$BIN" --config "$config" ingest --json --lake "$lake" "s3://bench-drives/$name.bag" > "$OUT/report.json"
    read -r wall kb < "$OUT/time.txt"
    msgs=$(python3 -c "import json;print(json.load(open('$OUT/report.json'))['ingested'][0]['messages_ingested'])")
    rm -rf "$lake"; rm -f "$data/bench-drives/$name.bag"
    printf '| %s | %.2f GB | %d | %.2f | %d |\n' "$name" "$(echo "$size/1000000000" | bc -l)" "$msgs" "$wall" "$((kb / 1024))" | tee -a bench/RESULTS.md
done
rm -f "$config"
