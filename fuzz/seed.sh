#!/usr/bin/env bash
# Builds the fuzz seed corpora (fuzz/corpus/, not committed) from sample-bags/ and ../shared/bags/:
# - bag_reader: every bag of at most 64 KiB as is, and the shared MCAP files; larger bags cut by `scenes split` into valid
#   ~32 KiB bags (the first two pieces, with the input's compression and as bz2/lz4 copies).
# - definition_decoder: `<definition>\0<first message bytes>` for every connection, read with
#   Python rosbags (an independent reader) from the same bags.
# Needs target/debug/scenes (cargo build) and .venv with rosbags (bash tests/run.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
scenes=${SCENES_BIN:-target/debug/scenes}
out=fuzz/corpus
rm -rf "$out" && mkdir -p "$out/bag_reader" "$out/definition_decoder"
work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT

bags=(sample-bags/*.bag)
[ -d ../shared/bags ] && bags+=(../shared/bags/*.bag)
for bag in "${bags[@]}"; do
  name=$(basename "$bag" .bag)
  if [ "$(stat -c %s "$bag")" -le 65536 ]; then
    cp "$bag" "$out/bag_reader/$name.bag"
    continue
  fi
  for compression in keep bz2 lz4; do
    dir="$work/$name-$compression" && mkdir -p "$dir"
    args=(--max-size 32KiB --out-dir "$dir")
    [ "$compression" != keep ] && args+=(--compression "$compression")
    "$scenes" split "$bag" "${args[@]}" > /dev/null
    for piece in $(ls "$dir"/*.bag | head -2); do
      # One huge message cannot be split; such pieces would only slow the fuzzer down.
      [ "$(stat -c %s "$piece")" -gt 262144 ] && continue
      cp "$piece" "$out/bag_reader/$name-$compression-$(basename "$piece")"
    done
  done
done

# MCAP files (ROS 2) exercise the same reader entry point.
[ -d ../shared/bags ] && cp ../shared/bags/*.mcap "$out/bag_reader/" 2>/dev/null || true

.venv/bin/python - "$out/definition_decoder" "${bags[@]}" <<'PY'
import sys
from pathlib import Path
from rosbags.rosbag1 import Reader

out = Path(sys.argv[1])
for bag in sys.argv[2:]:
    with Reader(bag) as reader:
        for conn in reader.connections:
            first = next(reader.messages(connections=[conn]), None)
            payload = first[2] if first else b""
            text = conn.msgdef.data.encode()
            name = f"{Path(bag).stem}-{conn.id}"
            (out / name).write_bytes(text + b"\0" + payload[:4096])
PY
echo "seeds: $(ls "$out/bag_reader" | wc -l) bags, $(ls "$out/definition_decoder" | wc -l) definitions"
