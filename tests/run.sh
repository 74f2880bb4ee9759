#!/usr/bin/env bash
# The whole test suite: installs what the tests need (a Python venv with rosbags, pyarrow and
# deltalake, mcap readers, Apache Spark and DuckDB: the independent implementations we compare against), starts DynamoDB
# Local on 127.0.0.1 (stopped at exit), builds once and runs every test. Safe to run repeatedly; the venv and the build are reused.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import rosbags, pyarrow, deltalake, mcap_ros2, cfnlint, moto, boto3, pyspark, duckdb, sqlglot, PIL" 2>/dev/null; then
    echo "== installing Python test tools into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/py/requirements.txt
fi
export SCENES_TEST_PYTHON="$PWD/$VENV/bin/python"

if [ ! -d ../shared/bags ]; then
    if [ "${CI:-}" = true ]; then
        echo "error: ../shared/bags not found (CI=true: the tests on real-world bags must run)" >&2
        exit 1
    fi
    echo "note: ../shared/bags not found; tests on real-world bags will say SKIPPED and the rest runs"
fi

# A real headless browser for the report test (Debian's chromium), when we may install it.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium (apt-get)"
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || true
fi

echo "== cfn-lint deploy/*.yaml"
"$VENV/bin/cfn-lint" deploy/*.yaml

# Local AWS servers on 127.0.0.1, stopped when this script exits.
source tests/aws-local.sh

echo "== building"
cargo build --tests --quiet

echo "== running tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --no-fail-fast
else
    cargo test --no-fail-fast
fi
