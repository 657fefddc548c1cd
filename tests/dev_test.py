"""`make dev` and its helpers as a new user meets them: settings that every target honours,
a second `make dev`, stopping it the ways a terminal, an IDE or a process manager does, and the
helpers with nothing running. Each test runs the real `make dev` in the background, on ports
of its own, and talks to it with the real make targets.

Run by `make test` (after the cargo tests, which build the function) with the project's
virtualenv. A test's output (make dev's, the function's) is shown only when it fails.
"""

import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import summary

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Long enough for `make dev` to build the function when cargo has not yet.
READY_WITHIN = 600


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def processes_naming(*words):
    """Command lines of running processes that hold every one of `words`."""
    found = []
    for proc in pathlib.Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if proc.name.isdigit() and all(word in command for word in words):
            found.append(command)
    return found


def make(*targets, settings, stdin=None):
    """Runs `make targets` with `settings` in the environment: (exit code, output)."""
    done = subprocess.run(
        ["make", "--no-print-directory", *targets], cwd=ROOT, input=stdin, text=True,
        env={**os.environ, **settings}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=120,
    )
    return done.returncode, done.stdout


class Dev:
    """`make dev` in the background, with ports and a queue of its own."""

    def __init__(self, sqs_port=None, invoke_port=None, queue="dev-test"):
        self.settings = {
            "SQS_PORT": str(sqs_port or free_port()),
            "INVOKE_PORT": str(invoke_port or free_port()),
            "QUEUE": queue,
        }
        self.output = tempfile.NamedTemporaryFile("w+", prefix="make-dev-", suffix=".log")
        self.make = subprocess.Popen(
            ["make", "--no-print-directory", "dev"], cwd=ROOT, env={**os.environ, **self.settings},
            stdout=self.output, stderr=subprocess.STDOUT, start_new_session=True,
        )

    @property
    def ports(self):
        return [int(self.settings["SQS_PORT"]), int(self.settings["INVOKE_PORT"])]

    def text(self):
        self.output.flush()
        return pathlib.Path(self.output.name).read_text(errors="replace")

    def ready(self):
        deadline = time.monotonic() + READY_WITHIN
        while "Stop with Ctrl-C" not in self.text():
            if self.make.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"make dev did not start:\n{self.text()}")
            time.sleep(0.2)
        return self

    def stop(self, sig=signal.SIGTERM):
        """Signals the make process alone, as an IDE's stop button does; waits for it."""
        if self.make.poll() is None:
            self.make.send_signal(sig)
            self.make.wait(30)

    def close(self):
        if self.make.poll() is None:
            os.killpg(self.make.pid, signal.SIGTERM)
            try:
                self.make.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.make.pid, signal.SIGKILL)
                self.make.wait()
        self.output.close()
        shutil.rmtree(ROOT / ".local" / f"dev-{self.settings['SQS_PORT']}", ignore_errors=True)


class DevTest(unittest.TestCase):
    def start(self, **settings):
        dev = Dev(**settings)
        self.addCleanup(dev.close)
        self.addCleanup(self.show_on_failure, dev)
        return dev.ready()

    def show_on_failure(self, dev):
        outcome = getattr(self, "_outcome", None)
        failed = outcome is not None and not outcome.success
        if failed:
            print(f"--- make dev output ({dev.settings}):\n{dev.text()}", file=sys.stderr)

    def assert_all_stopped(self, dev):
        """make has exited; within 20 s nothing it started runs or listens (a process stopped
        gracefully takes a moment)."""
        self.assertIsNotNone(dev.make.returncode, "make exited")
        deadline = time.monotonic() + 20
        while True:
            left = [p for port in dev.ports for p in processes_naming(str(port))]
            held = [port for port in dev.ports if listening(port)]
            if not left and not held:
                return
            if time.monotonic() > deadline:
                self.fail(f"still running: {left}; still listening: {held}")
            time.sleep(0.2)

    def test_every_target_honours_non_default_ports_and_queue(self):
        dev = self.start(queue="dev-test-ports")
        prefix = " ".join(f"{k}={v}" for k, v in dev.settings.items())
        self.assertIn(f"{prefix} make queue", dev.text(), "the banner gives the exact command")
        code, output = make("invoke", "EVENT=events/v3-message-created.json", settings=dev.settings)
        self.assertEqual(code, 0, output)
        self.assertIn('"statusCode":200', output)
        code, output = make("secret", "LOCAL=1", settings=dev.settings, stdin="rotated-secret\n")
        self.assertEqual(code, 0, output)
        self.assertIn("stored as version", output)
        self.assertNotIn("rotated-secret", output, "the secret is never printed")
        code, output = make("queue", settings=dev.settings)
        self.assertEqual(code, 0, output)
        self.assertIn("1 message(s) read and removed from dev-test-ports", output)

    def test_a_second_make_dev_refuses_naming_the_port_and_its_holder(self):
        dev = self.start()
        moto_log = ROOT / ".local" / f"dev-{dev.settings['SQS_PORT']}" / "moto.log"
        log_before = moto_log.read_bytes()
        code, output = make("dev", settings=dev.settings)
        self.assertNotEqual(code, 0)
        self.assertIn(f"port {dev.settings['SQS_PORT']} (SQS_PORT) is in use by pid", output)
        self.assertIn("moto_server", output)
        self.assertTrue(moto_log.read_bytes().startswith(log_before), "the first one's log is kept")
        code, output = make("invoke", settings=dev.settings)
        self.assertEqual(code, 0, f"the first one still serves: {output}")

    def test_a_second_make_dev_on_the_invoke_port_alone_refuses_too(self):
        dev = self.start()
        other = {**dev.settings, "SQS_PORT": str(free_port())}
        code, output = make("dev", settings=other)
        self.assertNotEqual(code, 0)
        self.assertIn(f"port {dev.settings['INVOKE_PORT']} (INVOKE_PORT) is in use by pid", output)
        self.assertIn("cargo-lambda", output)

    def test_sigterm_to_make_alone_stops_everything_it_started(self):
        dev = self.start()
        dev.stop(signal.SIGTERM)
        self.assert_all_stopped(dev)

    def test_make_killed_outright_still_leaves_nothing_behind(self):
        dev = self.start()
        dev.stop(signal.SIGKILL)
        self.assert_all_stopped(dev)

    def test_ctrl_c_and_a_closed_terminal_stop_everything_it_started(self):
        for sig in (signal.SIGINT, signal.SIGHUP):
            dev = self.start()
            # A terminal signals its whole foreground process group.
            os.killpg(dev.make.pid, sig)
            dev.make.wait(30)
            self.assert_all_stopped(dev)

    def test_helpers_with_nothing_running_say_so_in_one_line(self):
        settings = {"SQS_PORT": str(free_port()), "INVOKE_PORT": str(free_port())}
        for targets in (["queue"], ["invoke"], ["secret", "LOCAL=1"]):
            code, output = make(*targets, settings=settings)
            self.assertNotEqual(code, 0, targets)
            # make adds a line of its own about the failed recipe ("make: *** [...] Error 1").
            ours = [line for line in output.splitlines() if not re.match(r"make(\[\d+\])?: \*\*\*", line)]
            self.assertEqual(len(ours), 1, output)
            self.assertIn("nothing is listening on 127.0.0.1:", ours[0])
            self.assertIn("make dev", ours[0])
            self.assertNotIn("Traceback", output)

    def test_make_alone_lists_every_target(self):
        code, output = make(settings={})
        self.assertEqual(code, 0, output)
        makefile = (ROOT / "Makefile").read_text()
        targets = [line.split(":")[0] for line in makefile.splitlines()
                   if line and line[0].isalpha() and ":" in line and "=" not in line]
        for target in targets:
            self.assertIn(f"make {target} ", output, f"{target} is not listed")


if __name__ == "__main__":
    summary.run(verbosity=1)
