"""Digest of every Delta table of a lake, read with the `deltalake` package (an independent
reader): {table: {bag_file: [rows, sha256 of the sorted rows]}}. Two lakes holding the same data
have the same digest, whatever order rows and files were written in.

usage: lake_digest.py LAKE_DIR
"""
import hashlib
import json
import sys
from pathlib import Path

from deltalake import DeltaTable


def row_key(row):
    return json.dumps(row, sort_keys=True, default=repr)


def digest_table(path):
    table = DeltaTable(str(path)).to_pyarrow_table()
    by_bag = {}
    for row in table.to_pylist():
        by_bag.setdefault(row.get("bag_file"), []).append(row_key(row))
    out = {}
    for bag, rows in by_bag.items():
        rows.sort()
        h = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        out[str(bag)] = [len(rows), h]
    return out


def main():
    lake = Path(sys.argv[1])
    tables = {}
    for log in sorted(lake.glob("**/_delta_log")):
        table = log.parent
        tables[str(table.relative_to(lake))] = digest_table(table)
    print(json.dumps(tables, sort_keys=True))


if __name__ == "__main__":
    main()
