"""The local AWS that `make dev` runs the function against: a queue with its dead-letter queue
and the deployed redrive policy, a webhook secret, and the archive (an S3 bucket and a Firehose
stream), on the moto server it starts (moto serves every service on one port), and the
consumer's idempotency table (`create_table`, for make consume and make coldstart-consumer).

    python scripts/local_aws.py create   # create them (if absent); print the function's settings
    python scripts/local_aws.py show     # print and remove every message in the queue
    python scripts/local_aws.py show-dead-letters   # the same, in the dead-letter queue
    python scripts/local_aws.py forget   # empty the idempotency table (`make forget`)

Runs with the project's virtualenv (boto3 comes with moto). Settings come from the
environment: SQS_ENDPOINT (default http://127.0.0.1:4566), QUEUE (default nylas-webhooks) and
TABLE (default nylas-idempotency).
"""

import json
import os
import sys

import boto3

ENDPOINT = os.environ.get("SQS_ENDPOINT", "http://127.0.0.1:4566")
QUEUE = os.environ.get("QUEUE", "nylas-webhooks")
# Named as template.yaml names the stack's: <stack>-notifications, <stack>-dead-letters.
DEAD_LETTERS = f"{QUEUE}-dead-letters"
# template.yaml's RedrivePolicy: a message received this many times goes to the dead letters.
MAX_RECEIVE_COUNT = 5
TABLE = os.environ.get("TABLE") or "nylas-idempotency"
# The archive as template.yaml makes it: a bucket, and a Firehose stream writing to it under
# notifications/ (moto writes each PutRecordBatch at once, where Firehose buffers minutes).
ARCHIVE = "nylas-archive"
ARCHIVE_PREFIX = "notifications/"
# The local secret's name, and the value the sample events in events/ are signed with.
SECRET = "nylas-webhook-secret"
SAMPLE_SECRET = "nylas-sample-secret"


def client(service, endpoint=None):
    return boto3.client(
        service,
        endpoint_url=endpoint or ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def local_secret_arn():
    """The local secret's ARN, created with the sample value if it does not exist yet."""
    secrets = client("secretsmanager")
    try:
        return secrets.describe_secret(SecretId=SECRET)["ARN"]
    except secrets.exceptions.ResourceNotFoundException:
        return secrets.create_secret(Name=SECRET, SecretString=SAMPLE_SECRET)["ARN"]


def create_table(name, endpoint=None):
    """The consumer's idempotency table as template.yaml makes it (key `id`, TTL on
    `expiration`), unless it exists."""
    dynamodb = client("dynamodb", endpoint)
    if name in dynamodb.list_tables()["TableNames"]:
        return
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )


def create():
    sqs = client("sqs")
    dead_letters = sqs.create_queue(QueueName=DEAD_LETTERS)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
    url = sqs.create_queue(QueueName=QUEUE, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    print(f"QUEUE_URL={url}")
    print(f"NYLAS_WEBHOOK_SECRET_ARN={local_secret_arn()}")
    print(f"ARCHIVE_STREAM={create_archive()}")


def create_archive():
    """The bucket and the stream (both named ARCHIVE), unless they exist; the stream's name."""
    s3, firehose = client("s3"), client("firehose")
    if ARCHIVE not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=ARCHIVE)
    if ARCHIVE not in firehose.list_delivery_streams()["DeliveryStreamNames"]:
        firehose.create_delivery_stream(
            DeliveryStreamName=ARCHIVE, DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "BucketARN": f"arn:aws:s3:::{ARCHIVE}", "Prefix": ARCHIVE_PREFIX,
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            },
        )
    return ARCHIVE


def forget():
    """Empties the idempotency table, so that the next delivery of every notification runs the
    handler again, as if it had never been seen."""
    dynamodb = client("dynamodb")
    if TABLE not in dynamodb.list_tables()["TableNames"]:
        sys.exit(f"no table {TABLE} at {ENDPOINT}: `make consume` creates it")
    count = 0
    for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE, ProjectionExpression="id"):
        for item in page["Items"]:
            dynamodb.delete_item(TableName=TABLE, Key={"id": item["id"]})
            count += 1
    print(f"forgot {count} notification(s) in {TABLE}: the next delivery of each runs the handler again")


def show(queue=QUEUE):
    sqs = client("sqs")
    try:
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        sys.exit(f"no queue {queue} at {ENDPOINT}: is `make dev` running?")
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
    print(f"{count} message(s) read and removed from {queue}")
    if queue == QUEUE:
        waiting = dead_letters_waiting(sqs)
        if waiting:
            print(f"{waiting} message(s) in the dead-letter queue {DEAD_LETTERS}: `make dead-letters` shows them")


def dead_letters_waiting(sqs):
    try:
        url = sqs.get_queue_url(QueueName=DEAD_LETTERS)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        return 0
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


if __name__ == "__main__":
    commands = {"create": create, "show": show, "show-dead-letters": lambda: show(DEAD_LETTERS), "forget": forget}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]]()
