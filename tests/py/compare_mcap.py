"""Differential check for MCAP files: decode every message with independent readers — PyPI
`mcap` + `mcap-ros2-support` for CDR channels, `rosbags` for ROS1-profile channels — and compare
them, field by field, with the rows `scenes ingest` wrote to the lake.

Usage: compare_mcap.py MCAP LAKE REPORT_JSON
  REPORT_JSON is the output of `scenes ingest --json` (topic -> tables).
Prints one JSON object per topic and exits 1 on any mismatch. Channels neither reader decodes
(and that we keep raw) are compared by count and log times.
"""
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rosbags.typesys import get_types_from_msg

from compare_with_rosbags import STORE, norm as norm_rosbags, our_rows, same

SKIP_COLUMNS = {"log_time", "header_stamp", "_raw_message", "_message_type", "_decode_status", "bag_file"}


def norm(v):
    """mcap_ros2 value -> plain Python in the shape of our Arrow mapping (byte arrays as lists)."""
    if isinstance(v, types.SimpleNamespace):
        slots = list(getattr(v, "__slots__", None) or vars(v).keys())
        if type(v).__name__ in ("Time", "Duration") and slots == ["sec", "nanosec"]:
            return v.sec * 1_000_000_000 + v.nanosec
        return {name: norm(getattr(v, name)) for name in slots if name != "structure_needs_at_least_one_member"}
    if isinstance(v, (bytes, bytearray)):
        return list(v)
    if isinstance(v, np.ndarray):
        return [norm(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def bytes_as_lists(v):
    if isinstance(v, (bytes, bytearray)):
        return list(v)
    if isinstance(v, dict):
        return {k: bytes_as_lists(x) for k, x in v.items()}
    if isinstance(v, list):
        return [bytes_as_lists(x) for x in v]
    return v


def expected_messages(path):
    """topic -> [(log_time, normalized message or None when no reader decodes it)]."""
    ros2 = DecoderFactory()
    decoders = {}
    expected = {}
    with open(path, "rb") as f:
        reader = make_reader(f)
        for schema, channel, message in reader.iter_messages(log_time_order=False):
            key = channel.id
            if key not in decoders:
                decoders[key] = None
                if channel.message_encoding == "cdr" and schema is not None and schema.encoding == "ros2msg":
                    try:
                        decoders[key] = ("ros2", ros2.decoder_for(channel.message_encoding, schema))
                    except Exception:  # the reference cannot read this schema (service events)
                        decoders[key] = None
                elif channel.message_encoding == "ros1" and schema is not None and schema.encoding == "ros1msg":
                    STORE.register(get_types_from_msg(schema.data.decode(), schema.name))
                    decoders[key] = ("ros1", schema.name)
            decoder = decoders[key]
            value = None
            if decoder and decoder[0] == "ros2":
                value = norm(decoder[1](message.data))
            elif decoder:
                value = bytes_as_lists(norm_rosbags(STORE.deserialize_ros1(message.data, decoder[1])))
            expected.setdefault(channel.topic, []).append((message.log_time, value))
    return expected


def main():
    path, lake, report_path = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    report = json.loads(report_path.read_text())["ingested"][0]
    bag_file = report["bag_file"]
    topic_tables = {t["topic"]: t["tables"] for t in report["topics"]}
    expected = expected_messages(path)
    failures = 0
    for topic in sorted(set(expected) | set(topic_tables)):
        theirs = expected.get(topic, [])
        tables = topic_tables.get(topic, [])
        ours = []
        for table in tables:
            ours.extend(our_rows(lake, table, bag_file))
        status, detail = "ok", None
        if len(ours) != len(theirs):
            status, detail = "count mismatch", f"ours {len(ours)} vs reference {len(theirs)}"
        elif theirs and all(v is None for _, v in theirs):
            status, detail = "counts only", "no reference decoder for this encoding; counts and log times compared"
            if sorted(t for t, _ in theirs) != sorted(r["log_time"] for r in ours):
                status = "log_time mismatch"
            elif any(r.get("_raw_message") is None for r in ours) and all("_raw_message" in r for r in ours):
                status, detail = "raw bytes missing", "undecoded messages must keep _raw_message"
        else:
            theirs_sorted = sorted(theirs, key=lambda x: (x[0], repr(x[1])))
            ours_norm = sorted(
                ((r["log_time"], bytes_as_lists({k: v for k, v in r.items() if k not in SKIP_COLUMNS})) for r in ours),
                key=lambda x: (x[0], repr(x[1])),
            )
            for i, ((t1, m1), (t2, m2)) in enumerate(zip(theirs_sorted, ours_norm)):
                d = same(m1, m2, topic) if t1 == t2 else f"log_time {t1} != {t2}"
                if d:
                    status, detail = "value mismatch", f"message {i}: {d}"
                    break
        if status not in ("ok", "counts only"):
            failures += 1
        print(json.dumps({"topic": topic, "tables": tables, "ours": len(ours), "reference": len(theirs), "status": status, "detail": detail}))
    sys.stdout.flush()
    os._exit(1 if failures else 0)


if __name__ == "__main__":
    main()
