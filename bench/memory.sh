#!/usr/bin/env bash
# Peak memory of `scenes ingest` against bag size: generates image drives of about 0.5, 2 and
# 5 GB (500 KB CompressedImage at 10 Hz plus the small topics; cached in bench/out/), ingests
# each with the release binary on all cores, and appends peak RSS (GNU time's maximum resident
# set size) to bench/RESULTS.md. Needs ~8 GB of free disk per 5 GB case (bag + lake).
#
#   bash bench/memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# The benchmarked commands never touch AWS; the `aws` feature only adds the DynamoDB client.
cargo build --release --quiet --no-default-features --features lake
BIN=target/release/scenes
OUT=bench/out
mkdir -p "$OUT"

{
    echo
    echo "### peak RSS vs bag size, $(date -u +%Y-%m-%d), $(nproc) cores ($(git rev-parse --short HEAD 2>/dev/null || echo worktree))"
    echo
    echo "| bag | bag size | messages | wall s | MB/s | peak RSS MiB |"
    echo "|---|---|---|---|---|---|"
} >> bench/RESULTS.md

for case in "mem0.5g:100" "mem2g:400" "mem5g:1000"; do
    name=${case%%:*}; seconds=${case#*:}
    bag="$OUT/$name.bag"
    [ -f "$bag" ] || "$BIN" generate "$bag" --compression none --duration-s "$seconds" --image-bytes 500000 --seed 11 > /dev/null
    size=$(stat -c %s "$bag")
    lake=$(mktemp -d -p "$OUT")
    /usr/bin/time -f "%e %M" -o "$OUT/time.txt" "$BIN" ingest --json --lake "$lake" "$bag" > "$OUT/report.json"
    read -r wall kb < "$OUT/time.txt"
    msgs=$(python3 -c "import json;print(json.load(open('$OUT/report.json'))['ingested'][0]['messages_ingested'])")
    rm -rf "$lake"
    printf '| %s | %.2f GB | %d | %.2f | %.0f | %d |\n' "$name" "$(echo "$size/1000000000" | bc -l)" "$msgs" "$wall" \
        "$(echo "$size/1000000/$wall" | bc -l)" "$((kb / 1024))" | tee -a bench/RESULTS.md
done
