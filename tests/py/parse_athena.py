"""Parses Athena DDL (from `scenes catalog athena`, on stdin) with sqlglot's Athena dialect: the
Hive grammar Athena uses for DDL, Trino's for views. Prints one line per statement (its kind and
the name it creates); exits 1 naming the first statement that does not parse.
"""
import sys

import sqlglot
from sqlglot import exp


def main():
    statements = [s.strip() for s in sys.stdin.read().split(";") if s.strip()]
    for statement in statements:
        try:
            tree = sqlglot.parse_one(statement, dialect="athena", error_level=sqlglot.ErrorLevel.RAISE)
        except sqlglot.errors.ParseError as e:
            print(f"does not parse: {statement}\n{e}", file=sys.stderr)
            return 1
        if not isinstance(tree, exp.Create):
            print(f"not a CREATE: {statement}", file=sys.stderr)
            return 1
        kind = tree.args.get("kind")
        name = tree.this.sql(dialect="athena") if tree.this is not None else "?"
        if kind == "VIEW":
            # The view's query alone, as Trino reads it.
            sqlglot.parse_one(tree.expression.sql(dialect="trino"), dialect="trino", error_level=sqlglot.ErrorLevel.RAISE)
        print(f"{kind} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
