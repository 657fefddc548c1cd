"""scripts/imports.py, the check that src/ stays shallow and the workspace has no cycle: it
passes on the tree as it is, and fails on a cycle and on a chain one level too deep."""

import pathlib
import sys
import tempfile
import unittest

import summary

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import imports  # noqa: E402


def tree(files):
    """A workspace of `files` (path under the root: text), in a folder of its own."""
    folder = tempfile.TemporaryDirectory()
    for path, text in files.items():
        file = pathlib.Path(folder.name) / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
    return folder


class ImportsTest(unittest.TestCase):
    def test_the_workspace_is_shallow_and_has_no_cycle(self):
        problems, report = imports.check(ROOT)
        self.assertEqual(problems, [], report)
        self.assertTrue(report[0].startswith("src: "), report)

    def test_a_cycle_through_a_grouped_use_is_found(self):
        files = {
            "src/main.rs": "use nylas_webhook_sqs::Receiver;",
            "src/lib.rs": "mod a;\nmod b;",
            "src/a.rs": "use crate::{b::B, lib};",
            "src/b.rs": "fn f() { crate::a::g() }",
        }
        with tree(files) as root:
            problems, _ = imports.check(pathlib.Path(root))
        self.assertEqual(problems, ["src: a cycle: a -> b -> a"])

    def test_a_chain_deeper_than_six_levels_is_refused(self):
        chain = ["c1", "c2", "c3", "c4", "c5"]
        files = {"src/main.rs": "// a comment naming crate::c9\nuse nylas_webhook_sqs::X;",
                 "src/lib.rs": "mod c1;"}
        for here, there in zip(chain, chain[1:]):
            files[f"src/{here}.rs"] = f"use crate::{there}::Thing;"
        files["src/c5.rs"] = ""
        with tree(files) as root:
            problems, report = imports.check(pathlib.Path(root))
        self.assertEqual(report, ["src: 7 levels: main -> lib -> c1 -> c2 -> c3 -> c4 -> c5"])
        self.assertEqual(len(problems), 1, problems)
        files["src/c4.rs"] = ""
        with tree(files) as root:
            self.assertEqual(imports.check(pathlib.Path(root))[0], [])


if __name__ == "__main__":
    summary.run(verbosity=2)
