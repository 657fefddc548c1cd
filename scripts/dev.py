"""`make dev`: the receiver on this machine, reading its secret and forwarding as deployed.

Starts a local AWS (moto: SQS and Secrets Manager) on SQS_PORT, creates the queue QUEUE and
the webhook secret (holding the sample secret), builds the function, and runs it under the
Lambda Runtime API emulator (`cargo lambda watch`, which rebuilds it when the code changes) on
INVOKE_PORT. It refuses to start when a port is taken, and stops everything it started on
Ctrl-C, SIGTERM or SIGHUP (exiting 0). Its logs go to .local/dev-<SQS_PORT>/: moto.log, and
function.log (the function's log lines, shown in the terminal too). Edits under src/, contract/ or to
Cargo.toml rebuild the function; .cargolambdaignore lists what restarts nothing, and consumer/
restarts only `make consume`'s emulator.

    python scripts/dev.py                  run (what `make dev` does)
    python scripts/dev.py invoke EVENT     send a sample event (what `make invoke` does)
    python scripts/dev.py post BODY        sign a body with the local secret and POST it to
                                           the function URL (what `make post` does)
    python scripts/dev.py listening NAME   exit 1 with one line unless SQS_PORT or
                                           INVOKE_PORT (NAME: sqs or invoke) is served

Settings come from the environment: SQS_PORT (4566), INVOKE_PORT (9000), QUEUE
(nylas-webhooks), the ones the other make targets read.
"""

import ctypes
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv" / "bin"
DEFAULTS = {"SQS_PORT": "4566", "INVOKE_PORT": "9000", "QUEUE": "nylas-webhooks"}
SETTINGS = {name: os.environ.get(name) or default for name, default in DEFAULTS.items()}
PORTS = {"sqs": int(SETTINGS["SQS_PORT"]), "invoke": int(SETTINGS["INVOKE_PORT"])}
FUNCTION = "nylas-webhook-sqs"
LOGS = ROOT / ".local" / f"dev-{PORTS['sqs']}"
# cargo lambda watch's line when it stops the function to run a new build.
RESTARTED = "ForceStop"
# Longest `make invoke` waits for an answer, a rebuild included.
INVOKE_WITHIN = 300


def with_settings(command):
    """`command` as the user would type it for the settings in force."""
    changed = [f"{name}={value}" for name, value in SETTINGS.items() if value != DEFAULTS[name]]
    return " ".join(changed + [command])


def serving(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def holder(port):
    """What listens on `port`: 'pid N (command line)', from /proc, or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = pathlib.Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = {os.readlink(fd) for fd in (proc / "fd").iterdir()}
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            return f"pid {proc.name} ({command})"
    return None


def taken(port):
    """Whether something listens on `port`. The probe binds as servers do (SO_REUSEADDR), so
    a port that closed connections left in TIME_WAIT, as after a `make consume` stopped, is
    free: the emulator binds it the same way."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            return False
        except OSError:
            return True


def listening(name):
    port = PORTS[name]
    if not serving(port):
        sys.exit(
            f"nothing is listening on 127.0.0.1:{port}: start the receiver with "
            f"`{with_settings('make dev')}`"
        )


def invoke(event):
    """Sends `event` and prints the answer. An event the emulator takes while the function is
    rebuilt waits for the build; one the function was handling when the emulator stopped it
    for a new build is lost with it: with no answer 15 s after a restart, it is sent again,
    once. Nothing waits longer than INVOKE_WITHIN."""
    path = pathlib.Path(event)
    if not path.is_file():
        names = ", ".join(sorted(p.name for p in (ROOT / "events").glob("*.json")))
        sys.exit(f"make invoke: no event file {event} (events/ holds {names})")
    listening("invoke")
    command = [str(VENV / "cargo-lambda"), "lambda", "invoke", "--invoke-address", "127.0.0.1",
               "--invoke-port", str(PORTS["invoke"]), "--data-file", str(path), FUNCTION]
    log = LOGS / "function.log"
    deadline = time.monotonic() + INVOKE_WITHIN
    for attempt in (1, 2):
        mark = log.stat().st_size if log.exists() else 0
        sent = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        restarted_at = None
        while sent.poll() is None and time.monotonic() < deadline:
            if restarted_at is None and restarted_since(log, mark):
                restarted_at = time.monotonic()
            if restarted_at is not None and time.monotonic() - restarted_at > 15 and building(log):
                restarted_at = time.monotonic()
            if restarted_at is not None and time.monotonic() - restarted_at > 15:
                break
            time.sleep(0.1)
        if sent.poll() is None:
            sent.kill()
            sent.wait()
            if time.monotonic() >= deadline:
                sys.exit(f"make invoke: no answer within {INVOKE_WITHIN} s: see {log}")
            if attempt == 2:
                sys.exit("make invoke: the function was rebuilt twice while it handled the event: send it again")
            print("make invoke: the function was rebuilt while it handled the event, which was lost "
                  "with it: sent again")
            continue
        output = sent.stdout.read()
        print(output, end="")
        print_hint(output)
        if sent.returncode != 0:
            sys.exit(sent.returncode)
        try:
            answer = json.loads(output.strip().splitlines()[-1])
            status, reason = int(answer["statusCode"]), answer.get("body") or ""
        except (ValueError, IndexError, KeyError, TypeError):
            sys.exit("make invoke: the answer above is not an API Gateway response")
        exit_for(status, reason, "make invoke")


def exit_for(status, reason, command):
    """Exits 0 on a 2xx answer; otherwise 1, after a line naming the status (on standard
    error), so that a script or CI step that sends an event sees the failure."""
    if 200 <= status < 300:
        sys.exit(0)
    sys.exit(f"{command}: the function answered {status} {reason}".rstrip())


def post(body_file):
    """Signs the file's bytes with the secret the local function verifies with (the current
    version in the local Secrets Manager) as the sender signs them, and POSTs them to the
    function URL; prints the answer."""
    import urllib.error
    import urllib.request

    import local_aws
    import sign_events

    path = pathlib.Path(body_file)
    if not body_file or not path.is_file():
        sys.exit(f"make post: no file {body_file!r}: name the body to send, BODY=<file.json>")
    listening("invoke")
    body = path.read_bytes()
    secrets = local_aws.client("secretsmanager", f"http://127.0.0.1:{PORTS['sqs']}")
    secret = secrets.get_secret_value(SecretId=local_aws.SECRET)["SecretString"].strip()
    header, prefix = sign_events.sender()
    url = f"http://127.0.0.1:{PORTS['invoke']}/lambda-url/{FUNCTION}/webhook"
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", header: sign_events.sign(secret, body, prefix)})
    try:
        with urllib.request.urlopen(request, timeout=INVOKE_WITHIN) as answer:
            status, reason = answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as answer:
        status, reason = answer.code, answer.read().decode(errors="replace")
    except OSError as error:
        sys.exit(f"make post: no answer from {url}: {error}")
    print(f"{status} {reason}".rstrip())
    exit_for(status, reason, "make post")


def restarted_since(log, mark):
    """Whether cargo lambda watch has started the function again since `mark` (a build, or a
    stop for one)."""
    if not log.exists():
        return False
    with open(log, errors="replace") as lines:
        lines.seek(mark)
        return any(word in lines.read() for word in ("ForceStop", "Compiling ", "Running `"))


def building(log):
    """Whether the last thing cargo lambda watch did is a build that has not started the
    function yet."""
    if not log.exists():
        return False
    text = log.read_text(errors="replace")
    return text.rfind("Compiling ") > text.rfind("Running `")


def print_hint(output):
    """What to do about an answer the edit loop often meets."""
    try:
        reason = json.loads(output.strip().splitlines()[-1]).get("body")
    except (ValueError, IndexError, AttributeError):
        return
    if reason == "signature_mismatch":
        print(f"""
The event's signature matches no secret the function has. If you edited the event, sign it
again: `make sign-events`. If you stored another secret (`{with_settings('make secret LOCAL=1')}`),
sign with it: `make sign-events SECRET=<it>`. README, "Sample events".""")


def start(command, log, env=None):
    """A child in a session of its own, so that stopping it stops everything it started, and
    which Linux stops if this process dies without stopping it (PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=ROOT, env=env, preexec_fn=lambda: libc.prctl(1, signal.SIGTERM))


def stop(children):
    for child in children:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    for child in children:
        try:
            child.wait(max(0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def wait_for(port, child, what):
    for _ in range(600):
        if serving(port):
            return
        if child.poll() is not None:
            raise SystemExit(f"{what} exited before listening on port {port}")
        time.sleep(0.1)
    raise SystemExit(f"{what} did not listen on port {port} within a minute")


def run():
    for name, port in PORTS.items():
        if taken(port):
            held = holder(port) or "another process"
            sys.exit(
                f"make dev: port {port} ({name.upper()}_PORT) is in use by {held}. Stop it "
                f"(is another `make dev` running?), or choose other ports: "
                f"SQS_PORT=<port> INVOKE_PORT=<port> make dev"
            )
    parent = os.getppid()
    logs = LOGS
    logs.mkdir(parents=True, exist_ok=True)
    endpoint = f"http://127.0.0.1:{PORTS['sqs']}"
    children = []

    def stop_on_signal(number, _frame):
        print(f"make dev: {signal.Signals(number).name}: everything it started is stopped")
        raise SystemExit(0)

    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, stop_on_signal)
    try:
        with open(logs / "moto.log", "w") as moto_log:
            moto = start([str(VENV / "moto_server"), "-H", "127.0.0.1", "-p", str(PORTS["sqs"])],
                         moto_log)
        children.append(moto)
        wait_for(PORTS["sqs"], moto, f"moto_server (see {logs / 'moto.log'})")
        env_file = logs / "dev.env"
        created = subprocess.run(
            [str(VENV / "python"), "scripts/local_aws.py", "create"], cwd=ROOT, check=True,
            capture_output=True, text=True, env={**os.environ, "SQS_ENDPOINT": endpoint,
                                                 "QUEUE": SETTINGS["QUEUE"]},
        ).stdout
        env_file.write_text(created + "\n".join([
            "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
            "AWS_EC2_METADATA_DISABLED=true", f"AWS_ENDPOINT_URL={endpoint}", "",
        ]))
        print("Building the function (the emulator runs this build) ...", flush=True)
        if subprocess.run(["cargo", "build", "--bin", FUNCTION], cwd=ROOT).returncode != 0:
            raise SystemExit("make dev: the function does not build: see cargo's output above")
        # The consumer is not the function: editing it must not restart it (the root's
        # .cargolambdaignore serves `make consume`'s emulator too, which must restart).
        ignore = logs / "receiver.cargolambdaignore"
        ignore.write_text("consumer/\n")
        watch = start([str(VENV / "cargo-lambda"), "lambda", "watch", "--invoke-address", "127.0.0.1",
                       "--invoke-port", str(PORTS["invoke"]), "--env-file", str(env_file)],
                      subprocess.PIPE, {**os.environ, "CARGO_LAMBDA_IGNORE_FILE": str(ignore)})
        children.append(watch)
        threading.Thread(target=tee, args=(watch.stdout, logs / "function.log"), daemon=True).start()
        wait_for(PORTS["invoke"], watch, "cargo lambda watch")
        print(banner(created, endpoint), flush=True)
        while all(child.poll() is None for child in children):
            # make forwards SIGTERM to this process; if make is gone (killed outright),
            # nobody else is left to stop these.
            if os.getppid() != parent:
                raise SystemExit("make dev: make exited: everything it started is stopped")
            time.sleep(0.2)
        raise SystemExit("make dev: a process it started exited: see its output above")
    finally:
        stop(children)


def tee(pipe, path):
    """Copies the emulator's output, the function's log lines among it, to the terminal and to
    `path`."""
    with open(path, "ab") as log:
        for line in iter(pipe.readline, b""):
            for out in (sys.stdout.buffer, log):
                out.write(line)
                out.flush()


def banner(created, endpoint):
    queue_url = created.split("QUEUE_URL=", 1)[1].split()[0]
    url = f"http://127.0.0.1:{PORTS['invoke']}/lambda-url/{FUNCTION}/webhook"
    return f"""
  Local AWS (moto):  {endpoint}   queue: {queue_url}
  Function URL:      {url}
  Secret:            nylas-sample-secret, in the local Secrets Manager (the sample events
                     are signed with it)

  In another terminal:
    {with_settings('make invoke EVENT=events/v3-message-created.json')}
        sends a sample event
    {with_settings('make queue')}
        prints (and removes) what reached the queue
    {with_settings('make consume')}
        runs the example consumer on the queue (each notification once)
    {with_settings('make forget')}
        lets the consumer run a notification it has seen again
    {with_settings('make post BODY=<file.json>')}
        signs any body with the local secret and sends it
    {with_settings('make replay LOCAL=1 FROM=<time> TO=<time>')}
        sends what the archive kept of that range again (UTC: 2026-12-06T08:00:00Z)
    {with_settings('make secret LOCAL=1')}
        stores another secret, as after a rotation
    curl '{url}?challenge=hello'

  Edit and invoke: a change under src/ or to Cargo.toml rebuilds the function (an invoke
  sent meanwhile waits for the build; `ERROR command killed code=ForceStop` is the emulator
  stopping the old build); edits to events/ or consumer/ restart nothing (after editing an
  event, `make sign-events`).

  Stop with Ctrl-C. The function's log lines: {LOGS / 'function.log'}
  (moto's: {LOGS / 'moto.log'})
"""


if __name__ == "__main__":
    if sys.argv[1:] == []:
        run()
    elif sys.argv[1:2] == ["invoke"] and len(sys.argv) == 3:
        invoke(sys.argv[2])
    elif sys.argv[1:2] == ["post"] and len(sys.argv) == 3:
        post(sys.argv[2])
    elif sys.argv[1:2] == ["listening"] and sys.argv[2:] in (["sqs"], ["invoke"]):
        listening(sys.argv[2])
    else:
        sys.exit(__doc__)
