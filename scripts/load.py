"""`make load`: the function driven as Lambda drives it, at a target rate, with SQS healthy,
then down, then back.

INSTANCES function processes (release build) each poll a Lambda Runtime API served here, as
Lambda instances do; one sender hands them RATE signed v3 POSTs a second (each a distinct
notification, about 2 KB) from a shared backlog, as API Gateway would. SQS is moto, behind a
proxy that keeps connections open (as SQS does) and that this script can take down: while
down it reads each request and never answers, the worst outage for the function (every call
runs into its timeout).

Phases: `healthy` and `down` for DURATION seconds each, then `back` for RECOVERY seconds. For each it
prints throughput, p50/p99/max answer time (from the moment the POST is handed to the
instances to its answer: a wait for a busy instance counts), the statuses, and CPU per
notification (all processes' CPU over the phase, per notification answered). Then what
reached the queue (each entry moto reported stored, read on the wire, and the queues' count as
a check): every id answered 200 must be in it (lost), and how many are there twice.
Then, for `back`, how long after SQS returned each instance stored again.

Usage: python scripts/load.py FUNCTION  (RATE=100 DURATION=60 RECOVERY=30 INSTANCES=4).
Needs the project's .venv (moto, boto3). Exits 1 when a notification answered 200 is not in
the queue, when an answer is neither 200 nor 503, or when an instance does not store again
within 90 s of SQS's return.
"""

import http.client
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

from coldstart import ROOT, KeepAlive, cpu_ns, free_port, hand_over, lambda_env, new_queue, serve, start_moto
from sign_events import sender, sign

RATE = float(os.environ.get("RATE", "100"))
SECONDS = float(os.environ.get("DURATION", "60"))
RECOVERY = float(os.environ.get("RECOVERY", "30"))
INSTANCES = int(os.environ.get("INSTANCES", "4"))
SECRET = "nylas-sample-secret"
# The header and prefix of the sender src/main.rs runs with.
HEADER, PREFIX = sender()
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
        hand_over(self, request_id, event)

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
    """moto behind a switch, in a process of its own (`load.py --proxy PORT MOTO_PORT`, so
    that it does not share this one's interpreter lock): while down, a request is read and
    never answered. It notes the `nylas-id` of every entry moto reports stored: what reached
    the queue. `GET /__down`, `/__up` and `/__stored` drive it."""

    down = threading.Event()
    stored = []

    def passed(self, request, response):
        try:
            entries = {e["Id"]: e for e in json.loads(request)["Entries"]}
            successful = json.loads(response).get("Successful", [])
            ids = [entries[s["Id"]]["MessageAttributes"]["nylas-id"]["StringValue"] for s in successful]
        except (ValueError, KeyError, TypeError) as error:
            print(f"proxy: an answer not understood ({type(error).__name__})", file=sys.stderr)
            return
        Sqs.stored += ids  # one list append, atomic under the interpreter lock

    def do_GET(self):
        if self.path == "/__down":
            Sqs.down.set()
        elif self.path == "/__up":
            Sqs.down.clear()
        payload = json.dumps(Sqs.stored if self.path == "/__stored" else "ok").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self):
        if Sqs.down.is_set():
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            while Sqs.down.is_set():
                time.sleep(0.05)
            self.close_connection = True
            return
        super().do_POST()


def serve_proxy(port, moto_port):
    KeepAlive.upstream = ("127.0.0.1", moto_port)
    server = ThreadingHTTPServer(("127.0.0.1", port), Sqs)
    server.daemon_threads = True
    server.serve_forever()


def proxy(port, path):
    """Asks the proxy process for `path`; its JSON answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path)
    answer = json.loads(connection.getresponse().read())
    connection.close()
    return answer


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
    event["headers"][HEADER.lower()] = sign(SECRET, body.encode(), PREFIX)
    return notification_id, json.dumps(event).encode()


def send(events, serial_start, seconds):
    """Hands RATE POSTs a second to the instances for `seconds`; returns the next serial."""
    started = time.perf_counter()
    serial = serial_start
    while (due := started + (serial - serial_start) / RATE) < started + seconds:
        time.sleep(max(0.0, due - time.perf_counter()))
        notification_id, event = events[serial]
        State.backlog.put((f"req-{serial}", notification_id, event, time.perf_counter()))
        serial += 1
    return serial


def percentile(values, p):
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


def count(moto_port, urls):
    """How many messages the queues hold, as SQS says."""
    sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{moto_port}", region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    attribute = "ApproximateNumberOfMessages"
    return sum(int(sqs.get_queue_attributes(QueueUrl=u, AttributeNames=[attribute])["Attributes"][attribute])
               for u in urls)


def main():
    if sys.argv[1] == "--proxy":
        return serve_proxy(int(sys.argv[2]), int(sys.argv[3]))
    function = sys.argv[1]
    # Every POST made before the clock starts: building them would slow the sender.
    events = [event_for(serial) for serial in range(int(RATE * (2 * SECONDS + RECOVERY)) + 1)]
    # Two moto servers, each with its own switchable proxy, each serving half the instances:
    # one moto process cannot take 100 calls a second on this machine.
    sqs = []  # (moto port, proxy port)
    processes = []
    try:
        for _ in range(2):
            moto_port, proxy_port = free_port(), free_port()
            processes.append(start_moto(moto_port))
            processes.append(subprocess.Popen([sys.executable, __file__, "--proxy", str(proxy_port), str(moto_port)]))
            sqs.append((moto_port, proxy_port))
        for _, proxy_port in sqs:
            for _ in range(100):
                try:
                    proxy(proxy_port, "/__ping")
                    break
                except OSError:
                    time.sleep(0.1)
        handlers, functions, urls = [], [], []
        for instance in range(INSTANCES):
            moto_port, proxy_port = sqs[instance % 2]
            # A queue per instance: moto slows as a queue fills.
            urls.append(new_queue(moto_port, f"load-{instance}"))
            handler = type(f"Api{instance}", (Api,), {"instance": instance, "in_flight": {}})
            handlers.append(handler)
            server = serve(handler)
            settings = {"QUEUE_URL": urls[-1], "NYLAS_WEBHOOK_SECRET": SECRET,
                        "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}
            env = lambda_env(server.server_address[1], proxy_port, settings)
            functions.append(subprocess.Popen([function], env=env, stdout=subprocess.DEVNULL))
        processes += functions
        cpu = {}
        serial = 0
        back_at = None
        for phase, seconds in zip(PHASES, (SECONDS, SECONDS, RECOVERY)):
            State.phase = phase
            if phase in ("down", "back"):
                for _, proxy_port in sqs:
                    proxy(proxy_port, "/__down" if phase == "down" else "/__up")
                if phase == "down":
                    State.down_at = time.perf_counter()
                else:
                    back_at = time.perf_counter()
            before = sum(cpu_ns(p.pid) for p in functions)
            serial = send(events, serial, seconds)
            # The phase's POSTs are answered before the next phase starts (at most 30 s).
            deadline = time.perf_counter() + 30
            while (not State.backlog.empty() or any(h.in_flight for h in handlers)) and time.perf_counter() < deadline:
                time.sleep(0.05)
            cpu[phase] = sum(cpu_ns(p.pid) for p in functions) - before
        # What is still waiting is never handed over; what is in flight is answered first.
        while not State.backlog.empty():
            State.backlog.get_nowait()
        deadline = time.perf_counter() + 15
        while any(h.in_flight for h in handlers) and time.perf_counter() < deadline:
            time.sleep(0.05)
        stored = [i for _, proxy_port in sqs for i in proxy(proxy_port, "/__stored")]
        in_queues = sum(count(sqs[i % 2][0], [url]) for i, url in enumerate(urls))
    finally:
        for p in processes:
            p.kill()
    report(cpu, stored, in_queues, back_at, serial)


def report(cpu, stored, in_queues, back_at, sent):
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
        if phase == "down" and times and SECONDS > 5:
            # Steady state: once every instance has had its first failure (2 s) and the
            # POSTs that waited for it are answered.
            steady = sorted(a[4] for a in mine if a[5] - State.down_at > 5)
            print(f"         steady state (after the first 5 s): {len(steady)} answers, mean "
                  f"{statistics.mean(steady) * 1000:.1f} ms, p50 {percentile(steady, 0.5) * 1000:.1f} ms, "
                  f"p99 {percentile(steady, 0.99) * 1000:.1f} ms, {sum(t > 0.5 for t in steady)} over 500 ms "
                  f"(probes, one per instance every 5 s, and the POSTs that waited behind one)")
        odd = {k: v for k, v in statuses.items() if k not in (200, 503)}
        if odd:
            failures.append(f"{phase}: answers other than 200 or 503: {odd}")
    ok_ids = [a[2] for a in answers if a[3] == 200]
    in_queue = set(stored)
    lost = [i for i in ok_ids if i not in in_queue]
    duplicates = len(stored) - len(in_queue)
    print(f"queue: {len(stored)} messages stored ({in_queues} in the queues, as SQS counts them), "
          f"{len(in_queue)} distinct; {len(ok_ids)} answered 200; {len(lost)} lost; "
          f"{duplicates} stored twice; {sent - len(answers)} unanswered")
    if in_queues != len(stored):
        failures.append(f"the queues hold {in_queues} messages, the proxy saw {len(stored)} stored")
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
