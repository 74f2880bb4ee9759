#!/usr/bin/env bash
# Ingest benchmark: generates drives (once, cached in bench/out/) and times `scenes ingest` on
# them with the release binary. Appends a result table to bench/RESULTS.md.
#
#   bash bench/ingest.sh            # all cases
#   THREADS=1 bash bench/ingest.sh  # single-thread comparison
set -euo pipefail
cd "$(dirname "$0")/.."
# The benchmarked commands never touch AWS; the `aws` feature only adds the DynamoDB client.
cargo build --release --quiet --no-default-features --features lake
BIN=target/release/scenes
OUT=bench/out
mkdir -p "$OUT"
THREADS=${THREADS:-0}

gen() { # name compression duration image_bytes
    local bag="$OUT/$1.bag"
    [ -f "$bag" ] || "$BIN" generate "$bag" --compression "$2" --duration-s "$3" --image-bytes "$4" --seed 7 >/dev/null
    echo "$bag"
}

cases=(
    "sample:drive_b (largest sample):sample-bags/drive_b.bag"
    "small30min_none:30-min drive, small messages, uncompressed:$(gen small30min_none none 1800 0)"
    "small30min_lz4:30-min drive, small messages, lz4:$(gen small30min_lz4 lz4 1800 0)"
    "small30min_bz2:30-min drive, small messages, bz2:$(gen small30min_bz2 bz2 1800 0)"
    "images300_none:300 MB drive with 50 KB images, uncompressed:$(gen images300_none none 600 50000)"
    "images300_lz4:300 MB drive with 50 KB images, lz4:$(gen images300_lz4 lz4 600 50000)"
)

{
    echo
    echo "### ingest, $(date -u +%Y-%m-%d), $(nproc) cores, threads=${THREADS} ($(git rev-parse --short HEAD 2>/dev/null || echo worktree))"
    echo
    echo "| case | bag size | messages | best wall s (of 3) | msgs/s | MB/s of bag | peak RSS MiB |"
    echo "|---|---|---|---|---|---|---|"
} >> bench/RESULTS.md

for c in "${cases[@]}"; do
    name=${c%%:*}; rest=${c#*:}; label=${rest%%:*}; bag=${rest#*:}
    size=$(stat -c %s "$bag")
    best=""; rss=0; msgs=0
    for run in 1 2 3; do
        lake=$(mktemp -d)
        cat "$bag" > /dev/null   # page cache warm, as for every run
        /usr/bin/time -f "%e %M" -o "$OUT/time.txt" "$BIN" ingest --json --threads "$THREADS" --lake "$lake" "$bag" > "$OUT/report.json"
        read -r wall kb < "$OUT/time.txt"
        msgs=$(python3 -c "import json;print(json.load(open('$OUT/report.json'))['ingested'][0]['messages_ingested'])")
        if [ -z "$best" ] || python3 -c "import sys;sys.exit(0 if $wall < $best else 1)"; then best=$wall; fi
        [ "$kb" -gt "$rss" ] && rss=$kb
        rm -rf "$lake"
    done
    python3 - "$label" "$size" "$msgs" "$best" "$rss" >> bench/RESULTS.md <<'PY'
import sys
label, size, msgs, wall, rss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
wall = max(wall, 0.001)
print(f"| {label} | {size/1e6:.1f} MB | {msgs} | {wall:.2f} | {msgs/wall:,.0f} | {size/1e6/wall:,.1f} | {rss/1024:.0f} |")
PY
    echo "$label done"
done
tail -n 12 bench/RESULTS.md
