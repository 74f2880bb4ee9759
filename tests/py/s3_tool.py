"""Small S3 chores for the tests, done with boto3 (an independent client) against the endpoint in
$SCENES_TEST_S3_ENDPOINT: create buckets, upload files, list keys.

usage: s3_tool.py mb BUCKET...
       s3_tool.py get-url HTTPS_URL LOCAL_FILE   (a presigned URL, fetched without credentials)
       s3_tool.py put LOCAL_FILE s3://bucket/key
       s3_tool.py ls s3://bucket/prefix        (prints key, size and ETag per line)
"""
import os
import sys

import boto3
import boto3.s3.transfer


def client():
    return boto3.client("s3", endpoint_url=os.environ["SCENES_TEST_S3_ENDPOINT"])


def split(uri):
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def main():
    command, args = sys.argv[1], sys.argv[2:]
    s3 = client()
    if command == "get-url":
        import time
        import urllib.request
        url, out = args
        for attempt in range(5):
            try:
                with urllib.request.urlopen(url) as answer, open(out, "wb") as f:
                    f.write(answer.read())
                return
            except urllib.error.HTTPError as e:
                # The fault proxy answers some requests with 500/503: retry, as a client would.
                if e.code < 500 or attempt == 4:
                    raise SystemExit(f"GET {url}: {e.code} {e.read()[:200]!r}")
                time.sleep(0.2)
        return
    if command == "mb":
        for bucket in args:
            s3.create_bucket(Bucket=bucket)
    elif command == "put":
        bucket, key = split(args[1])
        part = int(os.environ.get("S3_TOOL_PART_MB", "8")) * 1024 * 1024
        config = boto3.s3.transfer.TransferConfig(multipart_chunksize=part, multipart_threshold=part)
        s3.upload_file(args[0], bucket, key, Config=config)
    elif command == "ls":
        bucket, prefix = split(args[0])
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                print(obj["Key"], obj["Size"], obj["ETag"])
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
