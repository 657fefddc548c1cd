"""`make secret`: store the webhook secret where the function reads it, as a new version of
its Secrets Manager secret. The version it replaces stays readable as AWSPREVIOUS, and the
function accepts it for PREVIOUS_SECRET_TTL_SECONDS (30 minutes by default) after the new one
is stored, so deliveries Nylas signed before a rotation still verify; the function reads the
new one within a minute, with no deploy.

`make revoke-previous` (this script with `revoke-previous`) takes the AWSPREVIOUS label off at
once: the version before stops verifying as soon as the function reads the secret again, within
5 minutes on a warm instance and at once on a new one. Use it after storing Nylas's public test
secret (`mock-webhook-secret`) or a secret that leaked.

    make secret                 the deployed stack's secret: the stack and region the last
                                `make deploy` saved in samconfig.toml (STACK and AWS_REGION
                                choose others), with the AWS CLI's usual credentials
    make secret LOCAL=1         the secret `make dev` runs with (moto on SQS_PORT)
    SECRET_ARN=arn:...          any other secret, by ARN

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
import samconfig  # noqa: E402


def stack():
    """samconfig.stack(), with the AWS CLI's default region when nothing names one."""
    name, region, source = samconfig.stack()
    return name, region or boto3.session.Session().region_name, source


def secret_arn():
    """Where the secret lives: SECRET_ARN, the local one, or the stack's output WebhookSecretArn."""
    local = os.environ.get("LOCAL")
    if os.environ.get("SECRET_ARN"):
        secrets = local_aws.client("secretsmanager") if local else boto3.client("secretsmanager", region_name=stack()[1])
        return secrets, os.environ["SECRET_ARN"]
    if local:
        return local_aws.client("secretsmanager"), local_aws.local_secret_arn()
    name, region, source = stack()
    if not region:
        sys.exit("no region: deploy with `make deploy` (samconfig.toml saves it), or set AWS_REGION")
    print(f"stack {name} in {region} (the region from {source})")
    described = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=name)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0].get("Outputs", [])}
    if "WebhookSecretArn" not in outputs:
        sys.exit(f"stack {name} has no WebhookSecretArn output: deploy this template first")
    return boto3.client("secretsmanager", region_name=region), outputs["WebhookSecretArn"]


def revoke_previous():
    try:
        secrets, arn = secret_arn()
        stages = secrets.describe_secret(SecretId=arn).get("VersionIdsToStages", {})
        previous = [v for v, labels in stages.items() if "AWSPREVIOUS" in labels]
        for version in previous:
            secrets.update_secret_version_stage(
                SecretId=arn, VersionStage="AWSPREVIOUS", RemoveFromVersionId=version
            )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        sys.exit(f"the previous version was not revoked: {error}")
    if not previous:
        print(f"{arn} has no previous version: nothing to revoke.")
        return
    print(f"revoked version {previous[0]} of {arn}: it is no longer AWSPREVIOUS.")
    print("It stops verifying when the function next reads the secret: within 5 minutes.")


def main():
    if sys.argv[1:] == ["revoke-previous"]:
        return revoke_previous()
    if sys.argv[1:]:
        sys.exit(__doc__)
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
