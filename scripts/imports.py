"""The import structure of the workspace's crates: no cycle, and no chain of imports deeper
than MAX_DEPTH modules from a crate's entry (main.rs, or the consumer's binary) to a leaf.

A module is a file of src/. An import is `use crate::x` (grouped forms too) or a path
`crate::x::`; `mod x;` in lib.rs and main.rs's use of the library (`nylas_webhook_sqs::`)
are imports too. Test modules count: a cycle through them is still a cycle.

Usage: python scripts/imports.py [ROOT]  (prints each crate's floors; exit 1 on a violation).
"""

import pathlib
import re
import sys

MAX_DEPTH = 6
# Each crate: its source folder, its entry file, and the name other files of it use for lib.rs.
CRATES = [
    ("src", "main.rs", "nylas_webhook_sqs"),
    ("consumer/src", "bin/example.rs", "nylas_webhook_consumer"),
    ("contract/src", "lib.rs", "nylas_sqs_contract"),
]


def modules(folder):
    """Every module of a crate: its name (the file's path under src/, without .rs) and text."""
    found = {}
    for path in sorted(folder.rglob("*.rs")):
        name = path.relative_to(folder).with_suffix("").as_posix()
        found[name] = path.read_text()
    return found


def imports(name, text, names, library):
    """The modules of `names` that the module `name` imports."""
    text = re.sub(r"//[^\n]*", "", text)
    targets = set()
    for group in re.findall(r"\buse\s+crate::\{([^;]*)\}", text):
        targets.update(re.findall(r"(?:^|[{,])\s*(\w+)", group))
    targets.update(re.findall(r"\bcrate::(\w+)", text))
    if name == "lib":
        targets.update(re.findall(r"^\s*(?:pub\s+)?mod\s+(\w+)\s*;", text, re.M))
    elif re.search(rf"\b{library}::", text):
        targets.add("lib")
    return {t for t in targets if t in names and t != name}


def check(root):
    """The violations in the crates under `root`, and a line per crate of its floors."""
    problems, report = [], []
    for folder, entry, library in CRATES:
        found = modules(root / folder)
        if not found:
            continue
        graph = {n: imports(n, t, found, library) for n, t in found.items()}
        cycle = find_cycle(graph)
        if cycle:
            problems.append(f"{folder}: a cycle: {' -> '.join(cycle)}")
            continue
        start = entry.removesuffix(".rs")
        chain = longest(graph, start)
        report.append(f"{folder}: {len(chain)} levels: {' -> '.join(chain)}")
        if len(chain) > MAX_DEPTH:
            problems.append(f"{folder}: {len(chain)} levels, over {MAX_DEPTH}: {' -> '.join(chain)}")
    return problems, report


def find_cycle(graph):
    """A cycle of `graph` as a list of its modules (the first again at the end), or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target, path + [target])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [node])
            if cycle:
                return cycle
    return None


def longest(graph, start):
    """The longest chain of imports from `start` (a graph without cycles)."""
    best = {}

    def chain(node):
        if node not in best:
            tails = [chain(t) for t in sorted(graph[node])]
            best[node] = [node] + max(tails, key=len, default=[])
        return best[node]

    return chain(start)


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems, report = check(root)
    print("\n".join(report))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
