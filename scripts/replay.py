"""`make replay`: the archived notifications of a time range sent back to the queue, through
the consumer once more (replay/, `nylas-replay`).

    make replay FROM=2026-12-06T08:00:00Z TO=2026-12-06T11:00:00Z [TYPE=message.created]
                [GRANT=<grant id>] [DRY_RUN=1] [RATE=100] [QUEUE=<name or URL>] [REPLAY_ID=<id>]

Deployed: the archive bucket and the queue are the stack's outputs (ArchiveBucketName,
QueueUrl), the stack and region those samconfig.toml saved (or STACK and AWS_REGION), with the
AWS CLI's usual credentials. LOCAL=1: `make dev`'s archive and queue on moto (SQS_PORT).
QUEUE sends elsewhere than the stack's queue, to try a fix first. The same FROM, TO, TYPE and
GRANT make the same replay id: run again, the consumer skips what that replay already ran;
REPLAY_ID=<new> runs them again.
"""

import os
import pathlib
import subprocess
import sys

import boto3

import local_aws
import samconfig

ROOT = pathlib.Path(__file__).resolve().parent.parent


def fail(message):
    sys.exit(f"make replay: {message}")


def local():
    """make dev's bucket, queue URL and the environment that reaches its moto."""
    endpoint = local_aws.ENDPOINT
    sqs = local_aws.client("sqs")
    queue = os.environ.get("REPLAY_QUEUE") or local_aws.QUEUE
    url = queue if queue.startswith("http") else sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true"}
    return local_aws.ARCHIVE, url, env


def deployed():
    name, region, source = samconfig.stack()
    session = boto3.session.Session(region_name=region)
    print(f"make replay: stack {name} in {session.region_name} (the region from {source})", file=sys.stderr)
    described = session.client("cloudformation").describe_stacks(StackName=name)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0].get("Outputs", [])}
    if "ArchiveBucketName" not in outputs:
        fail(f"stack {name} has no archive: deploy it with Archive=true (the default)")
    queue = os.environ.get("REPLAY_QUEUE") or outputs["QueueUrl"]
    if not queue.startswith("http"):
        queue = session.client("sqs").get_queue_url(QueueName=queue)["QueueUrl"]
    return outputs["ArchiveBucketName"], queue, {"AWS_REGION": session.region_name or ""}


def main():
    if sys.argv[1:]:
        sys.exit(__doc__)
    if not os.environ.get("FROM") or not os.environ.get("TO"):
        fail("say which range: FROM=2026-12-06T08:00:00Z TO=2026-12-06T11:00:00Z (UTC, RFC 3339)")
    bucket, queue, env = local() if os.environ.get("LOCAL") else deployed()
    command = [str(ROOT / "target" / "debug" / "nylas-replay"), "--bucket", bucket, "--queue-url", queue,
               "--prefix", local_aws.ARCHIVE_PREFIX, "--from", os.environ["FROM"], "--to", os.environ["TO"]]
    for variable, flag in (("TYPE", "--type"), ("GRANT", "--grant"), ("RATE", "--rate"), ("REPLAY_ID", "--replay-id")):
        if os.environ.get(variable):
            command += [flag, os.environ[variable]]
    if os.environ.get("DRY_RUN"):
        command.append("--dry-run")
    print(f"make replay: building the replay tool (cargo build -p nylas-replay) ...", file=sys.stderr)
    if subprocess.run(["cargo", "build", "-q", "-p", "nylas-replay"], cwd=ROOT).returncode != 0:
        fail("the replay tool does not build: see cargo's output above")
    sys.exit(subprocess.run(command, env={**os.environ, **env}).returncode)


if __name__ == "__main__":
    main()
