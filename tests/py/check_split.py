"""Checks `scenes split` with Python `rosbags` (an independent reader): every output opens, and
the outputs' messages, concatenated in order, equal the input's (topic, type, md5, time, bytes).

Usage: check_split.py INPUT OUTPUT...
"""
import json
import os
import sys

from rosbags.rosbag1 import Reader


def stream(path):
    out = []
    with Reader(path) as r:
        for c, t, raw in r.messages():
            out.append((c.topic, c.msgtype, c.digest, t, bytes(raw)))
    return out


def main():
    whole = stream(sys.argv[1])
    parts = [stream(p) for p in sys.argv[2:]]
    joined = [m for p in parts for m in p]
    result = {"input": len(whole), "parts": [len(p) for p in parts], "equal": joined == whole}
    if not result["equal"]:
        first = next((i for i, (a, b) in enumerate(zip(joined, whole)) if a != b), min(len(joined), len(whole)))
        result["first_difference"] = first
    print(json.dumps(result))
    sys.stdout.flush()
    os._exit(0 if result["equal"] and all(parts) else 1)


if __name__ == "__main__":
    main()
