#!/usr/bin/env bash
# The fleet benchmark (issue 23): one lake grows by PER_ROUND generated short drives per round.
# Each round runs `scenes ingest <the round's folder>`, then `scenes batch --all`, then two
# queries (`SELECT count(*) FROM scenes`, and one bag's rows of one table; the median of five runs
# each), and prints per round:
# bags in the lake, ingest and batch seconds per new bag, and the two query latencies. A cost
# that grows with the round number grows with the lake. Finally it re-runs ingest over every
# folder (all bags unchanged) and prints how long that took and how many it skipped.
#
#   bash bench/fleet.sh                         # 10 rounds of 100 drives of 20 s
#   ROUNDS=3 PER_ROUND=50 bash bench/fleet.sh   # a quick look
#
# Writes bench/out/fleet/fleet.csv; the bags are generated once and kept in bench/out/fleet/
# (the lake is made anew each run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-10}
PER_ROUND=${PER_ROUND:-100}
DURATION_S=${DURATION_S:-20}
OUT=bench/out/fleet
BIN=target/release/scenes

echo "== building scenes (release)"
cargo build --release --quiet --no-default-features --features lake

mkdir -p "$OUT"
LAKE="$OUT/lake"
# Bags are kept between runs, per round size and drive length (a round's folder holds exactly
# its own drives).
BAGS="$OUT/bags-${PER_ROUND}x${DURATION_S}s"
rm -rf "$LAKE"
CSV="$OUT/fleet.csv"
echo "round,bags_in_lake,ingest_s_per_bag,batch_s_per_bag,count_scenes_s,one_bag_rows_s" > "$CSV"

elapsed() { echo "$2 - $1" | bc; }

# Seconds of the median of QUERY_RUNS runs of `scenes query` (one process start each): a single
# run of a 10 ms query is as noisy as the growth being measured.
QUERY_RUNS=${QUERY_RUNS:-5}
query_seconds() {
    local times=()
    for _ in $(seq 1 "$QUERY_RUNS"); do
        local s=$EPOCHREALTIME
        "$BIN" query --lake "$LAKE" --format csv "$1" > /dev/null
        times+=("$(elapsed "$s" "$EPOCHREALTIME")")
    done
    printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (QUERY_RUNS + 1) / 2 ))p"
}

for round in $(seq 1 "$ROUNDS"); do
    dir="$BAGS/round_$(printf %02d "$round")"
    mkdir -p "$dir"
    for i in $(seq 1 "$PER_ROUND"); do
        # Unique names across rounds, so that the probe below names one bag.
        seed=$(( (round - 1) * PER_ROUND + i ))
        bag="$dir/drive_$(printf %05d "$seed").bag"
        [ -f "$bag" ] || "$BIN" generate "$bag" --duration-s "$DURATION_S" --seed "$seed" > /dev/null
    done
    probe="drive_$(printf %05d $(( (round - 1) * PER_ROUND + 1 )))"
    sync
    t0=$EPOCHREALTIME
    "$BIN" ingest --quiet --no-progress --lake "$LAKE" "$dir"
    t1=$EPOCHREALTIME
    "$BIN" batch --all --quiet --lake "$LAKE"
    t2=$EPOCHREALTIME
    count_s=$(query_seconds "SELECT count(*) FROM scenes")
    # The probe bag's key (its name and the hash of its path), looked up outside the timing.
    probe_key=$("$BIN" query --lake "$LAKE" --format csv "SELECT bag_file FROM bags WHERE bag_name = '$probe'" | tail -1)
    one_bag_s=$(query_seconds "SELECT count(*) FROM imu_data WHERE bag_file = '$probe_key'")
    bags=$(( round * PER_ROUND ))
    ingest=$(echo "scale=4; $(elapsed "$t0" "$t1") / $PER_ROUND" | bc)
    batch=$(echo "scale=4; $(elapsed "$t1" "$t2") / $PER_ROUND" | bc)
    echo "$round,$bags,$ingest,$batch,$count_s,$one_bag_s" >> "$CSV"
    printf 'round %2d: %5d bags, ingest %.4f s/bag, batch %.4f s/bag, count(*) scenes %.4f s, one bag %.4f s\n' \
        "$round" "$bags" "$ingest" "$batch" "$count_s" "$one_bag_s"
done

echo "== re-running ingest over all $(( ROUNDS * PER_ROUND )) unchanged bags"
t0=$EPOCHREALTIME
report=$("$BIN" ingest --json --lake "$LAKE" "$BAGS"/round_*)
t1=$EPOCHREALTIME
skipped=$(echo "$report" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["skipped"]), len(d["ingested"]))')
echo "re-run: $(elapsed "$t0" "$t1") s; skipped, ingested: $skipped"
t0=$EPOCHREALTIME
batched=$("$BIN" batch --all --json --lake "$LAKE" | python3 -c 'import json,sys; print(sum(len(b["bags"]) for b in json.load(sys.stdin)))')
t1=$EPOCHREALTIME
echo "batch after the re-run: $(elapsed "$t0" "$t1") s; bags batched again: $batched"
