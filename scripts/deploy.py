"""`make deploy`: `sam deploy --guided` that keeps what the last deploy chose.

`sam deploy --parameter-overrides` replaces every parameter samconfig.toml saved, so passing
only a new WebhookPath would also put QueueType back to standard (replacing a FIFO queue) and
empty AlarmEmail. So this passes no override unless one is needed, and then passes the saved
ones with it. RANDOM_PATH=1 makes a random path only when none is saved: a second deploy keeps
the URL Nylas delivers to (README, "Deploy to AWS"). To move the URL on purpose, answer the
guided prompt's WebhookPath, then edit the webhook's URL in Nylas.

Usage: deploy.py SAM [ARGS...]; RANDOM_PATH and SAMCONFIG (default samconfig.toml) from the
environment.
"""

import os
import secrets
import shlex
import sys
import tomllib


def saved_overrides(path):
    """The parameter overrides samconfig saved for deploy, in order, as (name, value)."""
    try:
        with open(path, "rb") as file:
            config = tomllib.load(file)
    except FileNotFoundError:
        return []
    saved = config.get("default", {}).get("deploy", {}).get("parameters", {}).get("parameter_overrides", [])
    words = shlex.split(saved) if isinstance(saved, str) else saved
    return [tuple(word.split("=", 1)) for word in words if "=" in word]


def main():
    sam, *args = sys.argv[1:]
    config = os.environ.get("SAMCONFIG", "samconfig.toml")
    overrides = saved_overrides(config)
    command = [sam, "deploy", "--guided", *args]
    if config != "samconfig.toml":
        command += ["--config-file", config]
    if os.environ.get("RANDOM_PATH") and "WebhookPath" not in dict(overrides):
        path = f"/webhook/{secrets.token_hex(16)}"
        print(f"deploy: no WebhookPath saved yet: using the random path {path}")
        overrides.append(("WebhookPath", path))
        command += ["--parameter-overrides", *(f"{name}={value}" for name, value in overrides)]
    elif os.environ.get("RANDOM_PATH"):
        print("deploy: keeping the saved WebhookPath (RANDOM_PATH makes one only when none is saved)")
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
