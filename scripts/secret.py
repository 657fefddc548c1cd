"""`make secret`: store the webhook secret where the function reads it, as a new version of
its Secrets Manager secret. The version it replaces stays readable as AWSPREVIOUS, so
deliveries Nylas signed before a rotation still verify; the function reads the new one within
a minute, with no deploy.

    make secret                 the deployed stack's secret (STACK, default nylas-webhook-sqs),
                                with the AWS CLI's usual region and credentials
    make secret LOCAL=1         the secret `make dev` runs with (moto on SQS_PORT)

The value is read from standard input (hidden when it is a terminal), never from the command
line, so it stays out of the shell's history; it is never printed.
"""

import getpass
import os
import sys

import boto3
import botocore.exceptions

sys.path.insert(0, os.path.dirname(__file__))
import local_aws  # noqa: E402


def secret_arn():
    """Where the secret lives: the local one, or the stack's output WebhookSecretArn."""
    if os.environ.get("LOCAL"):
        return local_aws.client("secretsmanager"), local_aws.local_secret_arn()
    stack = os.environ.get("STACK") or "nylas-webhook-sqs"
    described = boto3.client("cloudformation").describe_stacks(StackName=stack)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0].get("Outputs", [])}
    if "WebhookSecretArn" not in outputs:
        sys.exit(f"stack {stack} has no WebhookSecretArn output: deploy this template first")
    return boto3.client("secretsmanager"), outputs["WebhookSecretArn"]


def main():
    if sys.stdin.isatty():
        value = getpass.getpass("webhook_secret (v2: the client secret), not shown: ")
    else:
        value = sys.stdin.readline()
    value = value.strip()
    if not value:
        sys.exit("no secret given: nothing stored")
    try:
        secrets, arn = secret_arn()
        version = secrets.put_secret_value(SecretId=arn, SecretString=value)["VersionId"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        sys.exit(f"the secret was not stored: {error}")
    print(f"stored as version {version} of {arn}.")
    print("The function uses it within a minute; the version before stays valid as AWSPREVIOUS.")


if __name__ == "__main__":
    main()
