"""Differential check for rosbag2 recordings (a folder, or a lone .db3): decode every message with
Python `rosbags` (`AnyReader`, an independent reader of rosbag2 folders, .db3 and MCAP), count
them with SQLite itself where the storage is .db3, and compare with the rows `scenes ingest` wrote,
field by field.

Where `AnyReader` reads fewer messages than the storage holds (it returns none from recordings
whose topic ids it numbers differently from the file, such as the rosbag2 project's test
recordings), the messages are read without it: `.db3` rows with SQLite, decoded by `rosbags`'
CDR deserializer; `.mcap` splits with the `mcap` package, decoded by `mcap-ros2-support`. The
"reader" field of each line says which was used.

Usage: compare_rosbag2.py RECORDING LAKE REPORT_JSON [MSG_DIR ...]
  REPORT_JSON is the output of `scenes ingest --json`; the MSG_DIRs hold <pkg>/msg/<Type>.msg
  files for recordings without definitions (rosbags' typestore is built from them).
Prints one JSON object per topic: our rows, rosbags' count, SQLite's count (null when the
storage is not plain .db3), status. Exits 1 on any mismatch. A topic we kept raw (no definition)
is compared by count and log times.
"""
import json
import os
import shutil
import sqlite3
import sys
import tempfile

import yaml
from pathlib import Path

import compare_with_rosbags as cwr
import zstandard
from compare_mcap import bytes_as_lists, expected_messages as mcap_messages
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_types_from_msg, get_typestore


def typestore(msg_dirs):
    """The standard ROS 2 types plus every .msg file under `msg_dirs` (as <pkg>/msg/<Type>.msg)."""
    ts = get_typestore(Stores.ROS2_HUMBLE)
    types = {}
    for d in msg_dirs:
        for path in sorted(Path(d).glob("*/msg/*.msg")):
            name = f"{path.parent.parent.name}/msg/{path.stem}"
            types.update(get_types_from_msg(path.read_text(), name))
    ts.register(types)
    return ts


def sqlite_counts(recording: Path):
    """Messages per topic name, counted by SQLite in every plain .db3 storage file; None when the
    recording has storage SQLite cannot open as it is (MCAP, zstd files)."""
    files = [recording] if recording.is_file() else sorted(recording.iterdir())
    storage = [f for f in files if f.suffix in (".db3", ".mcap", ".zstd")]
    if not storage or any(f.suffix != ".db3" for f in storage):
        return None
    counts = {}
    for f in storage:
        # A copy: the shared recordings are read-only, and SQLite may want to write a journal.
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / f.name
            shutil.copy(f, copy)
            conn = sqlite3.connect(copy)
            rows = conn.execute("SELECT t.name, count(m.id) FROM topics t LEFT JOIN messages m ON m.topic_id = t.id GROUP BY t.name").fetchall()
            conn.close()
        for name, n in rows:
            counts[name] = counts.get(name, 0) + n
    return counts


def ros2_name(msgtype: str) -> str:
    """`pkg/Type` (recorders before Foxy) as `pkg/msg/Type`."""
    parts = msgtype.split("/")
    return msgtype if len(parts) == 3 else f"{parts[0]}/msg/{parts[-1]}"


def storage_files(recording: Path):
    """The storage files of a recording in order, and whether each message is zstd-compressed."""
    if recording.is_file():
        return [recording], False
    info = yaml.safe_load((recording / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    files = [recording / Path(p).name for p in info["relative_file_paths"]]
    return files, info.get("compression_mode", "").upper() == "MESSAGE"


def without_reader(recording: Path, ts):
    """topic -> [(time, normalized message or None)], read from the storage files themselves."""
    files, per_message = storage_files(recording)
    expected = {}
    for f in files:
        with tempfile.TemporaryDirectory() as tmp:
            if f.suffix == ".zstd":
                plain = Path(tmp) / f.stem
                with open(f, "rb") as src, open(plain, "wb") as dst:
                    zstandard.ZstdDecompressor().copy_stream(src, dst)
                f = plain
            if f.suffix == ".mcap":
                for topic, messages in mcap_messages(f).items():
                    expected.setdefault(topic, []).extend(messages)
                continue
            copy = Path(tmp) / ("copy_" + f.name)
            shutil.copy(f, copy)
            conn = sqlite3.connect(copy)
            for name, _ in conn.execute("SELECT name, type FROM topics").fetchall():
                expected.setdefault(name, [])
            rows = conn.execute("SELECT t.name, t.type, m.timestamp, m.data FROM messages m JOIN topics t ON m.topic_id = t.id ORDER BY m.timestamp, m.id").fetchall()
            conn.close()
        for name, msgtype, t, data in rows:
            if per_message:
                data = zstandard.ZstdDecompressor().decompress(data)
            try:
                value = cwr.norm(ts.deserialize_cdr(bytes(data), ros2_name(msgtype)))
            except Exception:  # no definition of the type here either: compared by count
                value = None
            expected[name].append((t, value))
    return expected


def with_any_reader(recording: Path, ts):
    """topic -> [(time, normalized message or None)], read by rosbags' AnyReader."""
    expected = {}
    with AnyReader([recording], default_typestore=ts) as reader:
        cwr.STORE = reader.typestore  # the types of the recording's own definitions too
        for c in reader.connections:
            expected.setdefault(c.topic, [])
        for c, t, raw in reader.messages():
            try:
                value = cwr.norm(reader.deserialize(raw, ros2_name(c.msgtype)))
            except Exception:  # a type rosbags has no definition of: compared by count
                value = None
            expected[c.topic].append((t, value))
    return expected


def main():
    recording, lake, report_path = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    msg_dirs = sys.argv[4:]
    report = json.loads(report_path.read_text())["ingested"][0]
    bag_file = report["bag_file"]
    topic_tables = {t["topic"]: t for t in report["topics"]}
    ts = typestore(msg_dirs)
    cwr.STORE = ts  # the normalizer looks fields up there
    expected, used = with_any_reader(recording, ts), "AnyReader"
    cwr.STORE = ts
    direct = without_reader(recording, ts)
    if sum(map(len, expected.values())) < sum(map(len, direct.values())):
        expected, used = direct, "storage files"
    counted = sqlite_counts(recording)
    failures = 0
    for topic in sorted(set(expected) | set(topic_tables)):
        theirs = expected.get(topic, [])
        entry = topic_tables.get(topic, {})
        ours = []
        for table in entry.get("tables", []):
            ours.extend(cwr.our_rows(lake, table, bag_file))
        raw = any("_raw_message" in r and r["_raw_message"] is not None for r in ours) or entry.get("first_error") and "kept raw" in str(entry.get("first_error"))
        sqlite_n = None if counted is None else counted.get(topic, 0)
        status, detail = "ok", None
        if len(ours) != len(theirs) or (sqlite_n is not None and sqlite_n != len(ours)):
            status, detail = "count mismatch", f"ours {len(ours)}, {used} {len(theirs)}, sqlite {sqlite_n}"
        elif raw or any(v is None for _, v in theirs):
            status = "counts only"
            detail = "kept raw (no definition); counts and log times compared"
            if sorted(t for t, _ in theirs) != sorted(r["log_time"] for r in ours):
                status = "log_time mismatch"
        else:
            theirs_sorted = sorted(theirs, key=lambda x: (x[0], repr(x[1])))
            ours_sorted = sorted(
                ((r["log_time"], {k: v for k, v in r.items() if k not in cwr.SKIP_COLUMNS}) for r in ours),
                key=lambda x: (x[0], repr(x[1])),
            )
            for i, ((t1, m1), (t2, m2)) in enumerate(zip(theirs_sorted, ours_sorted)):
                d = cwr.same(bytes_as_lists(m1), bytes_as_lists(m2), topic) if t1 == t2 else f"log_time {t1} != {t2}"
                if d:
                    status, detail = "value mismatch", f"message {i}: {d}"
                    break
        if status not in ("ok", "counts only"):
            failures += 1
        print(json.dumps({"topic": topic, "ours": len(ours), "reference": len(theirs), "reader": used, "sqlite": sqlite_n, "status": status, "detail": detail}))
    sys.stdout.flush()
    # Leave without library teardown (see compare_with_rosbags.py).
    os._exit(1 if failures else 0)


if __name__ == "__main__":
    main()
