"""Writes a ROS1 bag with rosbags (an independent writer) whose viewer state comes from latched
and static topics: `/tf_static` (recorded as latching) and `/camera/front/camera_info` once at
the start, `/map` twice (latching), and `/chatter` every 100 ms for 20 s.

usage: make_latched_bag.py OUT.bag START_NS
"""
import sys
from pathlib import Path

from rosbags.rosbag1 import Writer
from rosbags.typesys import Stores, get_typestore

STORE = get_typestore(Stores.ROS1_NOETIC)


def main():
    out, t0 = Path(sys.argv[1]), int(sys.argv[2])
    String = STORE.types["std_msgs/msg/String"]
    with Writer(out) as writer:
        tf_static = writer.add_connection("/tf_static", "std_msgs/msg/String", typestore=STORE, latching=1)
        info = writer.add_connection("/camera/front/camera_info", "std_msgs/msg/String", typestore=STORE)
        map_topic = writer.add_connection("/map", "std_msgs/msg/String", typestore=STORE, latching=1)
        chatter = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=STORE)
        ser = lambda text: STORE.serialize_ros1(String(data=text), "std_msgs/msg/String")
        writer.write(tf_static, t0, ser("base_link->camera"))
        writer.write(info, t0 + 50_000_000, ser("fx=1000"))
        writer.write(map_topic, t0 + 60_000_000, ser("map v1"))
        writer.write(map_topic, t0 + 5_000_000_000, ser("map v2"))
        for k in range(200):
            writer.write(chatter, t0 + 100_000_000 * k + 1_000_000, ser(f"hello {k}"))


if __name__ == "__main__":
    main()
