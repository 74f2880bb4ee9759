"""The strongest plain-Python baseline we could write: Python `rosbags` decodes every message of a
ROS1 bag with the definitions stored in it and pyarrow writes one Parquet file per topic (nested
messages as structs and lists, byte arrays as binary, zstd) — the same job as `scenes ingest`
without the Delta log.

usage: rosbags_parquet.py BAG OUT_DIR    (prints a JSON line: messages, seconds)
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rosbags.rosbag1 import Reader
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

BATCH = 50_000


def to_py(value, store):
    """A decoded message as plain Python (dicts, lists, bytes) that pyarrow converts in bulk."""
    fields = getattr(value, "__dataclass_fields__", None)
    if fields is not None:
        if value.__msgtype__ in ("builtin_interfaces/msg/Time", "builtin_interfaces/msg/Duration"):
            return value.sec * 1_000_000_000 + value.nanosec
        return {name: to_py(getattr(value, name), store) for name in fields}
    if isinstance(value, np.ndarray):
        return value.tobytes() if value.dtype == np.uint8 else value.tolist()
    if isinstance(value, list):
        return [to_py(v, store) for v in value]
    return value


def main():
    bag, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    store = get_typestore(Stores.EMPTY)
    rows = {}
    writers = {}
    total = 0

    def flush(topic):
        table = pa.Table.from_pylist(rows[topic])
        if topic not in writers:
            name = topic.strip("/").replace("/", "_") or "topic"
            writers[topic] = pq.ParquetWriter(out / f"{name}.parquet", table.schema, compression="zstd")
        writers[topic].write_table(table)
        rows[topic] = []

    with Reader(bag) as reader:
        for c in reader.connections:
            store.register(get_types_from_msg(c.msgdef.data, c.msgtype))
        for conn, t, raw in reader.messages():
            msg = store.deserialize_ros1(raw, conn.msgtype)
            row = to_py(msg, store)
            row["log_time"] = t
            bucket = rows.setdefault(conn.topic, [])
            bucket.append(row)
            total += 1
            if len(bucket) >= BATCH:
                flush(conn.topic)
    for topic in list(rows):
        if rows[topic]:
            flush(topic)
    for w in writers.values():
        w.close()
    print(json.dumps({"messages": total, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
