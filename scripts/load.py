"""`make load`: the function driven as Lambda drives it, at a target rate, with SQS healthy,
then down, then back.

INSTANCES function processes (release build) each poll a Lambda Runtime API served here, as
Lambda instances do; one sender hands them RATE signed v3 POSTs a second (each a distinct
notification, about 2 KB) from a shared backlog, as API Gateway would. SQS is moto, behind a
proxy that keeps connections open (as SQS does) and that this script can take down: while
down it reads each request and never answers, the worst outage for the function (every call
runs into its timeout).

Phases: `healthy` and `down` for SECONDS each, then `back` for RECOVERY seconds. For each it
prints throughput, p50/p99/max answer time (from the moment the POST is handed to the
instances to its answer: a wait for a busy instance counts), the statuses, and CPU per
notification (all processes' CPU over the phase, per notification answered). Then what
reached the queue: every id answered 200 must be in it (lost), and how many are there twice.
Then, for `back`, how long after SQS returned each instance stored again.

Usage: python scripts/load.py FUNCTION  (RATE=100 SECONDS=60 RECOVERY=30 INSTANCES=4).
Needs the project's .venv (moto, boto3). Exits 1 when a notification answered 200 is not in
the queue, when an answer is neither 200 nor 503, or when an instance does not store again
within 90 s of SQS's return.
"""

import hashlib
import hmac
import http.client
import json
import os
import pathlib
import queue
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

from coldstart import ROOT, KeepAlive, cpu_ns, free_port, new_queue, start_moto

RATE = float(os.environ.get("RATE", "100"))
SECONDS = float(os.environ.get("SECONDS", "60"))
RECOVERY = float(os.environ.get("RECOVERY", "30"))
INSTANCES = int(os.environ.get("INSTANCES", "4"))
SECRET = b"nylas-sample-secret"
TEMPLATE = json.loads((ROOT / "events" / "v3-message-created.json").read_text())
PHASES = ("healthy", "down", "back")


class State:
    backlog = queue.Queue()  # (request id, notification id, event bytes, handed-over time)
    lock = threading.Lock()
    answers = []  # (phase, instance, notification id, status, seconds)
    phase = "healthy"


class Api(BaseHTTPRequestHandler):
    """One instance's Runtime API: `next` takes the oldest POST of the shared backlog."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    instance = None  # set per subclass
    in_flight = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        request_id, notification_id, event, handed = State.backlog.get()
        type(self).in_flight[request_id] = (notification_id, handed, State.phase)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 10_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:f")
        self.send_header("Content-Length", str(len(event)))
        self.end_headers()
        self.wfile.write(event)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        answered = time.perf_counter()
        request_id = self.path.split("/")[-2]
        notification_id, handed, phase = type(self).in_flight.pop(request_id, (None, answered, State.phase))
        status = json.loads(body or b"{}").get("statusCode") if self.path.endswith("/response") else "error"
        with State.lock:
            State.answers.append((phase, self.instance, notification_id, status, answered - handed, answered))
        self.send_response(202)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


class Sqs(KeepAlive):
    """moto behind a switch: while `down`, a request is read and never answered."""

    down = threading.Event()

    def do_POST(self):
        if Sqs.down.is_set():
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            while Sqs.down.is_set():
                time.sleep(0.05)
            self.close_connection = True
            return
        super().do_POST()


def event_for(serial):
    """A signed HTTP API event of one v3 notification with an id of its own."""
    notification_id = f"load-{serial}"
    body = json.dumps({
        "specversion": "1.0", "type": "message.created", "source": "/google/emails/realtime",
        "id": notification_id, "time": 1717162394, "webhook_delivery_attempt": 1,
        "data": {"application_id": "app", "object": {
            "grant_id": f"grant-{serial % 50}", "id": f"m-{serial}", "object": "message",
            "subject": "Quarterly planning", "snippet": "x" * 1500}},
    })
    event = json.loads(json.dumps(TEMPLATE))
    event["body"] = body
    event["headers"]["x-nylas-signature"] = hmac.new(SECRET, body.encode(), hashlib.sha256).hexdigest()
    return notification_id, json.dumps(event).encode()


def send(serial_start, seconds):
    """Hands RATE POSTs a second to the instances for `seconds`; returns the next serial."""
    started = time.perf_counter()
    serial = serial_start
    while (due := started + (serial - serial_start) / RATE) < started + seconds:
        time.sleep(max(0.0, due - time.perf_counter()))
        notification_id, event = event_for(serial)
        State.backlog.put((f"req-{serial}", notification_id, event, time.perf_counter()))
        serial += 1
    return serial


def percentile(values, p):
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


def drain(urls):
    """Every message body in the queues, read with boto3 (each read once: long visibility)."""
    sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{State.sqs_port}", region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    ids = []
    for url in urls:
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600,
                                      MessageAttributeNames=["nylas-id"]).get("Messages", [])
            if not got:
                break
            ids += [m["MessageAttributes"]["nylas-id"]["StringValue"] for m in got]
    return ids


def main():
    function = sys.argv[1]
    State.sqs_port = free_port()
    moto = start_moto(State.sqs_port)
    processes = []
    try:
        KeepAlive.upstream = ("127.0.0.1", State.sqs_port)
        proxy = ThreadingHTTPServer(("127.0.0.1", 0), Sqs)
        proxy.daemon_threads = True
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        # A queue per instance: moto slows as a queue fills.
        urls = [new_queue(State.sqs_port, f"load-{i}") for i in range(INSTANCES)]
        for instance, url in enumerate(urls):
            handler = type(f"Api{instance}", (Api,), {"instance": instance, "in_flight": {}})
            handlers.append(handler)
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            env = {
                "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
                "AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_LAMBDA_FUNCTION_VERSION": "1",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
                "QUEUE_URL": url, "NYLAS_WEBHOOK_SECRET": SECRET.decode(),
                "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.server_address[1]}",
                "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
            }
            processes.append(subprocess.Popen([function], env=env, stdout=subprocess.DEVNULL))
        handlers = []
        cpu = {}
        serial = 0
        back_at = None
        for phase, seconds in zip(PHASES, (SECONDS, SECONDS, RECOVERY)):
            State.phase = phase
            if phase == "down":
                Sqs.down.set()
            if phase == "back":
                Sqs.down.clear()
                back_at = time.perf_counter()
            before = sum(cpu_ns(p.pid) for p in processes)
            serial = send(serial, seconds)
            # The phase's last POSTs are answered before the next phase starts.
            deadline = time.perf_counter() + 30
            while (not State.backlog.empty() or any(h.in_flight for h in handlers)) and time.perf_counter() < deadline:
                time.sleep(0.05)
            cpu[phase] = sum(cpu_ns(p.pid) for p in processes) - before
        stored = drain(urls)
    finally:
        for p in processes:
            p.kill()
        moto.kill()
    report(cpu, stored, back_at, serial)


def report(cpu, stored, back_at, sent):
    answers = list(State.answers)
    failures = []
    print(f"{INSTANCES} instances, {RATE:g} POSTs/s of one v3 notification each; "
          f"SQS healthy {SECONDS:g} s, down {SECONDS:g} s (never answers), back {RECOVERY:g} s")
    print(f"{'phase':<8} {'answered':>9} {'per s':>7} {'p50':>9} {'p99':>9} {'max':>9} {'CPU/notif.':>11}  statuses")
    for phase in PHASES:
        mine = [a for a in answers if a[0] == phase]
        times = sorted(a[4] for a in mine)
        statuses = {}
        for a in mine:
            statuses[a[3]] = statuses.get(a[3], 0) + 1
        span = {"healthy": SECONDS, "down": SECONDS, "back": RECOVERY}[phase]
        per_cpu = cpu[phase] / max(1, len(mine)) / 1000
        print(f"{phase:<8} {len(mine):>9} {len(mine) / span:>7.1f} {percentile(times, 0.5) * 1000:>6.1f} ms "
              f"{percentile(times, 0.99) * 1000:>6.1f} ms {(times[-1] if times else 0) * 1000:>6.0f} ms "
              f"{per_cpu:>8.0f} µs  " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=str)))
        if phase == "down" and times:
            print(f"         down: mean answer {statistics.mean(times) * 1000:.1f} ms; "
                  f"{sum(t > 0.1 for t in times)} answers over 100 ms (each instance's first failure and its probes)")
        odd = {k: v for k, v in statuses.items() if k not in (200, 503)}
        if odd:
            failures.append(f"{phase}: answers other than 200 or 503: {odd}")
    ok_ids = [a[2] for a in answers if a[3] == 200]
    in_queue = set(stored)
    lost = [i for i in ok_ids if i not in in_queue]
    duplicates = len(stored) - len(in_queue)
    print(f"queue: {len(stored)} messages, {len(in_queue)} distinct; {len(ok_ids)} answered 200; "
          f"{len(lost)} lost; {duplicates} stored twice; {sent - len(answers)} unanswered")
    if lost:
        failures.append(f"{len(lost)} notifications answered 200 are not in the queue")
    firsts = {}
    for phase, instance, _, status, _, answered in answers:
        if phase == "back" and status == 200 and instance not in firsts:
            firsts[instance] = answered - back_at
    print(f"back: {len(firsts)} of {INSTANCES} instances stored again; the first 200 of each came "
          + ", ".join(f"{t:.1f} s" for t in sorted(firsts.values())) + " after SQS returned")
    if len(firsts) < INSTANCES or any(t > 90 for t in firsts.values()):
        failures.append("an instance did not store again within 90 s of SQS's return")
    for failure in failures:
        print(f"FAIL {failure}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
