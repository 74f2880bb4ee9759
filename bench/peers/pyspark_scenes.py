"""The pipeline we replace, sync + detect, written in PySpark (local[2]) from its description
(../shared/reference.md §6-7), as the benchmark peer of `scenes batch`:

  sync:   every topic's messages (one Parquet file per topic, from rosbags_parquet.py) packed into
          a JSON payload, unioned, pivoted by receive time, unioned with a 100 ms master timeline
          aligned to epoch boundaries, forward-filled with last(ignorenulls) over a window per bag;
  detect: per tick, each detection's four box corners against the nearest point (< 1000 px) of
          every lane line; a corner between two consecutive lines (x only, inclusive) is in lane;
          an object is in lane with >= 1 corner in lane; people in lane per tick; scenes are runs
          of ticks with >= 1 person preceded by a tick with 0 (lag/lead over transitions).

usage: pyspark_scenes.py PARQUET_DIR BAG_FILE OUT_DIR   (prints a JSON line: scenes, seconds)
"""
import json
import math
import os
import sys
import time
from pathlib import Path

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

DETECTIONS = "perception_rgb_front_detections"
LANES = "perception_rgb_front_lane_points"


def lane_assign(det_payload, lane_payload):
    """objects_in_lane for one tick (the reference's identify_nearest_lane_point + point_in_lane)."""
    if det_payload is None or lane_payload is None:
        return None
    detections = json.loads(det_payload).get("detections") or []
    lanes = json.loads(lane_payload).get("lanes") or []
    out = []
    for d in detections:
        b = d["bbox"]
        x_min, x_max = b["center_x"] - b["width"] / 2, b["center_x"] + b["width"] / 2
        y_min, y_max = b["center_y"] - b["height"] / 2, b["center_y"] + b["height"] / 2
        corners_in_lane, hit = 0, []
        for cx, cy in ((x_min, y_min), (x_max, y_min), (x_min, y_max), (x_max, y_max)):
            nearest = []
            for lane in lanes:
                best, best_d = None, 1000.0
                for p in lane.get("points") or []:
                    dist = math.hypot(p["x"] - cx, p["y"] - cy)
                    if dist < best_d:
                        best, best_d = p, dist
                nearest.append(best)
            for i in range(len(nearest) - 1):
                a, c = nearest[i], nearest[i + 1]
                if a is None or c is None:
                    continue
                if a["x"] >= cx >= c["x"] or a["x"] <= cx <= c["x"]:
                    corners_in_lane += 1
                    label = f"between_{i}_and_{i + 1}"
                    if label not in hit:
                        hit.append(label)
                    break
        if corners_in_lane >= 1:
            out.append({"Class": d["class_label"], "corners_in_lane": corners_in_lane, "lanes": hit})
    return out


OBJECTS = T.ArrayType(
    T.StructType(
        [
            T.StructField("Class", T.StringType()),
            T.StructField("corners_in_lane", T.IntegerType()),
            T.StructField("lanes", T.ArrayType(T.StringType())),
        ]
    )
)


def main():
    parquet_dir, bag_file, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    # Spark's Python workers must use this interpreter (with pyarrow), not the system one.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    started = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("scenes-reference")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")

    # 1-2. Load every topic, pack its columns into a JSON payload, union.
    signals = None
    topics = []
    for f in sorted(parquet_dir.glob("*.parquet")):
        topic = f.stem
        df = spark.read.parquet(str(f))
        cols = [c for c in df.columns if c != "log_time"]
        df = df.select(
            (F.col("log_time") / F.lit(1e9)).alias("Time"),
            F.lit(bag_file).alias("bag_file"),
            F.lit(topic).alias("topic"),
            F.to_json(F.struct(*cols)).alias("payload"),
        )
        signals = df if signals is None else signals.unionByName(df)
        topics.append(topic)

    # 3. Master timeline: ticks k/10 for k in [floor(10 t_min), floor(10 t_max)).
    bounds = signals.groupBy("bag_file").agg(F.min("Time").alias("t0"), F.max("Time").alias("t1")).collect()
    master = None
    for row in bounds:
        ticks = spark.range(int(row.t0 / 0.1), int(row.t1 / 0.1)).select(
            (F.col("id") * F.lit(0.1)).alias("Time"), F.lit(row.bag_file).alias("bag_file")
        )
        master = ticks if master is None else master.unionByName(ticks)
    master = master.withColumn("source", F.lit("master_time_df"))
    for t in topics:
        master = master.withColumn(t, F.lit(None).cast("string"))

    # 4. Pivot the signals by receive time.
    pivoted = (
        signals.groupBy("bag_file", "Time").pivot("topic", topics).agg(F.first("payload")).withColumn("source", F.lit("signals_df"))
    )

    # 5-6. Union and forward-fill: latest payload with Time <= tick, per topic.
    w = Window.partitionBy("bag_file").orderBy("Time").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    merged = master.unionByName(pivoted.select(master.columns))
    synced = merged.select(
        "bag_file", "Time", "source", *[F.last(t, ignorenulls=True).over(w).alias(f"{t}_clean") for t in topics]
    ).where(F.col("source") == "master_time_df")
    synced.drop("source").write.mode("overwrite").partitionBy("bag_file").parquet(f"{out}/synchronized_topics")

    # 7. Detect: lane assignment per tick, people in lane, scenes from transitions.
    synced = spark.read.parquet(f"{out}/synchronized_topics")
    assign = F.udf(lane_assign, OBJECTS)
    ticks = synced.select("bag_file", "Time", assign(F.col(f"{DETECTIONS}_clean"), F.col(f"{LANES}_clean")).alias("objects_in_lane"))
    ticks = ticks.withColumn(
        "num_people_in_scene",
        F.when(F.col("objects_in_lane").isNull(), None).otherwise(F.size(F.filter("objects_in_lane", lambda o: o["Class"] == "person"))),
    )
    ticks.write.mode("overwrite").partitionBy("bag_file").parquet(f"{out}/scene_detections")
    win = Window.partitionBy("bag_file").orderBy("Time")
    transitions = (
        ticks.withColumn("lag1", F.lag("num_people_in_scene", 1).over(win))
        .where(F.col("num_people_in_scene").isNotNull() & F.col("lag1").isNotNull())
        .withColumn(
            "scene_state",
            F.when((F.col("num_people_in_scene") > 0) & (F.col("lag1") == 0), "start").when(
                (F.col("num_people_in_scene") == 0) & (F.col("lag1") > 0), "end"
            ),
        )
        .where(F.col("scene_state").isNotNull())
        .withColumn("end_time", F.lead("Time", 1).over(win))
        .where(F.col("scene_state") == "start")
    )
    scenes = transitions.select(
        "bag_file",
        F.col("Time").alias("start_time"),
        "end_time",
        F.col("num_people_in_scene").alias("num_people_in_scene_start"),
        (F.col("end_time") - F.col("Time")).alias("scene_length"),
    ).withColumn("scene_id", F.concat(F.col("bag_file"), F.lit("_PersonInLane_"), F.col("start_time").cast("string")))
    rows = scenes.collect()
    spark.stop()
    print(json.dumps({"scenes": len(rows), "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
