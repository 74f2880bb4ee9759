"""Reads a Glue database back with boto3 (an independent client) from the local Glue (moto) at
$SCENES_TEST_S3_ENDPOINT and prints it as JSON: per table its type, parameters, location,
columns and partition keys, and for a Presto view its decoded SQL and columns.

usage: glue_tool.py tables DATABASE
"""
import base64
import json
import os
import sys

import boto3


def view_definition(text):
    prefix, suffix = "/* Presto View: ", " */"
    if not (text or "").startswith(prefix):
        return None
    return json.loads(base64.b64decode(text[len(prefix):-len(suffix)]))


def main():
    command, database = sys.argv[1], sys.argv[2]
    if command != "tables":
        raise SystemExit(f"unknown command {command}")
    glue = boto3.client("glue", endpoint_url=os.environ["SCENES_TEST_S3_ENDPOINT"])
    tables = []
    for page in glue.get_paginator("get_tables").paginate(DatabaseName=database):
        for t in page["TableList"]:
            sd = t.get("StorageDescriptor", {})
            tables.append({
                "name": t["Name"],
                "type": t.get("TableType"),
                "parameters": t.get("Parameters", {}),
                "location": sd.get("Location"),
                "serde_path": sd.get("SerdeInfo", {}).get("Parameters", {}).get("path"),
                "columns": [[c["Name"], c["Type"]] for c in sd.get("Columns", [])],
                "partition_keys": [[c["Name"], c["Type"]] for c in t.get("PartitionKeys", [])],
                "view": view_definition(t.get("ViewOriginalText")),
            })
    print(json.dumps(sorted(tables, key=lambda t: t["name"])))


if __name__ == "__main__":
    main()
