"""The import graph of the crate's modules, from the source: one edge per file that names
another (`crate::a::b`, `super::x`, `use` lists with braces), test modules left out.

Prints the edges as `file -> file: names` and checks the structure the crate promises
(src/lib.rs): no import circles between files, and no edge from a lower layer to a higher one
or between two stages. Exits 1 and names the offending edges when either is broken.

usage: module_graph.py SRC_DIR [--edges]
"""
import collections
import os
import re
import sys

# Layers, lowest first (src/lib.rs). A module may name modules of its own layer or below;
# stages (ingest, sync, detect) may not name each other.
LAYERS = {
    "failpoint": 0, "source": 1, "bag": 2, "decode": 3, "lake": 4, "meta": 4, "error": 5,
    "ingest": 6, "sync": 6, "detect": 6, "info": 6, "split": 6, "clip": 6, "generate": 6, "fuzz_entry": 6,
    "batch": 7, "query": 8, "catalog": 8, "report": 8, "config": 9, "cli": 10,
}
STAGES = {"ingest", "sync", "detect"}
PATH = re.compile(r"\b(crate|super)::((?:[A-Za-z_0-9]+::)*)(\{[^;]*?\}(?=\s*;)|[A-Za-z_0-9]+)", re.S)


def module_of(root, path):
    parts = os.path.relpath(path, root)[:-3].split(os.sep)
    return tuple(parts[:-1]) if parts[-1] == "mod" else tuple(parts)


def split_items(inner):
    items, depth, current = [], 0, ""
    for ch in inner:
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += ch
    items.append(current.strip())
    return [i for i in items if i]


def expand(prefix, tail):
    if not tail.startswith("{"):
        return [prefix + [tail]]
    out = []
    for item in split_items(tail[1:-1]):
        m = re.match(r"((?:[A-Za-z_0-9]+::)*)(\{.*\}|[A-Za-z_0-9*]+)", item, re.S)
        if m:
            out += expand(prefix + [p for p in m.group(1).split("::") if p], m.group(2))
    return out


def without_test_modules(text):
    """The text without `#[cfg(test)] mod … { … }` blocks, wherever they stand in the file."""
    out, pos = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([a-z]+\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < pos:
            continue
        out.append(text[pos : m.start()])
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        pos = i
    out.append(text[pos:])
    return "".join(out)


def edges(root):
    files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".rs")]
    modules = {module_of(root, f): f for f in files}
    graph = collections.defaultdict(lambda: collections.defaultdict(set))
    for path in files:
        text = without_test_modules(re.sub(r"//.*", "", open(path, encoding="utf-8").read()))
        me = module_of(root, path)
        for m in PATH.finditer(text):
            # `super` of module a/b (file a/b.rs or a/b/mod.rs) is a.
            base = [] if m.group(1) == "crate" else list(me[:-1])
            prefix = base + [p for p in m.group(2).split("::") if p]
            while "super" in prefix:
                i = prefix.index("super")
                prefix = prefix[: i - 1] + prefix[i + 1 :]
            for parts in expand(prefix, m.group(3)):
                target = next((tuple(parts[:i]) for i in range(len(parts), 0, -1) if tuple(parts[:i]) in modules), None)
                if target and target != me and target not in (("lib",), ("main",)):
                    graph[me][target].add("::".join(parts[len(target):]) or "(module)")
    return graph


def cycles(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted("/".join(c) for c in component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def main():
    root = sys.argv[1]
    graph = edges(root)
    lines = [f"{'/'.join(a)} -> {'/'.join(b)}: {', '.join(sorted(n))}" for a in sorted(graph) for b, n in sorted(graph[a].items())]
    if "--edges" in sys.argv:
        print("\n".join(lines))
    problems = [f"import circle: {' <-> '.join(c)}" for c in cycles(graph)]
    for a in sorted(graph):
        for b, names in sorted(graph[a].items()):
            ta, tb = a[0], b[0]
            if ta == tb:
                continue
            if ta not in LAYERS or tb not in LAYERS:
                problems.append(f"module outside the layer list: {'/'.join(a)} -> {'/'.join(b)}")
            elif LAYERS[tb] > LAYERS[ta] or (ta in STAGES and tb in STAGES):
                problems.append(f"against the data flow: {'/'.join(a)} -> {'/'.join(b)}: {', '.join(sorted(names))}")
    print(f"{len(lines)} edges between {len(graph)} files")
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
