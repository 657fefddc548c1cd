"""`make mutants`: does a test fail when the code that decides an answer or a store is changed?

Runs cargo-mutants (from .local/bin) over FILES, with the unit and property tests that a plain
`cargo test` runs, and fails on every missed mutant that mutants-excused.txt does not excuse.
Prints the counts and the time; the outcome of every mutant is in target/mutants/mutants.out/.

An excuse is a line `<mutant> | <reason>`, where <mutant> is the name cargo-mutants gives it
without its line and column (`src/sqs.rs: replace ...`), so an excuse survives an edit that
moves the code. An excuse that matches no missed mutant any more is reported, to be removed.

    PROPTEST_CASES   property cases per test (64 here unless set: the mutants are many)
    MUTANTS_ARGS     more arguments for cargo-mutants, e.g. "-f src/secret.rs" to take one
                     file again instead of them all
"""

import os
import pathlib
import re
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
FILES = ["outcome", "signature", "secret", "sqs", "body", "notification", "handler", "event", "breaker"]
OUT = ROOT / "target" / "mutants"
EXCUSED = ROOT / "mutants-excused.txt"


def without_position(name):
    """`src/a.rs:12:5: replace x` -> `src/a.rs: replace x`."""
    return re.sub(r"^([^:]+):\d+:\d+:", r"\1:", name.strip())


def excuses():
    found = {}
    for line in EXCUSED.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            mutant, _, reason = line.partition(" | ")
            if not reason.strip():
                sys.exit(f"mutants-excused.txt: no reason given for {mutant}")
            found[mutant.strip()] = reason.strip()
    return found


def main():
    tool = ROOT / ".local" / "bin" / "cargo-mutants"
    if not tool.exists():
        sys.exit("cargo-mutants is not installed in .local/bin: run `make mutants`, which installs it")
    extra = os.environ.get("MUTANTS_ARGS", "").split()
    files = [] if any(a in ("-f", "--file") for a in extra) else [
        arg for name in FILES for arg in ("-f", f"src/{name}.rs")
    ]
    env = dict(os.environ)
    env.setdefault("PROPTEST_CASES", "64")
    # A target of its own: building a mutant writes target/debug/nylas-webhook-sqs, which the
    # integration tests and `make dev` run.
    env.setdefault("CARGO_TARGET_DIR", str(OUT / "target"))
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # Built and run: the unit and property tests (the integration tests need moto and the
    # emulator, and are run by `make test`).
    tests = ["--cargo-arg=--lib", "--cargo-arg=--test=properties"]
    command = [str(tool), "mutants", *files, *extra, *tests, "--output", str(OUT)]
    run = subprocess.run(command, cwd=ROOT, env=env)
    minutes = (time.monotonic() - started) / 60
    if run.returncode not in (0, 2, 3):  # 2: mutants missed, 3: timeouts: judged below
        sys.exit(f"cargo-mutants failed (exit {run.returncode}): see {OUT}/mutants.out/debug.log")
    results = {}
    for outcome in ("caught", "missed", "timeout", "unviable"):
        path = OUT / "mutants.out" / f"{outcome}.txt"
        results[outcome] = [l for l in path.read_text().splitlines() if l.strip()] if path.exists() else []
    counts = ", ".join(f"{len(v)} {k}" for k, v in results.items())
    print(f"mutants: {counts}, in {minutes:.1f} min")
    excused = excuses()
    # A mutant that makes the tests hang (a timeout) was noticed: only the missed fail the run.
    missed = {without_position(m): m for m in results["missed"]}
    unexcused = [m for name, m in missed.items() if name not in excused]
    if files:
        for name in sorted(set(excused) - set(missed)):
            print(f"mutants-excused.txt: no longer missed, remove it: {name}")
    for mutant in unexcused:
        print(f"MISSED: {mutant}")
    if unexcused:
        sys.exit(f"{len(unexcused)} mutant(s) no test catches: add a test, or excuse it with its reason")


if __name__ == "__main__":
    main()
