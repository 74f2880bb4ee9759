"""Writes ROS1 bags with Python `rosbags` (an independent writer) for the differential tests:
none, bz2 and lz4 chunks; custom nested types; arrays of messages inside arrays of messages;
fixed arrays; time and duration; several connections on one topic; a message type without
fields (only a constant) nested alone, in a fixed and in a variable array.

Usage: make_rosbags_fixtures.py OUTDIR
"""
import sys
from pathlib import Path

import numpy as np
from rosbags.rosbag1 import Writer
from rosbags.typesys import Stores, get_typestore, get_types_from_msg

DEFS = {
    "fixture_msgs/msg/Point2": "# a point in the image\nfloat32 x\nfloat32 y\n",
    "fixture_msgs/msg/Polyline": "uint8 KIND_SOLID=0\nuint8 KIND_DASHED = 1\nstring NAME=lane # not a comment\nuint8 kind\nPoint2[] points\nint16[3] rgb\n",
    "fixture_msgs/msg/Road": "Header header\nfixture_msgs/Polyline[] lines\nPolyline[2] edges\ntime[] seen\nduration[2] windows\n",
    "fixture_msgs/msg/Nothing": "uint8 ONLY_A_CONSTANT=7\n",
    "fixture_msgs/msg/Holder": "Nothing single\nNothing[2] fixed\nNothing[] variable\nint32 after\n",
    "fixture_msgs/msg/Everything": (
        "bool b\nint8 i8\nuint8 u8\nint16 i16\nuint16 u16\nint32 i32\nuint32 u32\n"
        "int64 i64\nuint64 u64\nfloat32 f32\nfloat64 f64\nstring s\ntime t\nduration d\n"
        "byte by\nchar ch\nuint8[] blob\nuint8[4] quad\nfloat64[] values\nstring[] names\n"
        "bool[3] flags\nint8[] small\nfixture_msgs/Road road\n"
    ),
}


def typestore():
    ts = get_typestore(Stores.ROS1_NOETIC)
    types = {}
    for name, text in DEFS.items():
        types.update(get_types_from_msg(text, name))
    ts.register(types)
    return ts


def build(ts, i):
    T = ts.types
    Time = T["builtin_interfaces/msg/Time"]
    Duration = T["builtin_interfaces/msg/Duration"]
    Point2 = T["fixture_msgs/msg/Point2"]
    Polyline = T["fixture_msgs/msg/Polyline"]
    Road = T["fixture_msgs/msg/Road"]
    Header = T["std_msgs/msg/Header"]

    def line(k, n):
        pts = [Point2(x=float(k * 10 + j) + 0.25, y=float(700 - j * 40)) for j in range(n)]
        return Polyline(kind=k % 2, points=pts, rgb=np.array([k, -k, 300 + i], dtype=np.int16))

    road = Road(
        header=Header(seq=i, stamp=Time(sec=1_600_000_000 + i, nanosec=123_456_789), frame_id="cam"),
        lines=[line(k, (i + k) % 5) for k in range(i % 4)],
        edges=[line(7, 2), line(8, 0)],
        seen=[Time(sec=i, nanosec=j) for j in range(i % 3)],
        windows=[Duration(sec=-i, nanosec=5), Duration(sec=i, nanosec=999_999_999)],
    )
    return T["fixture_msgs/msg/Everything"](
        b=bool(i % 2), i8=-i, u8=250, i16=-30000, u16=65000, i32=-2_000_000_000, u32=4_000_000_000,
        i64=-(2**62) + i, u64=2**63 + 7, f32=np.float32(1.5 + i), f64=float("nan") if i == 3 else 2.0**-i,
        s=f"héllo {i}", t=Time(sec=i, nanosec=1), d=Duration(sec=-1, nanosec=500), by=-5, ch=200,
        blob=np.frombuffer(bytes(range(i % 7)), dtype=np.uint8), quad=np.array([1, 2, 3, i % 256], dtype=np.uint8),
        values=np.linspace(0, 1, i % 6), names=[f"n{j}" for j in range(i % 3)],
        flags=np.array([True, False, bool(i % 2)]), small=np.array([-1, 0, 1][: i % 4], dtype=np.int8), road=road,
    )


def write(path: Path, compression, ts):
    writer = Writer(path)
    if compression is not None:
        writer.set_compression(compression)
    writer.chunk_threshold = 4096  # many small chunks: exercises chunk ranges
    writer.open()
    everything = writer.add_connection("/everything", "fixture_msgs/msg/Everything", typestore=ts, callerid="/a")
    second = writer.add_connection("/everything", "fixture_msgs/msg/Everything", typestore=ts, callerid="/b")
    road = writer.add_connection("/road", "fixture_msgs/msg/Road", typestore=ts)
    holder = writer.add_connection("/holder", "fixture_msgs/msg/Holder", typestore=ts)
    T = ts.types
    Nothing, Holder = T["fixture_msgs/msg/Nothing"], T["fixture_msgs/msg/Holder"]
    for i in range(60):
        t = 1_600_000_000_000_000_000 + i * 50_000_000
        msg = build(ts, i)
        writer.write(everything if i % 3 else second, t, ts.serialize_ros1(msg, "fixture_msgs/msg/Everything"))
        writer.write(road, t + 1, ts.serialize_ros1(msg.road, "fixture_msgs/msg/Road"))
        held = Holder(single=Nothing(), fixed=[Nothing(), Nothing()], variable=[Nothing()] * (i % 3), after=-i)
        writer.write(holder, t + 2, ts.serialize_ros1(held, "fixture_msgs/msg/Holder"))
    writer.close()


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    ts = typestore()
    for name, comp in [("none", None), ("bz2", Writer.CompressionFormat.BZ2), ("lz4", Writer.CompressionFormat.LZ4)]:
        path = out / f"rosbags_{name}.bag"
        if path.exists():
            path.unlink()
        write(path, comp, ts)
        print(path)


if __name__ == "__main__":
    main()
