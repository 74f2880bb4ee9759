"""Writes rosbag2 recordings with Python `rosbags` (an independent writer) for the rosbag2 tests:

  OUT/sqlite_defs/       .db3 with its message definitions (as ROS 2 Iron and later write it)
  OUT/sqlite_nodefs/     the same without the message_definitions table (as Humble writes it)
  OUT/sqlite_split/      two .db3 splits listed by one metadata.yaml, no definitions
  OUT/sqlite_zstd_file/  .db3 compressed whole (compression_mode FILE, zstd)
  OUT/sqlite_zstd_msg/   .db3 with each message compressed (compression_mode MESSAGE, zstd)
  OUT/mcap_split/        two MCAP splits listed by one metadata.yaml
  OUT/mcap_idl/          MCAP whose schemas are ROS 2 IDL (`ros2idl`), written as rosidl does
  OUT/lone.db3           a .db3 file without its folder

Every recording holds the topics of `write_messages`: a custom type with nested messages,
arrays, strings, times and a message type without fields (alone, in a fixed and in a variable
array), std_msgs/msg/String, and a topic with no message. The custom types' .msg files are
written to OUT/msg/ (the message path for the recordings without definitions).

Usage: make_rosbag2_fixtures.py OUT
"""
import shutil
import sqlite3
import sys
from pathlib import Path

import numpy as np
import yaml
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

DEFS = {
    "fixture_msgs/msg/Nothing": "uint8 ONLY_A_CONSTANT=7\n",
    "fixture_msgs/msg/Point2": "float32 x\nfloat32 y\n",
    "fixture_msgs/msg/Sample": (
        "std_msgs/Header header\n"
        "Point2[] points\nPoint2[2] corners\nfloat64[] values\nint16[3] rgb\nuint8[] blob\n"
        "string label\nstring[] names\nbool flag\nuint64 big\nint8 small\n"
        "builtin_interfaces/Duration age\n"
        "Nothing single\nNothing[2] fixed\nNothing[] variable\n"
    ),
}
MESSAGES = 40


def typestore():
    ts = get_typestore(Stores.ROS2_HUMBLE)
    types = {}
    for name, text in DEFS.items():
        types.update(get_types_from_msg(text, name))
    ts.register(types)
    return ts


def sample(ts, i):
    T = ts.types
    Point2, Nothing = T["fixture_msgs/msg/Point2"], T["fixture_msgs/msg/Nothing"]
    Header, Time, Duration = T["std_msgs/msg/Header"], T["builtin_interfaces/msg/Time"], T["builtin_interfaces/msg/Duration"]
    return T["fixture_msgs/msg/Sample"](
        header=Header(stamp=Time(sec=1_700_000_000 + i, nanosec=250_000_000), frame_id=f"cam{i % 2}"),
        points=[Point2(x=float(i + j) + 0.5, y=float(-j)) for j in range(i % 4)],
        corners=[Point2(x=1.0, y=2.0), Point2(x=float(i), y=-1.5)],
        values=np.linspace(0.0, 1.0, i % 5),
        rgb=np.array([i, -i, 300], dtype=np.int16),
        blob=np.frombuffer(bytes(range(i % 6)), dtype=np.uint8),
        label=f"héllo {i}",
        names=[f"n{j}" for j in range(i % 3)],
        flag=bool(i % 2),
        big=2**63 + i,
        small=-i,
        age=Duration(sec=i, nanosec=999),
        single=Nothing(),
        fixed=[Nothing(), Nothing()],
        variable=[Nothing()] * (i % 3),
    )


def write_messages(path: Path, ts, storage=StoragePlugin.SQLITE3, compression=None, first=0):
    writer = Writer(path, version=9, storage_plugin=storage)
    if compression is not None:
        writer.set_compression(compression, CompressionFormat.ZSTD)
    with writer:
        samples = writer.add_connection("/sample", "fixture_msgs/msg/Sample", typestore=ts)
        text = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=ts)
        writer.add_connection("/silent", "std_msgs/msg/String", typestore=ts)
        String = ts.types["std_msgs/msg/String"]
        for i in range(first, first + MESSAGES):
            t = 1_700_000_000_000_000_000 + i * 50_000_000
            writer.write(samples, t, ts.serialize_cdr(sample(ts, i), "fixture_msgs/msg/Sample"))
            if i % 2 == 0:
                writer.write(text, t + 1, ts.serialize_cdr(String(data=f"message {i}"), "std_msgs/msg/String"))


def drop_definitions(db3: Path):
    """The .db3 as ROS 2 Humble writes it: schema version 3, no message_definitions table."""
    with sqlite3.connect(db3) as conn:
        conn.execute("DROP TABLE IF EXISTS message_definitions")
        conn.execute("UPDATE schema SET schema_version = 3")


# The fixture types as rosidl writes them into `ros2idl` schemas: annotations, a typedef per
# fixed array, constants in a `<Type>_Constants` module, the placeholder member of a type
# without fields, every nested type's block after the root's. (Without rosidl's leading `//`
# comments and `#include` lines, which rosbags' IDL parser, the reference here, does not
# accept; our parser's handling of them is tested in src/decode/idl.rs.)
IDL_BLOCKS = {
    "fixture_msgs/msg/Point2": """
module fixture_msgs {
  module msg {
    struct Point2 {
      float x;

      float y;
    };
  };
};
""",
    "fixture_msgs/msg/Nothing": """
module fixture_msgs {
  module msg {
    module Nothing_Constants {
      const uint8 ONLY_A_CONSTANT = 7;
    };
    struct Nothing {
      uint8 structure_needs_at_least_one_member;
    };
  };
};
""",
    "fixture_msgs/msg/Sample": """

module fixture_msgs {
  module msg {
    typedef fixture_msgs::msg::Point2 fixture_msgs__msg__Point2__2[2];
    typedef int16 int16__3[3];
    typedef fixture_msgs::msg::Nothing fixture_msgs__msg__Nothing__2[2];
    @verbatim (language="comment", text=
      "A sample (with \\"quotes\\" and parentheses).")
    struct Sample {
      std_msgs::msg::Header header;

      sequence<fixture_msgs::msg::Point2> points;

      fixture_msgs__msg__Point2__2 corners;

      sequence<double> values;

      int16__3 rgb;

      sequence<uint8> blob;

      @verbatim (language="comment", text=
        "free text")
      string label;

      sequence<string> names;

      boolean flag;

      uint64 big;

      int8 small;

      builtin_interfaces::msg::Duration age;

      fixture_msgs::msg::Nothing single;

      fixture_msgs__msg__Nothing__2 fixed;

      sequence<fixture_msgs::msg::Nothing> variable;
    };
  };
};
""",
    "std_msgs/msg/Header": """

module std_msgs {
  module msg {
    struct Header {
      builtin_interfaces::msg::Time stamp;

      string frame_id;
    };
  };
};
""",
    "builtin_interfaces/msg/Time": """
module builtin_interfaces {
  module msg {
    struct Time {
      int32 sec;

      uint32 nanosec;
    };
  };
};
""",
    "builtin_interfaces/msg/Duration": """
module builtin_interfaces {
  module msg {
    struct Duration {
      int32 sec;

      uint32 nanosec;
    };
  };
};
""",
    "std_msgs/msg/String": """
module std_msgs {
  module msg {
    struct String {
      string data;
    };
  };
};
""",
}
IDL_DEPENDENCIES = {
    "fixture_msgs/msg/Sample": ["std_msgs/msg/Header", "builtin_interfaces/msg/Time", "fixture_msgs/msg/Point2", "builtin_interfaces/msg/Duration", "fixture_msgs/msg/Nothing"],
    "std_msgs/msg/String": [],
}


def idl_schema(name):
    blocks = [name] + IDL_DEPENDENCIES[name]
    sep = "=" * 80
    return "".join(f"{sep}\nIDL: {b}\n{IDL_BLOCKS[b].strip()}\n" for b in blocks)


def with_idl_schemas(recording: Path):
    """Rewrites the recording's MCAP file with every schema as ROS 2 IDL (same messages)."""
    from mcap.reader import make_reader
    from mcap.writer import Writer as McapWriter

    (path,) = [p for p in recording.iterdir() if p.suffix == ".mcap"]
    with open(path, "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        channels = dict(summary.channels)
        schemas = dict(summary.schemas)
        messages = [(m.channel_id, m.log_time, m.publish_time, m.data) for _, _, m in reader.iter_messages(log_time_order=True)]
    out = path.with_suffix(".tmp")
    with open(out, "wb") as f:
        writer = McapWriter(f)
        writer.start(profile="ros2", library="make_rosbag2_fixtures")
        schema_ids, channel_ids = {}, {}
        for sid, schema in schemas.items():
            schema_ids[sid] = writer.register_schema(name=schema.name, encoding="ros2idl", data=idl_schema(schema.name).encode())
        for cid, channel in channels.items():
            channel_ids[cid] = writer.register_channel(topic=channel.topic, message_encoding=channel.message_encoding, schema_id=schema_ids[channel.schema_id], metadata=dict(channel.metadata))
        for seq, (cid, log_time, publish_time, data) in enumerate(messages):
            writer.add_message(channel_id=channel_ids[cid], log_time=log_time, data=data, publish_time=publish_time, sequence=seq)
        writer.finish()
    out.replace(path)


def join_splits(out: Path, parts: list[Path], ext: str):
    """One recording whose storage files are `parts`' (each a one-file recording), in order."""
    out.mkdir()
    info = yaml.safe_load((parts[0] / "metadata.yaml").read_text())
    meta = info["rosbag2_bagfile_information"]
    names, counts = [], {}
    for k, part in enumerate(parts):
        (storage,) = [p for p in part.iterdir() if p.suffix == ext]
        name = f"{out.name}_{k}{ext}"
        shutil.copy(storage, out / name)
        names.append(name)
        part_meta = yaml.safe_load((part / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        for topic in part_meta["topics_with_message_count"]:
            counts[topic["topic_metadata"]["name"]] = counts.get(topic["topic_metadata"]["name"], 0) + topic["message_count"]
    meta["relative_file_paths"] = names
    meta.pop("files", None)
    meta["message_count"] = sum(counts.values())
    for topic in meta["topics_with_message_count"]:
        topic["message_count"] = counts[topic["topic_metadata"]["name"]]
    (out / "metadata.yaml").write_text(yaml.safe_dump(info, sort_keys=False))


def main():
    out = Path(sys.argv[1])
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    ts = typestore()
    write_messages(out / "sqlite_defs", ts)
    write_messages(out / "sqlite_nodefs", ts)
    drop_definitions(out / "sqlite_nodefs" / "sqlite_nodefs.db3")
    write_messages(out / "part_a", ts, first=0)
    write_messages(out / "part_b", ts, first=MESSAGES)
    for part in ("part_a", "part_b"):
        drop_definitions(out / part / f"{part}.db3")
    join_splits(out / "sqlite_split", [out / "part_a", out / "part_b"], ".db3")
    write_messages(out / "sqlite_zstd_file", ts, compression=CompressionMode.FILE)
    write_messages(out / "sqlite_zstd_msg", ts, compression=CompressionMode.MESSAGE)
    write_messages(out / "mcap_a", ts, storage=StoragePlugin.MCAP, first=0)
    write_messages(out / "mcap_b", ts, storage=StoragePlugin.MCAP, first=MESSAGES)
    join_splits(out / "mcap_split", [out / "mcap_a", out / "mcap_b"], ".mcap")
    write_messages(out / "mcap_idl", ts, storage=StoragePlugin.MCAP)
    with_idl_schemas(out / "mcap_idl")
    shutil.copy(out / "sqlite_nodefs" / "sqlite_nodefs.db3", out / "lone.db3")
    for scratch in ("part_a", "part_b", "mcap_a", "mcap_b"):
        shutil.rmtree(out / scratch)
    for name, text in DEFS.items():
        pkg, _, ty = name.split("/")
        path = out / "msg" / pkg / "msg" / f"{ty}.msg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for p in sorted(out.iterdir()):
        print(p)


if __name__ == "__main__":
    main()
