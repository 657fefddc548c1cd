"""The local AWS that `make dev` runs the function against: a queue and a webhook secret on the
moto server it starts (moto serves SQS, Secrets Manager and DynamoDB on one port), and the
consumer's idempotency table (`create_table`, for make consume and make coldstart-consumer).

    python scripts/local_aws.py create   # create both (if absent); print the function's settings
    python scripts/local_aws.py show     # print and remove every message in the queue

Runs with the project's virtualenv (boto3 comes with moto). Settings come from the
environment: SQS_ENDPOINT (default http://127.0.0.1:4566) and QUEUE (default nylas-webhooks).
"""

import json
import os
import sys

import boto3

ENDPOINT = os.environ.get("SQS_ENDPOINT", "http://127.0.0.1:4566")
QUEUE = os.environ.get("QUEUE", "nylas-webhooks")
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
    print(f"QUEUE_URL={client('sqs').create_queue(QueueName=QUEUE)['QueueUrl']}")
    print(f"NYLAS_WEBHOOK_SECRET_ARN={local_secret_arn()}")


def show():
    sqs = client("sqs")
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
