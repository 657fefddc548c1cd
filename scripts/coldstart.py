"""`make coldstart`: start-up and per-invocation cost of the function against a hello-world
function on the same runtime (examples/hello.rs), both release builds, each driven by a
minimal Lambda Runtime API served here.

For each binary:
- init: from spawn to its first `GET .../invocation/next` (median and p90 of RUNS starts);
- first response: from spawn to the response to the first invocation (the function sends to
  a local moto queue: this includes building the SQS request and the first connection);
  SQS requests go through a small proxy that keeps the connection open, as SQS does and moto
  does not;
- CPU per invocation: CPU time (all threads, /proc/<pid>/task/*/schedstat) spent on
  INVOCATIONS invocations after the first, divided by INVOCATIONS;
- peak memory: VmHWM after those invocations.
The function is measured twice: with the archive off (`function`: no ARCHIVE_STREAM, no
Firehose client) and on (`with-archive`: each notification also put to moto's Firehose).

Usage: python scripts/coldstart.py FUNCTION HELLO [BEFORE]  (paths of release binaries).
BEFORE, a build of an earlier commit, is measured in the same run, its starts alternating
with the others', so that a change is measured against the same load.
WRAP runs each binary under a command (valgrind's callgrind: instructions, repeatable where
seconds are not). RUNS, INVOCATIONS and CPU_ROUNDS (5: rounds of INVOCATIONS, binaries alternating, median
taken) set the counts; EVENT another API Gateway event to send. As on
Lambda, SSL_CERT_DIR is unset and SSL_CERT_FILE names one bundle (CERT_BUNDLE, this machine's by default; CERT_BUNDLE= leaves it unset).
Needs the project's .venv (moto). Prints a table, and with PEER=1 (BEFORE is the
straightforward receiver, benches/peer) the verdicts on issue 15's ratios.

`python scripts/coldstart.py consumer CONSUMER HELLO_SQS [BEFORE]` (make coldstart-consumer)
measures the consumer the same way, each invocation one SQS message holding a new v3
notification: against a hello-world SQS function (consumer/examples/hello_sqs.rs), idempotency
off, and idempotency on a moto DynamoDB table, counting the DynamoDB calls per notification on
the wire; BEFORE, an earlier build of the consumer, with idempotency on, in the same run.
"""

import http.client
import itertools
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import local_aws

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("RUNS", "60"))
INVOCATIONS = int(os.environ.get("INVOCATIONS", "1000"))
CPU_ROUNDS = int(os.environ.get("CPU_ROUNDS", "5"))
EVENT = json.loads(pathlib.Path(os.environ.get("EVENT", ROOT / "events" / "v3-message-created.json")).read_text())
EVENT_BYTES = json.dumps(EVENT).encode()


def hand_over(handler, request_id, event):
    """Answers a function's `GET .../invocation/next` with `event`, as Lambda does."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
    handler.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 10_000))
    handler.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:f")
    handler.send_header("Content-Length", str(len(event)))
    handler.end_headers()
    handler.wfile.write(event)


class RuntimeApi(BaseHTTPRequestHandler):
    """The two calls a function makes: next (hands out the event) and response."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, the second waits for the
    # client's delayed ACK (40 ms) on a kept-alive connection.
    disable_nagle_algorithm = True
    state = None  # set per run
    # The event of the n-th invocation, and whether an answer is the one expected.
    event = staticmethod(lambda serial: EVENT_BYTES)
    answered = staticmethod(lambda answer: answer.get("statusCode") == 200)

    def log_message(self, *args):
        pass

    def do_GET(self):
        state = RuntimeApi.state
        if state["first_next"] is None:
            state["first_next"] = time.perf_counter()
        with state["cond"]:
            # No work: hold the function here, as Lambda freezes it between invocations.
            while state["remaining"] == 0:
                state["idle"] = True
                state["cond"].notify_all()
                state["cond"].wait()
            state["idle"] = False
            state["remaining"] -= 1
            state["serial"] += 1
            request_id = f"req-{state['serial']}"
        hand_over(self, request_id, RuntimeApi.event(state["serial"]))

    def do_POST(self):
        state = RuntimeApi.state
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        with state["cond"]:
            if state["first_response"] is None:
                state["first_response"] = time.perf_counter()
                state["first_ok"] = RuntimeApi.answered(json.loads(body or b"{}"))
            state["responses"] += 1
            state["cond"].notify_all()
        payload = b'{"status":"OK"}'
        self.send_response(202)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class KeepAlive(BaseHTTPRequestHandler):
    """Passes SQS requests on to moto and keeps the function's connection open, as SQS does.

    moto answers every request with `Connection: close`, so without this the function would
    open a TCP connection per invocation, which it never does on AWS."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as in RuntimeApi
    upstream = None  # (host, port), set in main

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        connection = http.client.HTTPConnection(*KeepAlive.upstream)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        connection.request("POST", self.path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        self.passed(body, payload)
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("connection", "content-length", "server", "date"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


    def passed(self, request, response):
        """Sees each request and moto's answer; for subclasses."""


def serve(handler):
    """An HTTP server of `handler` on a free loopback port, in the background."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def lambda_env(runtime_port, aws_port, settings):
    """A function's environment as Lambda gives it, its AWS calls going to `aws_port`: one
    certificate bundle in SSL_CERT_FILE (CERT_BUNDLE), no SSL_CERT_DIR."""
    bundle = os.environ.get("CERT_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    return {
        **({"SSL_CERT_FILE": bundle} if bundle else {}),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime_port}",
        "AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        **settings,
        "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{aws_port}",
    }


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ns(pid):
    total = 0
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        total += int((task / "schedstat").read_text().split()[0])
    return total


def peak_kb(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def wait_idle(state, responses, timeout):
    """Waits until the function has answered `responses` invocations and asks for more."""
    with state["cond"]:
        return state["cond"].wait_for(
            lambda: state["idle"] and state["responses"] >= responses, timeout
        )


def run(binary, env, invocations):
    """One start of `binary`; returns (init s, first response s, CPU ns per invocation, peak kB)."""
    state = {
        "first_next": None, "first_response": None, "first_ok": None, "responses": 0,
        "remaining": 1, "serial": 0, "idle": False, "cond": threading.Condition(),
    }
    RuntimeApi.state = state
    started = time.perf_counter()
    wrapper = os.environ.get("WRAP", "").split()  # WRAP="valgrind --tool=callgrind ...": counts
    process = subprocess.Popen([*wrapper, binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_idle(state, 1, 30):
            sys.exit(f"{binary} did not finish its first invocation")
        if not state["first_ok"]:
            sys.exit(f"{binary} did not answer its first event as expected")
        init, first = state["first_next"] - started, state["first_response"] - started
        cpu = peak = None
        if invocations:
            before = cpu_ns(process.pid)
            with state["cond"]:
                state["remaining"] = invocations
                state["cond"].notify_all()
            if not wait_idle(state, 1 + invocations, 600):
                sys.exit(f"{binary} did not finish {invocations} invocations")
            cpu = (cpu_ns(process.pid) - before) / invocations
            peak = peak_kb(process.pid)
        return init, first, cpu, peak
    finally:
        if wrapper:  # a wrapper writes what it counted when its program ends, not when killed
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        process.kill()
        process.wait()


def new_queue(sqs_port, name):
    """A new, empty queue on moto (boto3 comes with it); its URL."""
    return subprocess.run(
        [str(ROOT / ".venv/bin/python"), "-c",
         "import boto3, sys; print(boto3.client('sqs', endpoint_url=sys.argv[1], region_name='us-east-1',"
         " aws_access_key_id='test', aws_secret_access_key='test').create_queue(QueueName=sys.argv[2])['QueueUrl'])",
         f"http://127.0.0.1:{sqs_port}", name],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


def start_moto(port):
    """moto's server on `port`, once it accepts connections."""
    moto = subprocess.Popen(
        [str(ROOT / ".venv/bin/moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return moto
        except OSError:
            time.sleep(0.1)
    moto.kill()
    sys.exit("moto did not start")


def measure(binaries, invocation_env):
    """Starts each of `binaries` (name, path, env) RUNS times, alternating, then runs each for
    INVOCATIONS invocations in the environment `invocation_env(name, env)` gives."""
    starts = {name: [] for name, _, _ in binaries}
    for _ in range(RUNS):
        for name, binary, binary_env in binaries:
            starts[name].append(run(binary, binary_env, 0))
    # CPU per invocation drifts with the machine's load: CPU_ROUNDS rounds of INVOCATIONS each,
    # the binaries alternating, and the median of each binary's rounds.
    rounds = {name: [] for name, _, _ in binaries}
    for _ in range(CPU_ROUNDS):
        for name, binary, binary_env in binaries:
            rounds[name].append(run(binary, invocation_env(name, binary_env), INVOCATIONS))
    results = {}
    for name, binary, binary_env in binaries:
        cpu = statistics.median(r[2] for r in rounds[name])
        peak = max(r[3] for r in rounds[name])
        inits = sorted(s[0] for s in starts[name])
        firsts = sorted(s[1] for s in starts[name])
        results[name] = {
            "init_ms": statistics.median(inits) * 1000,
            "init_p90_ms": inits[int(len(inits) * 0.9) - 1] * 1000,
            "first_ms": statistics.median(firsts) * 1000,
            "cpu_us": cpu / 1000,
            "peak_mb": peak / 1024,
        }
    return results


def print_table(results, event):
    print(f"{RUNS} starts each, then {CPU_ROUNDS} rounds of {INVOCATIONS} invocations of {event} (median)")
    print(f"{'':<15} {'init (median)':>14} {'init (p90)':>11} {'first response':>15} {'CPU/invocation':>15} {'peak RSS':>9}")
    for name, r in results.items():
        print(f"{name:<15} {r['init_ms']:>11.2f} ms {r['init_p90_ms']:>8.2f} ms {r['first_ms']:>12.2f} ms {r['cpu_us']:>12.0f} µs {r['peak_mb']:>6.1f} MB")


def main():
    function, hello = sys.argv[1:3]
    baseline = sys.argv[3] if len(sys.argv) > 3 else None
    sqs_port = free_port()
    moto = start_moto(sqs_port)
    try:
        created = subprocess.run(
            [str(ROOT / ".venv/bin/python"), str(ROOT / "scripts/local_aws.py"), "create"],
            env={**os.environ, "SQS_ENDPOINT": f"http://127.0.0.1:{sqs_port}", "QUEUE": "coldstart"},
            capture_output=True, text=True, check=True,
        ).stdout
        settings = dict(line.split("=", 1) for line in created.split())
        # The archive is measured apart: "function" runs with it off (no Firehose client),
        # "with-archive" with it on, putting each notification to moto's Firehose.
        archive_stream = settings.pop("ARCHIVE_STREAM")
        server = serve(RuntimeApi)
        KeepAlive.upstream = ("127.0.0.1", sqs_port)
        sqs_proxy = serve(KeepAlive)
        env = lambda_env(server.server_address[1], sqs_proxy.server_address[1], settings)
        # The function reads its secret from Secrets Manager, as deployed: its first response
        # includes that read. ENV_SECRET=1 gives it the secret in the environment instead;
        # BEFORE, a build from before the secret moved to Secrets Manager, is given it there
        # unless SAME_ENV=1.
        env_secret = {**env, "NYLAS_WEBHOOK_SECRET": "nylas-sample-secret"}
        del env_secret["NYLAS_WEBHOOK_SECRET_ARN"]
        if os.environ.get("ENV_SECRET") == "1":
            env = env_secret
        # Starts alternate between the binaries, so that a change in the machine's load falls
        # on all alike.
        binaries = [("hello-world", hello, env), ("function", function, env),
                    ("with-archive", function, {**env, "ARCHIVE_STREAM": archive_stream})]
        if baseline:
            # SAME_ENV=1: BEFORE reads its secret as the function does (both know the ARN).
            binaries.append(("before", baseline, env if os.environ.get("SAME_ENV") == "1" else env_secret))
        # Each binary's invocations go to a queue of their own: moto slows as a queue
        # fills, and the binary measured last would pay for the others' messages.
        results = measure(binaries, lambda name, env: {**env, "QUEUE_URL": new_queue(sqs_port, f"coldstart-{name}")})
        server.shutdown()
        sqs_proxy.shutdown()
    finally:
        moto.kill()
    print_table(results, os.environ.get("EVENT", "events/v3-message-created.json"))
    f, h = results["function"], results["hello-world"]
    verdicts = [("peak RSS at most 30 MB", f["peak_mb"] <= 30, f"{f['peak_mb']:.1f} MB")]
    if baseline:
        b = results["before"]
        for name in ("with-archive", "function"):
            ratios = {k: results[name][k] / b[k] for k in ("init_ms", "first_ms", "cpu_us", "peak_mb")}
            print(
                f"{name} against before: init {ratios['init_ms']:.2f}x, first response {ratios['first_ms']:.2f}x, "
                f"CPU per invocation {ratios['cpu_us']:.2f}x, peak RSS {ratios['peak_mb']:.2f}x"
            )
        # PEER=1 (make coldstart BEFORE=peer): issue 15's lead over the straightforward receiver.
        if os.environ.get("PEER") == "1":
            verdicts += [
                ("init at most 0.9x the peer's", ratios["init_ms"] <= 0.9, f"{ratios['init_ms']:.2f}x"),
                ("first response at most 0.9x the peer's", ratios["first_ms"] <= 0.9, f"{ratios['first_ms']:.2f}x"),
                ("CPU per invocation at most 0.55x the peer's", ratios["cpu_us"] <= 0.55, f"{ratios['cpu_us']:.2f}x"),
            ]
    for text, ok, figure in verdicts:
        print(f"{'ok  ' if ok else 'OVER'} {text}: {figure}")
    sys.exit(0 if all(ok for _, ok, _ in verdicts) else 1)


# The consumer's events: one SQS message each, as the receiver writes it, with a new nylas-id
# every time (across starts too), so that each is processed rather than skipped.
NOTIFICATIONS = itertools.count(1)
EVENT_NOTIFICATION = json.loads(json.loads((ROOT / "events" / "v3-message-created.json").read_text())["body"])


def sqs_event(_serial):
    notification = {**EVENT_NOTIFICATION, "id": f"coldstart-{next(NOTIFICATIONS)}"}
    body = json.dumps(notification, separators=(",", ":"))
    text = lambda value: {"stringValue": value, "dataType": "String"}
    record = {
        "messageId": notification["id"], "receiptHandle": "r", "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {"nylas-id": text(notification["id"]), "nylas-api-version": text("v3"),
                              "nylas-type": text(notification["type"]), "nylas-id-rule": text("member")},
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1",
    }
    return json.dumps({"Records": [record]}).encode()


class CountingProxy(KeepAlive):
    """KeepAlive that counts the DynamoDB calls it passes on, by operation."""

    calls = {}

    def passed(self, request, response):
        operation = self.headers.get("X-Amz-Target", "?").rsplit(".", 1)[-1]
        CountingProxy.calls[operation] = CountingProxy.calls.get(operation, 0) + 1


def consumer_main():
    consumer, hello = sys.argv[2:4]
    before = sys.argv[4] if len(sys.argv) > 4 else None
    port = free_port()
    moto = start_moto(port)
    try:
        RuntimeApi.event = staticmethod(sqs_event)
        RuntimeApi.answered = staticmethod(lambda answer: answer.get("batchItemFailures") == [])
        server = serve(RuntimeApi)
        KeepAlive.upstream = ("127.0.0.1", port)
        proxy = serve(CountingProxy)
        env = lambda_env(server.server_address[1], proxy.server_address[1], {})
        binaries = [
            ("hello-world", hello, env),
            ("idempotency off", consumer, {**env, "IDEMPOTENCY": "off"}),
            ("consumer", consumer, {**env, "IDEMPOTENCY_TABLE": "coldstart"}),
        ] + ([("before", before, {**env, "IDEMPOTENCY_TABLE": "coldstart"})] if before else [])
        local_aws.create_table("coldstart", f"http://127.0.0.1:{port}")
        counted = {}

        def invocation_env(name, env):
            CountingProxy.calls = {}
            counted[name] = CountingProxy.calls
            return env

        results = measure(binaries, invocation_env)
        server.shutdown()
        proxy.shutdown()
    finally:
        moto.kill()
    print_table(results, "an SQS event of one new v3 notification")
    calls = counted["consumer"]
    # The measured start answers one event before the INVOCATIONS.
    per = {op: n / (INVOCATIONS + 1) for op, n in sorted(calls.items())}
    print("DynamoDB calls per notification:", ", ".join(f"{op} {n:.2f}" for op, n in per.items()) or "none")
    if counted["idempotency off"]:
        sys.exit(f"idempotency off still called DynamoDB: {counted['idempotency off']}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["consumer"]:
        consumer_main()
    else:
        main()
