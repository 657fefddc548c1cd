"""`make mutants`: does a test fail when the code that decides an answer or a store is changed?

Runs cargo-mutants (from .local/bin) over FILES, in two passes: the receiver's, with the unit
and property tests that a plain `cargo test` runs; then the message contract's and the
consumer's, each with its crate's unit tests. Fails on every missed mutant that
mutants-excused.txt does not excuse. Prints the counts and the time; the outcome of every
mutant is in target/mutants/<pass>/mutants.out/.

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
# Each pass: its name, the files it mutates, and the tests that judge them (the integration
# tests need moto and the emulator, and are run by `make test`).
PASSES = [
    ("receiver",
     [f"src/{name}.rs" for name in
      ("outcome", "signature", "secret", "sqs", "message", "body", "sender", "nylas", "handler", "event",
       "breaker", "queue", "log", "config", "archive")],
     ["--cargo-arg=--lib", "--cargo-arg=--test=properties"]),
    ("consumer",
     ["contract/src/lib.rs", "consumer/src/batch.rs", "consumer/src/idempotency.rs",
      "consumer/src/notification.rs", "consumer/src/lib.rs", "consumer/src/dead_letter.rs",
      "consumer/src/outcome.rs", "consumer/src/log.rs"],
     ["-p", "nylas-sqs-contract", "-p", "nylas-webhook-consumer", "--test-workspace=false",
      "--cargo-arg=--lib"]),
    ("replay", ["replay/src/lib.rs"], ["-p", "nylas-replay", "--test-workspace=false", "--cargo-arg=--lib"]),
]
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
    chosen = [extra[i + 1] for i, a in enumerate(extra[:-1]) if a in ("-f", "--file")]
    others = [a for i, a in enumerate(extra) if a not in ("-f", "--file") and (i == 0 or extra[i - 1] not in ("-f", "--file"))]
    env = dict(os.environ)
    env.setdefault("PROPTEST_CASES", "64")
    # A target of its own: building a mutant writes target/debug/nylas-webhook-sqs, which the
    # integration tests and `make dev` run.
    env.setdefault("CARGO_TARGET_DIR", str(OUT / "target"))
    started = time.monotonic()
    results = {outcome: [] for outcome in ("caught", "missed", "timeout", "unviable")}
    for name, files, tests in PASSES:
        # MUTANTS_ARGS' -f files go to the pass that holds them.
        mine = [f for f in chosen if f in files]
        if chosen and not mine:
            continue
        selected = [arg for path in (mine or files) for arg in ("-f", path)]
        out = OUT / name
        out.mkdir(parents=True, exist_ok=True)
        command = [str(tool), "mutants", *selected, *others, *tests, "--output", str(out)]
        run = subprocess.run(command, cwd=ROOT, env=env)
        if run.returncode not in (0, 2, 3):  # 2: mutants missed, 3: timeouts: judged below
            sys.exit(f"cargo-mutants failed (exit {run.returncode}): see {out}/mutants.out/debug.log")
        for outcome in results:
            path = out / "mutants.out" / f"{outcome}.txt"
            results[outcome] += [l for l in path.read_text().splitlines() if l.strip()] if path.exists() else []
    minutes = (time.monotonic() - started) / 60
    counts = ", ".join(f"{len(v)} {k}" for k, v in results.items())
    print(f"mutants: {counts}, in {minutes:.1f} min")
    excused = excuses()
    # A mutant that makes the tests hang (a timeout) was noticed: only the missed fail the run.
    missed = {without_position(m): m for m in results["missed"]}
    unexcused = [m for name, m in missed.items() if name not in excused]
    if not chosen:
        for name in sorted(set(excused) - set(missed)):
            print(f"mutants-excused.txt: no longer missed, remove it: {name}")
    for mutant in unexcused:
        print(f"MISSED: {mutant}")
    if unexcused:
        sys.exit(f"{len(unexcused)} mutant(s) no test catches: add a test, or excuse it with its reason")


if __name__ == "__main__":
    main()
