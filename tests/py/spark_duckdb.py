"""Apache Spark and DuckDB read every table of our lakes with their default settings, and agree.

Usage: spark_duckdb.py REPORT.json LAKE [LAKE...]

For each Delta table of each lake (topics/*, synced, enriched, scenes) the files of its current
snapshot are listed by the `deltalake` package (Spark's Delta reader needs jars from a registry
we cannot reach, so the snapshot's Parquet files are what Spark reads). Then:
- Spark 3.5 reads them with `spark.read.option("basePath", table).parquet(*files)`: default
  settings, partition discovery of `bag_file=...` directories;
- DuckDB reads them with `read_parquet([...], hive_partitioning = true)`.
Per table: the row counts, and per column a checksum of its values (each value made canonical:
structs as field maps, timestamps as µs since the epoch, decimals as integers, bytes by their
SHA-1; the rows' values sorted, so row order does not matter). The report lists every table
with Spark's outcome; the exit status is 1 when a table fails to read or the readers differ.
"""

import datetime
import decimal
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path
from urllib.parse import unquote

# Naive datetimes (Spark's) and aware ones (DuckDB's) both mean UTC instants here. This is the
# process's clock zone, not a reader setting.
os.environ["TZ"] = "UTC"
time.tzset()
# Spark binds its driver here (no external interface needed).
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

import duckdb  # noqa: E402
from deltalake import DeltaTable  # noqa: E402
from pyspark.sql import Row, SparkSession  # noqa: E402

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def canonical(v):
    """A reader's value as plain JSON-able data that both readers' values map to alike."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return "nan" if math.isnan(v) else v
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else str(v)
    if isinstance(v, datetime.datetime):
        aware = v if v.tzinfo else v.replace(tzinfo=datetime.timezone.utc)
        delta = aware - EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(v, datetime.timedelta):
        return (v.days * 86_400 + v.seconds) * 1_000_000 + v.microseconds
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "sha1:" + hashlib.sha1(bytes(v)).hexdigest()
    if isinstance(v, Row):
        return {k: canonical(x) for k, x in v.asDict(recursive=False).items()}
    if isinstance(v, dict):
        return {k: canonical(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [canonical(x) for x in v]
    raise TypeError(f"no canonical form for {type(v).__name__}")


def checksum(values) -> str:
    lines = sorted(json.dumps(canonical(v), sort_keys=True) for v in values)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def snapshot_files(table_dir: Path) -> list[str]:
    return [unquote(uri.removeprefix("file://")) for uri in DeltaTable(str(table_dir)).file_uris()]


def lake_tables(lake: Path):
    for table_dir in sorted((lake / "topics").iterdir()) if (lake / "topics").is_dir() else []:
        yield table_dir.name, table_dir
    for name in ("synced", "enriched", "scenes"):
        if (lake / name / "_delta_log").is_dir():
            yield name, lake / name


def spark_columns(spark, table_dir: Path, files: list[str]):
    df = spark.read.option("basePath", str(table_dir)).parquet(*files)
    rows = df.collect()
    return {name: [r[i] for r in rows] for i, name in enumerate(df.columns)}, len(rows)


def duckdb_columns(files: list[str]):
    rel = duckdb.sql(f"SELECT * FROM read_parquet({json.dumps(files)}, hive_partitioning = true)")
    rows = rel.fetchall()
    return {name: [r[i] for r in rows] for i, name in enumerate(rel.columns)}, len(rows)


def spark_cause(text: str) -> str:
    """The line of a Spark failure that says what went wrong (Py4J wraps it in a Java trace)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    causes = [line for line in lines if line.startswith("Caused by:")]
    for line in causes[-1:] + lines:
        if "Exception:" in line and not line.startswith("py4j"):
            return line.split("Exception:", 1)[1].strip()[:160]
    return lines[0][:160] if lines else "unknown"


def compare_table(spark, lake: Path, name: str, table_dir: Path) -> dict:
    files = snapshot_files(table_dir)
    entry = {"lake": lake.name, "table": name, "files": len(files)}
    if not files:
        # A table whose topic had no messages: its log has a schema and no data file.
        entry.update(rows=0, spark="no data file", equal=True)
        return entry
    duck, duck_rows = duckdb_columns(files)
    entry["rows"] = duck_rows
    try:
        ours, spark_rows = spark_columns(spark, table_dir, files)
    except Exception as e:  # Spark's own error text is the finding
        entry["spark"] = "error: " + spark_cause(str(e))
        return entry
    entry["spark"] = "ok"
    problems = []
    if spark_rows != duck_rows:
        problems.append(f"rows: spark {spark_rows}, duckdb {duck_rows}")
    if sorted(ours) != sorted(duck):
        problems.append(f"columns: spark {sorted(ours)}, duckdb {sorted(duck)}")
    for column in sorted(set(ours) & set(duck)):
        a, b = checksum(ours[column]), checksum(duck[column])
        if a != b:
            problems.append(f"column {column}: spark {a}, duckdb {b}")
    entry["columns"] = len(ours)
    entry["equal"] = not problems
    if problems:
        entry["problems"] = problems
    return entry


def main():
    report_path = Path(sys.argv[1])
    lakes = [Path(p) for p in sys.argv[2:]]
    spark = SparkSession.builder.master("local[2]").appName("scenes-lake-check").config("spark.ui.enabled", "false").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    spark_version = spark.version
    results = []
    try:
        for lake in lakes:
            for name, table_dir in lake_tables(lake):
                results.append(compare_table(spark, lake, name, table_dir))
    finally:
        spark.stop()
    report_path.write_text(json.dumps({"spark": spark_version, "duckdb": duckdb.__version__, "tables": results}, indent=1))
    print(f"{'lake':<14} {'table':<44} {'rows':>7}  spark default settings  values vs duckdb")
    for r in results:
        verdict = "equal" if r.get("equal") else ("-" if "equal" not in r else "DIFFER: " + "; ".join(r["problems"])[:300])
        print(f"{r['lake']:<14} {r['table']:<44} {r['rows']:>7}  {r['spark']:<22}  {verdict}")
    failed = [r for r in results if not r.get("equal")]
    if not results:
        print("no tables found", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
