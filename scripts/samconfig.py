"""What samconfig.toml saved for `sam deploy`: its parameters and parameter overrides.
`make deploy`, `make secret`, `make revoke-previous` and `make logs` read it, so that they act
on the stack and region the last deploy chose. SAMCONFIG names another file (default
samconfig.toml).

    python scripts/samconfig.py stack    # print `--stack-name NAME [--region REGION]` for sam
"""

import os
import shlex
import sys
import tomllib

PATH = os.environ.get("SAMCONFIG") or "samconfig.toml"


def deploy_parameters(path=PATH):
    """`[default.deploy.parameters]` over `[default.global.parameters]`, or {} without a file."""
    try:
        with open(path, "rb") as file:
            config = tomllib.load(file).get("default", {})
    except FileNotFoundError:
        return {}
    return {**config.get("global", {}).get("parameters", {}), **config.get("deploy", {}).get("parameters", {})}


def overrides(path=PATH):
    """The parameter overrides saved for deploy, in order, as (name, value)."""
    saved = deploy_parameters(path).get("parameter_overrides", [])
    words = shlex.split(saved) if isinstance(saved, str) else saved
    return [tuple(word.split("=", 1)) for word in words if "=" in word]


def stack(path=PATH):
    """(stack name, region or None, where the region came from): STACK and AWS_REGION (or
    AWS_DEFAULT_REGION) first, then what samconfig.toml saved; None leaves the region to the
    AWS CLI's configuration."""
    saved = deploy_parameters(path)
    name = os.environ.get("STACK") or saved.get("stack_name") or "nylas-webhook-sqs"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        return name, region, "AWS_REGION"
    if saved.get("region"):
        return name, saved["region"], path
    return name, None, "the AWS CLI's configuration"


if __name__ == "__main__":
    if sys.argv[1:] != ["stack"]:
        sys.exit(__doc__)
    name, region, _ = stack()
    print(shlex.join(["--stack-name", name, *(["--region", region] if region else [])]))
