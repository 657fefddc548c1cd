"""The local SQS queue that `make dev` forwards to, on the moto server it starts.

    python scripts/local_queue.py create   # create the queue, print its URL
    python scripts/local_queue.py show     # print and remove every message in it

Runs with the project's virtualenv (boto3 comes with moto). Settings come from the
environment: SQS_ENDPOINT (default http://127.0.0.1:4566) and QUEUE (default nylas-webhooks).
"""

import json
import os
import sys

import boto3

ENDPOINT = os.environ.get("SQS_ENDPOINT", "http://127.0.0.1:4566")
QUEUE = os.environ.get("QUEUE", "nylas-webhooks")


def client():
    return boto3.client(
        "sqs",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def create():
    print(client().create_queue(QueueName=QUEUE)["QueueUrl"])


def show():
    sqs = client()
    try:
        url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        sys.exit(f"no queue {QUEUE} at {ENDPOINT}: is `make dev` running?")
    count = 0
    while True:
        reply = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        messages = reply.get("Messages", [])
        if not messages:
            break
        for message in messages:
            count += 1
            attributes = {
                name: value["StringValue"]
                for name, value in sorted(message.get("MessageAttributes", {}).items())
            }
            print(f"--- message {count}")
            print(json.dumps(attributes, indent=2))
            print(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    print(f"{count} message(s) read and removed from {QUEUE}")


if __name__ == "__main__":
    commands = {"create": create, "show": show}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]]()
