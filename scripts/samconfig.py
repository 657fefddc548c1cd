"""What samconfig.toml saved for `sam deploy`: its parameters and parameter overrides.
`make deploy`, `make secret` and `make revoke-previous` read it, so that they act on the stack
and region the last deploy chose. SAMCONFIG names another file (default samconfig.toml)."""

import os
import shlex
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
