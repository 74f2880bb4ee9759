"""What the pipeline we replace ran in its ingest container: bagpy converting every topic of a
bag to CSV (`bagreader(bag).message_by_topic(topic)` for each topic). ROS lz4 chunks need a shim:
bagpy's bundled lz4 extension does not load on Python 3, and ROS lz4 chunks are LZ4 frames.

usage: bagpy_csv.py BAG    (prints a JSON line: messages, seconds; CSVs go next to the bag)
"""
import json
import sys
import time
import types

import lz4.frame

shim = types.ModuleType("roslz4")
shim.decompress = lz4.frame.decompress
shim.compress = lz4.frame.compress
sys.modules["roslz4"] = shim

import bagpy  # noqa: E402  (after the shim)


def main():
    bag = sys.argv[1]
    started = time.perf_counter()
    reader = bagpy.bagreader(bag)
    total = 0
    for _, row in reader.topic_table.iterrows():
        reader.message_by_topic(row["Topics"])
        total += int(row["Message Count"])
    print(json.dumps({"messages": total, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
