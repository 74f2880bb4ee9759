"""MCAP fixtures made from a ROS1 bag by independent writers (PyPI `mcap`, `mcap-ros2-support`):

  OUT/ros2/<stem>.mcap      ROS 2 profile: every message converted to its ROS 2 type (std_msgs/Header
                            without seq, builtin_interfaces/Time) and CDR-encoded by mcap-ros2-support;
                            zstd chunks of 64 KiB.
  OUT/ros1/<stem>.mcap      ROS1 profile: the bag's own bytes and definitions, lz4 chunks.
  OUT/unchunked/<stem>.mcap ROS1 profile without chunks (messages as top-level records).

usage: make_mcap_fixtures.py BAG OUT
"""
import sys
from pathlib import Path

from mcap.writer import CompressionType, Writer
from mcap_ros2.writer import Writer as Ros2Writer
from rosbags.rosbag1 import Reader
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from compare_with_rosbags import STORE, norm


def ros2_name(ros1_type):
    parts = ros1_type.split("/")
    return ros1_type if len(parts) == 3 else f"{parts[0]}/msg/{parts[-1]}"


def ros2_value(v):
    """A ROS1 message (normalized by `norm`: times as ns) as a ROS 2 message dict."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if k == "seq" and "stamp" in v and "frame_id" in v:
                continue  # ROS 2 std_msgs/Header has no seq
            out[k] = ros2_value(x)
        return out
    if isinstance(v, list):
        return [ros2_value(x) for x in v]
    if isinstance(v, bytes):
        return v
    return v


def times_to_ros2(value, msgtype, store):
    """Replaces ns integers of time fields by {sec, nanosec}, following the ROS 2 type."""
    _consts, fields = store.fielddefs[msgtype]
    out = dict(value)
    for name, desc in fields:
        if name not in out:
            continue
        kind, detail = desc
        if kind == 2:  # nested message
            sub = detail[0] if isinstance(detail, tuple) else detail
            if sub in ("builtin_interfaces/msg/Time", "builtin_interfaces/msg/Duration"):
                ns = out[name]
                out[name] = {"sec": ns // 1_000_000_000, "nanosec": ns % 1_000_000_000}
            else:
                out[name] = times_to_ros2(out[name], sub, store)
        elif kind in (3, 4):  # arrays / sequences
            elem = detail[0]
            if elem[0] == 2:
                sub = elem[1][0] if isinstance(elem[1], tuple) else elem[1]
                out[name] = [times_to_ros2(x, sub, store) for x in out[name]]
    return out


def main():
    bag, out = Path(sys.argv[1]), Path(sys.argv[2])
    stem = bag.stem
    for sub in ("ros2", "ros1", "unchunked"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    ros1_store = STORE  # the store `norm` reads field lists from
    ros2_store = get_typestore(Stores.ROS2_HUMBLE)
    with Reader(bag) as reader:
        conns = list(reader.connections)
        for c in conns:
            ros1_store.register(get_types_from_msg(c.msgdef.data, c.msgtype))
            # Custom types: the ROS1 text read as ROS 2 (bare Header -> std_msgs/Header without seq).
            types = get_types_from_msg(c.msgdef.data, ros2_name(c.msgtype))
            ros2_store.register({k: v for k, v in types.items() if k not in ros2_store.fielddefs})
        ros2_file = open(out / "ros2" / f"{stem}.mcap", "wb")
        ros2 = Ros2Writer(ros2_file, chunk_size=64 * 1024, compression=CompressionType.ZSTD)
        schemas = {c.id: ros2.register_msgdef(ros2_name(c.msgtype), ros2_store.generate_msgdef(ros2_name(c.msgtype), ros_version=2)[0]) for c in conns}

        writers = {}
        for sub, chunked in (("ros1", True), ("unchunked", False)):
            f = open(out / sub / f"{stem}.mcap", "wb")
            w = Writer(f, chunk_size=64 * 1024, compression=CompressionType.LZ4, use_chunking=chunked)
            w.start(profile="ros1", library="scenes test fixtures")
            ids = {}
            for c in conns:
                sid = w.register_schema(name=c.msgtype, encoding="ros1msg", data=c.msgdef.data.encode())
                ids[c.id] = w.register_channel(topic=c.topic, message_encoding="ros1", schema_id=sid, metadata={"md5sum": c.digest})
            writers[sub] = (f, w, ids)

        for c, t, raw in reader.messages():
            for f, w, ids in writers.values():
                w.add_message(channel_id=ids[c.id], log_time=t, publish_time=t, data=raw)
            value = norm(ros1_store.deserialize_ros1(raw, c.msgtype))
            value = times_to_ros2(ros2_value(value), ros2_name(c.msgtype), ros2_store)
            ros2.write_message(c.topic, schemas[c.id], value, log_time=t, publish_time=t)
        ros2.finish()
        ros2_file.close()
        for f, w, _ in writers.values():
            w.finish()
            f.close()


if __name__ == "__main__":
    main()
