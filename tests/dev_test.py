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


def make(*targets, settings, stdin=None, args=(), timeout=400):
    """Runs `make targets` with `settings` in the environment: (exit code, output). `args` go
    to the recipe's script through make's ARGS."""
    extra = [f"ARGS={' '.join(args)}"] if args else []
    done = subprocess.run(
        ["make", "--no-print-directory", *targets, *extra], cwd=ROOT, input=stdin, text=True,
        env={**os.environ, **settings}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=timeout,
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
            # make dies of the signal, as Ctrl-C stops any command; make dev itself exited 0,
            # so make reports no failed recipe.
            self.assertIn("everything it started is stopped", dev.text())
            self.assertNotRegex(dev.text(), r"make(\[\d+\])?: \*\*\*")

    def test_helpers_with_nothing_running_say_so_in_one_line_before_installing_anything(self):
        missing = ROOT / ".local" / "no-such-venv"
        settings = {"SQS_PORT": str(free_port()), "INVOKE_PORT": str(free_port())}
        for targets in (["queue"], ["invoke"], ["consume"], ["secret", "LOCAL=1"], ["revoke-previous", "LOCAL=1"]):
            targets = [*targets, f"VENV={missing}"]
            code, output = make(*targets, settings=settings)
            self.assertNotEqual(code, 0, targets)
            # make adds a line of its own about the failed recipe ("make: *** [...] Error 1").
            ours = [line for line in output.splitlines() if not re.match(r"make(\[\d+\])?: \*\*\*", line)]
            self.assertEqual(len(ours), 1, output)
            self.assertIn("nothing is listening on 127.0.0.1:", ours[0])
            self.assertIn("make dev", ours[0])
            self.assertNotIn("Traceback", output)
            self.assertFalse(missing.exists(), f"{targets} installed tools first")

    def test_an_event_file_that_does_not_exist_is_named(self):
        dev = self.start()
        code, output = make("invoke", "EVENT=events/no-such-event.json", settings=dev.settings)
        self.assertNotEqual(code, 0)
        self.assertIn("no event file events/no-such-event.json (events/ holds challenge.json,", output)

    def function_log(self, dev):
        return ROOT / ".local" / f"dev-{dev.settings['SQS_PORT']}" / "function.log"

    def test_the_function_s_log_lines_are_in_the_file_the_banner_names(self):
        dev = self.start()
        log = self.function_log(dev)
        self.assertIn(f"The function's log lines: {log}", dev.text())
        code, output = make("invoke", "EVENT=events/v3-message-created.json", settings=dev.settings)
        self.assertEqual(code, 0, output)
        lines = log.read_text().splitlines()
        self.assertTrue(any('"outcome":"forwarded"' in line for line in lines), lines)
        self.assertIn('"outcome":"forwarded"', dev.text(), "and in the terminal")

    def test_editing_events_docs_tests_scripts_or_the_consumer_restarts_nothing(self):
        dev = self.start()
        log = self.function_log(dev)
        # The emulator starts the function at the first invoke.
        code, output = make("invoke", "EVENT=events/v3-message-created.json", settings=dev.settings)
        self.assertEqual(code, 0, output)
        started = log.read_text().count("Running `")
        for path in ("events/v3-grant-created.json", "docs/performance.md", "tests/summary.py",
                     "scripts/local_aws.py", "README.md", "consumer/src/lib.rs"):
            (ROOT / path).touch()
        for delay in (0, 0.5, 2):
            (ROOT / "events" / "v3-message-created.json").touch()
            time.sleep(delay)
            code, output = make("invoke", "EVENT=events/v3-message-created.json", settings=dev.settings)
            self.assertEqual(code, 0, output)
            self.assertIn('"statusCode":200', output)
        time.sleep(2)
        self.assertEqual(log.read_text().count("Running `"), started, "the function was restarted")

    def test_an_invoke_sent_while_the_source_changes_is_answered(self):
        dev = self.start()
        lib = ROOT / "src" / "lib.rs"
        original = lib.read_text()
        self.addCleanup(lib.write_text, original)
        log = self.function_log(dev)
        started = log.read_text().count("Running `")
        for number, delay in enumerate((0, 0.5, 2)):
            lib.write_text(original + f"// edit {number}\n")
            time.sleep(delay)
            code, output = make("invoke", "EVENT=events/v3-message-created.json", settings=dev.settings)
            self.assertEqual(code, 0, output)
            self.assertIn('"statusCode":200', output)
        self.assertGreater(log.read_text().count("Running `"), started, "the function was rebuilt")

    def test_an_edited_event_gets_a_hint_naming_make_sign_events(self):
        dev = self.start()
        code, output = make("invoke", "EVENT=events/v3-tampered.json", settings=dev.settings)
        self.assertIn('"body":"signature_mismatch"', output)
        self.assertIn("`make sign-events`", output)
        self.assertIn("make secret LOCAL=1", output)
        readme = (ROOT / "README.md").read_text()
        self.assertRegex(readme, r"\n#+ Sample events\n", "the hint's README section exists")

    def test_events_signed_with_another_secret_verify_once_it_is_stored(self):
        dev = self.start()
        events = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, events)
        event = events / "v3-grant-created.json"
        shutil.copy(ROOT / "events" / "v3-grant-created.json", event)
        code, output = make("sign-events", "SECRET=rotated-locally", settings={}, stdin=None,
                            args=[str(event)])
        self.assertEqual(code, 0, output)
        self.assertIn(": signed", output)
        code, output = make("invoke", f"EVENT={event}", settings=dev.settings)
        self.assertIn('"body":"signature_mismatch"', output)
        code, output = make("secret", "LOCAL=1", settings=dev.settings, stdin="rotated-locally\n")
        self.assertEqual(code, 0, output)
        deadline = time.monotonic() + 60
        while '"statusCode":200' not in output:
            self.assertLess(time.monotonic(), deadline, output)
            time.sleep(2)
            code, output = make("invoke", f"EVENT={event}", settings=dev.settings)

    def test_make_sign_events_agrees_with_the_signatures_the_function_verifies(self):
        code, output = make("sign-events", settings={})
        self.assertEqual(code, 0, output)
        changed = subprocess.run(["git", "status", "--porcelain", "events/"], cwd=ROOT,
                                 capture_output=True, text=True).stdout
        self.assertEqual(changed, "", "the committed events are signed as make sign-events signs")
        self.assertNotIn("Compiling", output, "nothing is built")

    def test_the_scripts_sign_with_the_header_and_prefix_of_the_sender_the_function_runs(self):
        sys.path.insert(0, str(ROOT / "scripts"))
        import sign_events
        self.assertEqual(sign_events.sender(), ("X-Nylas-Signature", ""))
        fork = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, fork)
        (fork / "src").mkdir()
        (fork / "src" / "lib.rs").write_text("pub const SENDER: Sender = github::GITHUB;\n")
        (fork / "src" / "github.rs").write_text(
            'pub const GITHUB: Sender = Sender {\n    name: "GitHub",\n'
            '    signature_header: "X-Hub-Signature-256",\n    signature_prefix: "sha256=",\n'
            '    challenge: None,\n    split: split,\n};\n')
        header, prefix = sign_events.sender(fork)
        self.assertEqual((header, prefix), ("X-Hub-Signature-256", "sha256="))
        event = fork / "push.json"
        event.write_text('{"headers": {"x-hub-signature-256": "old"}, "body": "{}"}')
        self.assertEqual(sign_events.resign(event, "s", header, prefix), "signed")
        signed = sign_events.sign("s", b"{}", "sha256=")
        self.assertTrue(signed.startswith("sha256=") and len(signed) == 71, signed)
        self.assertIn(f'"{signed}"', event.read_text())

    def test_the_first_install_says_what_each_step_does(self):
        venv = pathlib.Path(tempfile.mkdtemp()) / "venv"
        self.addCleanup(shutil.rmtree, venv.parent)
        code, output = make("tools", f"VENV={venv}", settings={}, timeout=900)
        self.assertEqual(code, 0, output)
        steps = [line for line in output.splitlines() if line.startswith("tools: ")]
        self.assertEqual(len(steps), 3, output)
        self.assertIn("tools: creating the virtualenv", steps[0])
        self.assertIn("tools: installing cargo-lambda", steps[1])
        self.assertRegex(output, r"  pip: Successfully installed .*cargo-lambda")

    def test_make_consume_processes_each_notification_once_skips_the_retry_and_forget_resets(self):
        dev = self.start()
        settings = {**dev.settings, "CONSUME_PORT": str(free_port()), "BATCHES": "1"}
        outputs = []
        # Nylas's retry of a notification is the same notification: the sample event twice,
        # then once more after `make forget`.
        for forget in (False, False, True):
            if forget:
                code, output = make("forget", settings=dev.settings)
                self.assertEqual(code, 0, output)
                self.assertIn("forgot 1 notification(s) in nylas-idempotency", output)
            code, output = make("invoke", "EVENT=events/v3-message-created.json", settings=dev.settings)
            self.assertEqual(code, 0, output)
            code, output = make("consume", settings=settings, timeout=READY_WITHIN)
            self.assertEqual(code, 0, output)
            outputs.append(output)
        first, second, after_forget = outputs
        self.assertRegex(first, r"  processed +message\.created +\S+", first)
        self.assertRegex(second, r"  duplicate, skipped +message\.created +\S+", second)
        self.assertNotIn("processed", second.split("batch of 1:")[1])
        self.assertRegex(after_forget, r"  processed +message\.created +\S+", "run again after make forget")
        code, output = make("queue", settings=dev.settings)
        self.assertIn("0 message(s) read", output, "all deleted from the queue")
        log = ROOT / ".local" / f"dev-{dev.settings['SQS_PORT']}" / "consumer.log"
        self.assertIn('"outcome":"duplicate"', log.read_text())

    def test_make_replay_sends_an_archived_notification_through_the_consumer_once_per_replay(self):
        dev = self.start()
        stamp = lambda seconds: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
        settings = {**dev.settings, "CONSUME_PORT": str(free_port()), "BATCHES": "1"}
        start = stamp(-5)
        code, output = make("invoke", "EVENT=events/v3-message-created.json", settings=dev.settings)
        self.assertEqual(code, 0, output)
        range_ = [f"FROM={start}", f"TO={stamp(60)}"]
        outputs = []
        for step in ("consume", "replay", "consume", "replay", "consume"):
            extra = ["LOCAL=1", *range_] if step == "replay" else []
            code, output = make(step, *extra, settings=settings, timeout=READY_WITHIN)
            self.assertEqual(code, 0, output)
            outputs.append(output)
        original, replayed, replayed_consumed, again, again_consumed = outputs
        self.assertRegex(original, r"  processed +message\.created +\S+\n")
        self.assertRegex(replayed, r"replay (replay-[0-9a-f]{16}): 1 found, 1 sent, 0 skipped")
        replay_id = re.search(r"replay (replay-[0-9a-f]{16}):", replayed)[1]
        self.assertRegex(replayed_consumed, rf"  processed +message\.created +\S+ \(replay {replay_id}\)")
        self.assertIn(f"replay {replay_id}: 1 found, 1 sent", again, "the same range, the same replay")
        self.assertRegex(again_consumed, rf"  duplicate, skipped +message\.created +\S+ \(replay {replay_id}\)")
        code, output = make("replay", "LOCAL=1", *range_, "DRY_RUN=1", "TYPE=grant.created", settings=dev.settings)
        self.assertIn("1 found, 0 would send, 1 skipped", output)
        code, output = make("replay", "LOCAL=1", settings=dev.settings)
        self.assertNotEqual(code, 0)
        self.assertIn("make replay: say which range", output)
        # Into a queue of one's own, to try a fix first.
        sys.path.insert(0, str(ROOT / "scripts"))
        import local_aws
        sqs = local_aws.client("sqs", f"http://127.0.0.1:{dev.settings['SQS_PORT']}")
        other = sqs.create_queue(QueueName="trying-a-fix")["QueueUrl"]
        code, output = make("replay", "LOCAL=1", *range_, "QUEUE=trying-a-fix", "REPLAY_ID=try-1",
                            settings=dev.settings)
        self.assertIn("replay try-1: 1 found, 1 sent", output)
        received = sqs.receive_message(QueueUrl=other, MessageAttributeNames=["All"])["Messages"]
        self.assertEqual(received[0]["MessageAttributes"]["nylas-replay-id"]["StringValue"], "try-1")

    def test_a_message_failing_five_times_goes_to_the_local_dead_letter_queue(self):
        dev = self.start()
        sys.path.insert(0, str(ROOT / "scripts"))
        import local_aws
        sqs = local_aws.client("sqs", f"http://127.0.0.1:{dev.settings['SQS_PORT']}")
        url = sqs.get_queue_url(QueueName=dev.settings["QUEUE"])["QueueUrl"]
        # Not from the receiver (no nylas-id): the consumer fails on it every time.
        sqs.send_message(QueueUrl=url, MessageBody='{"not": "a notification"}')
        settings = {**dev.settings, "CONSUME_PORT": str(free_port()), "BATCHES": "5", "VISIBILITY": "0"}
        code, output = make("consume", settings=settings, timeout=READY_WITHIN)
        self.assertEqual(code, 0, output)
        self.assertEqual(output.count("failed, returned"), 5, output)
        self.assertIn(f"1 message(s) received 5 times moved to the dead-letter queue {dev.settings['QUEUE']}"
                      "-dead-letters", output, "the sixth receive moved it")
        code, output = make("queue", settings=dev.settings)
        self.assertIn("0 message(s) read", output)
        self.assertIn(f"1 message(s) in the dead-letter queue {dev.settings['QUEUE']}-dead-letters", output)
        code, output = make("dead-letters", settings=dev.settings)
        self.assertEqual(code, 0, output)
        self.assertIn('{"not": "a notification"}', output)
        self.assertIn(f"1 message(s) read and removed from {dev.settings['QUEUE']}-dead-letters", output)

    def test_make_consume_keeps_its_columns_for_long_types_and_ids_and_puts_a_reason_below(self):
        sys.path.insert(0, str(ROOT / "scripts"))
        import consume
        rows = [consume.row({"outcome": outcome, "nylas_type": kind, "nylas_id": "x" * 128, "message": "why"})
                for outcome, kind in (("processed", "message.updated.truncated.transformed"),
                                      ("behind_failure", "grant.created"), ("failed", "message.created"))]
        first_lines = [text.splitlines()[0] for text in rows]
        self.assertEqual({line.index("x" * 128) for line in first_lines}, {74}, first_lines)
        self.assertEqual(rows[2].splitlines()[1], "      why")
        self.assertIsNone(consume.row({"level": "INFO", "message": "started"}))

    def test_make_invoke_and_make_post_fail_on_an_answer_that_is_not_2xx_after_printing_it(self):
        dev = self.start()
        code, output = make("invoke", "EVENT=events/v3-unsigned.json", settings=dev.settings)
        self.assertNotEqual(code, 0, output)
        self.assertIn('"statusCode":401', output)
        self.assertIn("make invoke: the function answered 401 missing_signature", output)
        self.assertLess(output.index('"statusCode":401'), output.index("make invoke: the function answered"))
        code, output = make("invoke", "EVENT=events/challenge.json", settings=dev.settings)
        self.assertEqual(code, 0, output)
        # `make post` signs with the secret stored now: another one, with the sample secret
        # revoked (before any POST, so the function never kept it).
        code, output = make("secret", "LOCAL=1", settings=dev.settings, stdin="another-secret\n")
        self.assertEqual(code, 0, output)
        code, output = make("revoke-previous", "LOCAL=1", settings=dev.settings)
        self.assertEqual(code, 0, output)
        body = pathlib.Path(tempfile.mkdtemp()) / "mine.json"
        self.addCleanup(shutil.rmtree, body.parent)
        body.write_text('{"specversion": "1.0", "type": "message.created", "id": "make-post-1",'
                        ' "data": {"object": {"grant_id": "g-post"}}}')
        code, output = make("post", f"BODY={body}", settings=dev.settings)
        self.assertEqual((code, output.strip().splitlines()[-1]), (0, "200"), output)
        code, output = make("invoke", "EVENT=events/v3-message-created.json", settings=dev.settings)
        self.assertNotEqual(code, 0, "signed with the sample secret, which no longer verifies")
        self.assertIn("make invoke: the function answered 503 signature_mismatch", output)
        code, output = make("queue", settings=dev.settings)
        self.assertIn('"nylas-id": "make-post-1"', output)
        self.assertIn(body.read_text(), output, "the exact bytes")
        self.assertIn("1 message(s) read", output)
        code, output = make("post", "BODY=does-not-exist.json", settings=dev.settings)
        self.assertNotEqual(code, 0, output)
        self.assertIn("make post: no file 'does-not-exist.json'", output)

    def test_make_alone_lists_every_target(self):
        code, output = make(settings={})
        self.assertEqual(code, 0, output)
        makefile = (ROOT / "Makefile").read_text()
        targets = [line.split(":")[0] for line in makefile.splitlines()
                   if line and line[0].isalpha() and ":" in line and "=" not in line]
        for target in targets:
            self.assertIn(f"make {target} ", output, f"{target} is not listed")


def elf(machine):
    """The first bytes of an ELF executable for `machine` (e_machine at offset 18)."""
    return b"\x7fELF" + b"\0" * 14 + machine.to_bytes(2, "little") + b"\0" * 44


class DeployTest(unittest.TestCase):
    """`make deploy` with a stand-in `sam` that records its arguments, over a stand-in build."""

    SAVED = (
        'version = 0.1\n[default.deploy.parameters]\ncapabilities = "CAPABILITY_IAM"\n'
        'parameter_overrides = "QueueType=\\"fifo\\" AlarmEmail=\\"ops@example.com\\" '
        'WebhookPath=\\"/webhook/kept\\" Architecture=\\"x86_64\\""\n'
    )

    def deploy(self, samconfig, built="x86_64", expect=0, **settings):
        """(sam's arguments, or None if it did not run; make's output)."""
        with tempfile.TemporaryDirectory() as folder:
            folder = pathlib.Path(folder)
            config = folder / "samconfig.toml"
            if samconfig is not None:
                config.write_text(samconfig)
            for function in ("ReceiverFunction", "ConsumerFunction") if built else ():
                (folder / "build" / function).mkdir(parents=True)
                (folder / "build" / function / "bootstrap").write_bytes(elf({"x86_64": 62, "arm64": 183}[built]))
            recorded, sam = folder / "args", folder / "sam"
            sam.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {recorded}\n')
            sam.chmod(0o755)
            code, output = make("deploy", settings={"SAM_BIN": str(sam), "SAMCONFIG": str(config),
                                                    "BUILD_DIR": str(folder / "build"), **settings})
            self.assertEqual(code != 0, expect != 0, output)
            return (recorded.read_text().splitlines() if recorded.exists() else None), output

    def overrides(self, args):
        return args[args.index("--parameter-overrides") + 1:]

    def test_a_second_deploy_with_random_path_keeps_the_path_and_every_saved_setting(self):
        args, output = self.deploy(self.SAVED, RANDOM_PATH="1")
        self.assertEqual(args[:2], ["deploy", "--guided"])
        self.assertNotIn("--parameter-overrides", args, "sam keeps what samconfig saved")
        self.assertIn("keeping the saved WebhookPath", output)

    def test_a_first_deploy_with_random_path_makes_one_and_keeps_the_other_saved_settings(self):
        saved = self.SAVED.replace(' WebhookPath=\\"/webhook/kept\\"', "")
        args, _ = self.deploy(saved, RANDOM_PATH="1")
        overrides = self.overrides(args)
        self.assertEqual(overrides[:3], ["QueueType=fifo", "AlarmEmail=ops@example.com", "Architecture=x86_64"])
        self.assertRegex(overrides[3], r"^WebhookPath=/webhook/[0-9a-f]{32}$")
        args, _ = self.deploy(None, RANDOM_PATH="1")
        self.assertEqual(self.overrides(args)[0], "Architecture=x86_64", "no samconfig at all")
        self.assertRegex(args[-1], r"^WebhookPath=/webhook/[0-9a-f]{32}$")

    def test_a_deploy_without_random_path_passes_no_override_once_the_architecture_is_saved(self):
        args, _ = self.deploy(self.SAVED)
        self.assertNotIn("--parameter-overrides", args)

    def test_the_architecture_make_build_built_is_carried_into_the_first_deploy(self):
        for built in ("x86_64", "arm64"):
            args, output = self.deploy(None, built=built)
            self.assertEqual(self.overrides(args), [f"Architecture={built}"])
            self.assertIn(f"deploy: Architecture={built}, as `make build` built it", output)
        saved = self.SAVED.replace(' Architecture=\\"x86_64\\"', "")
        args, _ = self.deploy(saved, built="arm64")
        self.assertEqual(self.overrides(args), ["QueueType=fifo", "AlarmEmail=ops@example.com",
                                                "WebhookPath=/webhook/kept", "Architecture=arm64"])

    def test_a_mismatch_between_the_build_and_the_stack_is_refused_before_sam_runs(self):
        args, output = self.deploy(self.SAVED, built="arm64", expect=1)
        self.assertIsNone(args, "sam did not run")
        self.assertIn("the stack is saved with Architecture=x86_64", output)
        self.assertIn("`make build ARCH=x86_64`, or `make deploy ARCH=arm64`", output)
        args, output = self.deploy(None, built="x86_64", expect=1, ARCH="arm64")
        self.assertIsNone(args)
        self.assertIn("ARCH=arm64, but the package in .aws-sam/build is x86_64", output)
        args, output = self.deploy(None, built=None, expect=1)
        self.assertIsNone(args)
        self.assertIn("nothing built", output)
        # Moving a saved stack to another architecture is said with ARCH.
        args, _ = self.deploy(self.SAVED, built="arm64", ARCH="arm64")
        self.assertEqual(self.overrides(args)[-1], "Architecture=arm64")
        self.assertEqual(len(self.overrides(args)), 4, "the saved settings with it")


    def test_make_logs_follows_the_saved_stack_in_its_region(self):
        with tempfile.TemporaryDirectory() as folder:
            folder = pathlib.Path(folder)
            config = folder / "samconfig.toml"
            config.write_text('version = 0.1\n[default.deploy.parameters]\nstack_name = "staging"\nregion = "eu-west-3"\n')
            recorded, sam = folder / "args", folder / "sam"
            sam.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {recorded}\n')
            sam.chmod(0o755)
            settings = {"SAM_BIN": str(sam), "SAMCONFIG": str(config), "AWS_REGION": "", "AWS_DEFAULT_REGION": ""}
            code, output = make("logs", "FILTER=forwarded", settings=settings)
            self.assertEqual(code, 0, output)
            self.assertEqual(recorded.read_text().splitlines(),
                             ["logs", "--stack-name", "staging", "--region", "eu-west-3", "--tail", "--filter", "forwarded"])
            code, output = make("logs", settings={**settings, "STACK": "prod", "AWS_REGION": "us-west-2"})
            self.assertEqual(recorded.read_text().split()[:5], ["logs", "--stack-name", "prod", "--region", "us-west-2"])


class BuildTest(unittest.TestCase):
    def test_a_silent_build_prints_a_line_at_least_every_period_and_keeps_its_status(self):
        with tempfile.TemporaryDirectory() as folder:
            sam = pathlib.Path(folder) / "sam"
            sam.write_text("#!/bin/sh\necho 'Building codeuri'\nsleep 3.5\necho done\nexit 3\n")
            sam.chmod(0o755)
            done = subprocess.run([sys.executable, str(ROOT / "scripts" / "progress.py"), "build", str(sam)],
                                  capture_output=True, text=True, env={**os.environ, "EVERY": "1"}, timeout=60)
        self.assertEqual(done.returncode, 3, "the command's status")
        lines = done.stdout.splitlines()
        self.assertEqual((lines[0], lines[-1]), ("Building codeuri", "done"), lines)
        ticks = [line for line in lines if line.startswith("build: still building (0 min 0")]
        self.assertGreaterEqual(len(ticks), 2, lines)
        self.assertIn("build: $(PYTHON) scripts/progress.py build", (ROOT / "Makefile").read_text().replace(
            'SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/$(VENV)/bin:$$PATH" ', "build: "))


class SecretTest(unittest.TestCase):
    def secret(self, samconfig, **settings):
        with tempfile.TemporaryDirectory() as folder:
            config = pathlib.Path(folder) / "samconfig.toml"
            config.write_text(samconfig)
            environment = {"SAMCONFIG": str(config), "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_MAX_ATTEMPTS": "1",
                           "AWS_REGION": "", "AWS_DEFAULT_REGION": "", **settings}
            return make("secret", settings=environment, stdin="a-secret\n")

    def test_make_secret_uses_the_stack_and_region_the_deploy_saved_or_aws_region(self):
        saved = ('version = 0.1\n[default.deploy.parameters]\nstack_name = "staging-webhooks"\n'
                 'region = "eu-west-3"\n')
        code, output = self.secret(saved)
        self.assertNotEqual(code, 0, "nothing listens at the endpoint")
        self.assertIn(f"stack staging-webhooks in eu-west-3 (the region from ", output)
        self.assertIn("the secret was not stored", output)
        code, output = self.secret(saved, AWS_REGION="ap-southeast-2", STACK="prod")
        self.assertIn("stack prod in ap-southeast-2 (the region from AWS_REGION)", output)
        self.assertNotIn("a-secret", output)


if __name__ == "__main__":
    summary.run(verbosity=1)
