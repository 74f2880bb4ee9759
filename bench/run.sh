#!/usr/bin/env bash
# The benchmark against the peers, on the same bags and machine, runs alternating:
#   scenes ingest (release)            vs  bagpy -> CSV (the pipeline we replace)
#                                      vs  rosbags decode + pyarrow Parquet (strongest Python)
#   scenes ingest --threads 1 vs 2     (bz2 scaling)
#   scenes batch (sync + detect)       vs  PySpark local[2] implementation of the reference
# Bags (generated once into bench/out/): a 30-min small-message drive (none, lz4, bz2) and a
# ~500 MB camera + lidar drive (none, lz4). Peak RSS and CPU time from GNU time, wall time from
# bash's microsecond clock. Writes BENCHMARKS.md and bench/chart.png from bench/out/results.csv
# (medians of RUNS runs).
#
#   bash bench/run.sh              # RUNS=3
#   RUNS=5 bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
OUT=bench/out
mkdir -p "$OUT"

echo "== building scenes (release)"
# The benchmarked commands never touch AWS; the `aws` feature only adds the DynamoDB client.
cargo build --release --quiet --no-default-features --features lake
BIN=target/release/scenes

VENV=bench/.venv
if ! "$VENV/bin/python" -c "import rosbags, pyarrow, bagpy, pyspark, matplotlib" 2>/dev/null; then
    echo "== installing the peers into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r bench/requirements.txt
fi
PY="$VENV/bin/python"

gen() { # name compression duration image_bytes lidar_points
    local bag="$OUT/$1.bag"
    [ -f "$bag" ] || "$BIN" generate "$bag" --compression "$2" --duration-s "$3" --image-bytes "$4" --lidar-points "$5" --seed 7 > /dev/null
    echo "$bag"
}
echo "== generating bags"
SMALL_NONE=$(gen small30min_none none 1800 0 0)
SMALL_LZ4=$(gen small30min_lz4 lz4 1800 0 0)
SMALL_BZ2=$(gen small30min_bz2 bz2 1800 0 0)
# 10 Hz camera (200 KB) + lidar (20,000 points x 16 B = 320 KB): ~5.2 MB/s, ~500 MB in 96 s.
SENSORS_NONE=$(gen sensors500_none none 96 200000 20000)
SENSORS_LZ4=$(gen sensors500_lz4 lz4 96 200000 20000)

# Input of the machine's own 2-process scaling reference (bzip2 -d, like the bz2 chunks).
BUNZIP_INPUT="$OUT/bunzip_reference.bz2"
[ -f "$BUNZIP_INPUT" ] || head -c 40000000 "$SMALL_NONE" | bzip2 -9 > "$BUNZIP_INPUT"

RESULTS="$OUT/results.csv"
echo "case,tool,run,wall_s,cpu_s,peak_rss_kb,messages,bag_bytes" > "$RESULTS"

# measure CASE TOOL RUN BAG -- command...   (the command prints a JSON line with "messages")
measure() {
    local case=$1 tool=$2 run=$3 bag=$4; shift 5
    cat "$bag" > /dev/null # page cache warm for every tool alike
    # Start every tool on a settled machine: the output of the previous one written back to
    # disk, not competing with this run (the Python peers write hundreds of MB).
    sync; sleep 1
    # Wall time from bash's microsecond clock around the run: GNU time's %e counts in steps of
    # 10 ms, a tenth of one of our runs. GNU time still gives CPU time and peak RSS.
    local started=$EPOCHREALTIME
    /usr/bin/time -f "%e %U %S %M" -o "$OUT/time.txt" "$@" > "$OUT/out.json" 2> "$OUT/err.txt" || {
        echo "FAILED: $case $tool"; cat "$OUT/err.txt"; return 1; }
    local ended=$EPOCHREALTIME
    read -r _ user sys kb < "$OUT/time.txt"
    local wall
    wall=$(echo "$ended - $started" | bc)
    local msgs
    msgs=$(python3 - "$OUT/out.json" <<'PY'
import json, sys
text = open(sys.argv[1]).read().strip()
try:
    d = json.loads(text)
except ValueError:
    d = json.loads(text.splitlines()[-1]) if text else {}
if isinstance(d, dict) and "ingested" in d:
    print(sum(r["messages_ingested"] for r in d["ingested"]))
elif isinstance(d, dict):
    print(d.get("messages", 0))
else:
    print(0)
PY
)
    echo "$case,$tool,$run,$wall,$(echo "$user + $sys" | bc),$kb,$msgs,$(stat -c %s "$bag")" >> "$RESULTS"
    printf '  %-18s %-22s run %s: %6.2f s wall, %6d MiB\n' "$case" "$tool" "$run" "$wall" "$((kb / 1024))"
}

fresh() { rm -rf "$1" && mkdir -p "$1" && echo "$1"; }

# Sync + detect inputs, made once: a lake with the 30-min drive ingested (copied per run) and the
# same drive as Parquet from the rosbags baseline (read by PySpark).
echo "== preparing sync + detect inputs"
BASE_LAKE=$(fresh "$OUT/base_lake")
"$BIN" ingest --quiet --lake "$BASE_LAKE" "$SMALL_NONE"
PARQUET=$(fresh "$OUT/parquet_small30min")
"$PY" bench/peers/rosbags_parquet.py "$SMALL_NONE" "$PARQUET" > /dev/null

for run in $(seq 1 "$RUNS"); do
    echo "== run $run of $RUNS"
    for bag in "$SMALL_NONE" "$SMALL_LZ4" "$SMALL_BZ2" "$SENSORS_NONE" "$SENSORS_LZ4"; do
        case=$(basename "$bag" .bag)
        lake=$(fresh "$OUT/lake_run")
        # Our runs are short, so noise weighs more: three per round (medians over all of them).
        for again in 1 2 3; do
            lake=$(fresh "$OUT/lake_run")
            measure "$case" scenes "$run.$again" "$bag" -- "$BIN" ingest --json --lake "$lake" "$bag"
        done
        pq=$(fresh "$OUT/pq_run")
        measure "$case" rosbags_parquet "$run" "$bag" -- "$PY" bench/peers/rosbags_parquet.py "$bag" "$pq"
        case $case in small30min_*)
            rm -rf "${bag%.bag}"
            measure "$case" bagpy_csv "$run" "$bag" -- "$PY" bench/peers/bagpy_csv.py "$bag"
            rm -rf "${bag%.bag}";;
        esac
    done
    for again in 1 2 3; do
        lake=$(fresh "$OUT/lake_run")
        measure small30min_bz2 scenes_1_thread "$run.$again" "$SMALL_BZ2" -- "$BIN" ingest --json --threads 1 --lake "$lake" "$SMALL_BZ2"
        lake=$(fresh "$OUT/lake_run")
        measure small30min_bz2 scenes_2_threads "$run.$again" "$SMALL_BZ2" -- "$BIN" ingest --json --threads 2 --lake "$lake" "$SMALL_BZ2"
        # The same two-vCPU question asked of plain bzip2: one process, then two at once.
        measure machine_bunzip2 one_process "$run.$again" "$BUNZIP_INPUT" -- bash -c 'bzip2 -dc "$1" > /dev/null' _ "$BUNZIP_INPUT"
        measure machine_bunzip2 two_processes "$run.$again" "$BUNZIP_INPUT" -- bash -c 'bzip2 -dc "$1" > /dev/null & bzip2 -dc "$1" > /dev/null; wait' _ "$BUNZIP_INPUT"
    done
    # sync + detect
    rm -rf "$OUT/lake_run" && cp -r "$BASE_LAKE" "$OUT/lake_run"
    measure sync_detect scenes_batch "$run" "$SMALL_NONE" -- "$BIN" batch --all --json --lake "$OUT/lake_run"
    spark_out=$(fresh "$OUT/spark_run")
    measure sync_detect pyspark "$run" "$SMALL_NONE" -- "$PY" bench/peers/pyspark_scenes.py "$PARQUET" small30min_none "$spark_out"
done

echo "== report"
"$PY" bench/report.py "$RESULTS" BENCHMARKS.md bench/chart.png
