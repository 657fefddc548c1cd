"""`make consume`: the example consumer (consumer/src/bin/example.rs) reading `make dev`'s queue.

Creates the idempotency table in `make dev`'s moto (DynamoDB, on the same port as SQS), runs
the consumer under the Lambda Runtime API emulator (`cargo lambda watch`, which rebuilds it when
the code changes) on CONSUME_PORT, and plays Lambda's SQS event source: it receives batches of
up to 10 messages, invokes the function with each, deletes what the function processed and
leaves what it returned to come back after the visibility timeout (VISIBILITY seconds), as an
event source mapping with ReportBatchItemFailures does. Each notification is printed as it is
processed, and duplicates as they are skipped. A message returned five times goes to the
dead-letter queue, by the queue's redrive policy as deployed, and is reported when it does.
Stops on Ctrl-C, SIGTERM or SIGHUP (exiting 0). The consumer's log lines go to
.local/dev-<SQS_PORT>/consumer.log.

Settings come from the environment: SQS_PORT (4566), QUEUE (nylas-webhooks), CONSUME_PORT
(9001), TABLE (nylas-idempotency), VISIBILITY (5), and BATCHES (stop after that many non-empty
batches and one more receive; for tests).
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import dev
import local_aws

FUNCTION = "nylas-webhook-consumer"
PORT = int(os.environ.get("CONSUME_PORT") or 9001)
TABLE = local_aws.TABLE
VISIBILITY = int(os.environ.get("VISIBILITY") or 5)
BATCHES = int(os.environ.get("BATCHES") or 0)
LOG = dev.LOGS / "consumer.log"


WHAT = {"duplicate": "duplicate, skipped", "in_progress": "in progress, returned",
        "behind_failure": "behind a failure, returned", "failed": "failed, returned"}


def row(line):
    """One of the consumer's log lines for people: outcome, type, then the id, which may be
    long, last; a failure's reason on a line of its own below. None for other lines."""
    outcome = line.get("outcome") if isinstance(line, dict) else None
    if outcome is None:
        return None
    text = f"  {WHAT.get(outcome, outcome):<26} {line.get('nylas_type') or '-':<44} {line.get('nylas_id')}"
    if line.get("replay_id"):
        text += f" (replay {line['replay_id']})"
    if outcome == "failed":
        text += f"\n      {line.get('message')}"
    return text


def show(pipe):
    """Prints the consumer's lines for people (`row`), all to the log."""
    with open(LOG, "ab") as log:
        for raw in iter(pipe.readline, b""):
            log.write(raw)
            log.flush()
            try:
                text = row(json.loads(raw))
            except ValueError:
                continue
            if text is not None:
                print(text, flush=True)


def event(messages, queue_arn):
    """The SQS event Lambda would hand the function for `messages`."""
    records = [{
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": m.get("Attributes", {}),
        "messageAttributes": {
            name: {"stringValue": value.get("StringValue"), "dataType": value["DataType"]}
            for name, value in m.get("MessageAttributes", {}).items()
        },
        "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    } for m in messages]
    return {"Records": records}


def invoke(payload):
    url = f"http://127.0.0.1:{PORT}/2015-03-31/functions/{FUNCTION}/invocations"
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST")
    # The first invocation waits for the build.
    with urllib.request.urlopen(request, timeout=dev.INVOKE_WITHIN) as answer:
        return json.loads(answer.read() or b"{}")


def poll(watch):
    sqs = local_aws.client("sqs")
    try:
        url = sqs.get_queue_url(QueueName=local_aws.QUEUE)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        sys.exit(f"make consume: no queue {local_aws.QUEUE}: is `make dev` running?")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    print(f"make consume: reading {url}; send events with `make invoke` (Ctrl-C stops)", flush=True)
    batches = 0
    dead = local_aws.dead_letters_waiting(sqs)
    while watch.poll() is None:
        # After BATCHES batches, one more receive that holds nothing back: it lets the redrive
        # move what is due, and reports it.
        last = BATCHES and batches >= BATCHES
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
            VisibilityTimeout=0 if last else VISIBILITY, MessageAttributeNames=["All"], AttributeNames=["All"],
        ).get("Messages", [])
        now_dead = local_aws.dead_letters_waiting(sqs)
        if now_dead > dead:
            print(f"  {now_dead - dead} message(s) received {local_aws.MAX_RECEIVE_COUNT} times moved to the "
                  f"dead-letter queue {local_aws.DEAD_LETTERS} (`make dead-letters` shows them)", flush=True)
        dead = now_dead
        if last:
            break
        if not messages:
            continue
        batches += 1
        print(f"batch of {len(messages)}:", flush=True)
        answer = invoke(event(messages, arn))
        returned = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in returned]
        if done:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)
    # Let the last lines through before stopping.
    time.sleep(1)


def run():
    dev.listening("sqs")
    if dev.taken(PORT):
        held = dev.holder(PORT) or "another process"
        sys.exit(f"make consume: port {PORT} (CONSUME_PORT) is in use by {held}: CONSUME_PORT=<port> make consume")
    endpoint = f"http://127.0.0.1:{dev.PORTS['sqs']}"
    local_aws.create_table(TABLE)
    dev.LOGS.mkdir(parents=True, exist_ok=True)

    def stop_on_signal(number, _frame):
        print(f"make consume: {signal.Signals(number).name}: stopped")
        raise SystemExit(0)

    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, stop_on_signal)
    settings = [f"IDEMPOTENCY_TABLE={TABLE}", "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test",
                "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true", f"AWS_ENDPOINT_URL={endpoint}"]
    print("Building the consumer (the emulator runs this build) ...", flush=True)
    built = subprocess.run(["cargo", "build", "-p", FUNCTION, "--bin", FUNCTION], cwd=dev.ROOT)
    if built.returncode != 0:
        raise SystemExit("make consume: the consumer does not build: see cargo's output above")
    watch = dev.start([str(dev.VENV / "cargo-lambda"), "lambda", "watch", "-p", FUNCTION,
                       "--invoke-address", "127.0.0.1", "--invoke-port", str(PORT),
                       "--env-var", ",".join(settings)], subprocess.PIPE)
    try:
        threading.Thread(target=show, args=(watch.stdout,), daemon=True).start()
        dev.wait_for(PORT, watch, "cargo lambda watch")
        poll(watch)
    finally:
        dev.stop([watch])


if __name__ == "__main__":
    if sys.argv[1:]:
        sys.exit(__doc__)
    run()
