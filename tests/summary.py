"""The closing line the Python test files print: the same as cargo test's, so that `make test`
can add every count up."""

import sys
import unittest


def run(verbosity):
    """Runs the calling module's tests, prints the closing line, and exits with their verdict."""
    result = unittest.main(module="__main__", exit=False, verbosity=verbosity).result
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    status = "ok" if failed == 0 and not result.skipped else "FAILED"
    print(f"test result: {status}. {passed} passed; {failed} failed; 0 ignored")
    sys.exit(0 if status == "ok" else 1)
