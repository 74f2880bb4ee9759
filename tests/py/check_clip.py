"""Checks a clip against its source with independent readers: Python `rosbags` for ROS1 bags and
the `mcap` package for MCAP files. The clip must hold exactly the source's messages whose record
time lies in [from_ns, to_ns] (topic, time and payload bytes equal), plus, for every latched
connection (recorded as latching, or a topic matching a pattern), the last message before the
window. Prints a JSON summary; exits 1 naming the first difference.

usage: check_clip.py SOURCE CLIP FROM_NS TO_NS [PATTERN...]
"""
import fnmatch
import hashlib
import json
import sys
from pathlib import Path

from mcap.reader import make_reader
from rosbags.rosbag1 import Reader


def ros1_messages(path):
    """(topic, time, payload, latching) of every message of a ROS1 bag, read by rosbags."""
    out = []
    with Reader(path) as reader:
        latching = {c.id: bool(c.ext.latching) for c in reader.connections}
        for connection, timestamp, raw in reader.messages():
            out.append((connection.topic, timestamp, bytes(raw), latching[connection.id]))
    return out


def mcap_messages(path):
    """(topic, time, payload, latching) of every message of an MCAP file, read by mcap."""
    out = []
    with open(path, "rb") as f:
        for _schema, channel, message in make_reader(f).iter_messages(log_time_order=False):
            out.append((channel.topic, message.log_time, bytes(message.data), channel.metadata.get("latching") == "1"))
    return out


def messages(path):
    with open(path, "rb") as f:
        magic = f.read(8)
    return mcap_messages(path) if magic.startswith(b"\x89MCAP") else ros1_messages(path)


def key(m):
    return (m[0], m[1], hashlib.sha256(m[2]).hexdigest())


def main():
    source, clip, from_ns, to_ns = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    patterns = sys.argv[5:]
    everything = messages(source)
    expected = [m for m in everything if from_ns <= m[1] <= to_ns]
    latched = {}
    for m in everything:
        if m[1] < from_ns and (m[3] or any(fnmatch.fnmatchcase(m[0], p) for p in patterns)):
            if m[0] not in latched or m[1] >= latched[m[0]][1]:
                latched[m[0]] = m
    expected += list(latched.values())
    got = messages(clip)
    want, have = sorted(map(key, expected)), sorted(map(key, got))
    summary = {"clip": str(clip), "messages": len(got), "expected": len(want), "latched": sorted(latched), "equal": want == have}
    print(json.dumps(summary))
    if want != have:
        missing = [k for k in want if k not in set(have)][:3]
        extra = [k for k in have if k not in set(want)][:3]
        print(f"clip differs from the source's window: missing {missing}, extra {extra}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
