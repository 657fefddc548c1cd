"""`make deploy`: `sam deploy --guided` for the architecture `make build` built, keeping what
the last deploy chose.

The architecture is read from the built package (.aws-sam/build, or BUILD_DIR). A deploy that
would give the stack another `Architecture` than the package's is refused before sam runs,
since the function would not start: ARCH given to `make deploy` must be the built one, and a
stack saved with another architecture moves only when ARCH says so.

`sam deploy --parameter-overrides` replaces every parameter samconfig.toml saved, so passing
only a new WebhookPath would also put QueueType back to standard (replacing a FIFO queue) and
empty AlarmEmail. So this passes no override unless one is needed (the architecture, or a
random path), and then passes the saved ones with it. RANDOM_PATH=1 makes a random path only
when none is saved: a second deploy keeps the URL Nylas delivers to (docs/operations.md,
"Parameters"). To move the URL on purpose, answer the guided prompt's WebhookPath, then edit
the webhook's URL in Nylas.

Usage: deploy.py SAM [ARGS...]; ARCH, RANDOM_PATH, BUILD_DIR and SAMCONFIG (default
samconfig.toml) from the environment.
"""

import os
import pathlib
import secrets
import sys

import artifact
import samconfig


def built(build_dir):
    """The architecture of the package `make build` left, or exits saying what to run."""
    found = {}
    for function in ("ReceiverFunction", "ConsumerFunction"):
        path = pathlib.Path(build_dir) / function / "bootstrap"
        if path.is_file():
            found[function] = artifact.machine(path.read_bytes())
    if "ReceiverFunction" not in found:
        sys.exit(f"deploy: nothing built in {build_dir}: run `make build` first "
                 "(`make build ARCH=x86_64` without the aarch64 Rust target)")
    if len(set(found.values())) != 1 or not set(found.values()) <= set(artifact.MACHINES.values()):
        sys.exit(f"deploy: the built functions are for {found}: run `make build` again")
    return found["ReceiverFunction"]


def main():
    sam, *args = sys.argv[1:]
    config = samconfig.PATH
    overrides = samconfig.overrides(config)
    saved = dict(overrides)
    arch = built(os.environ.get("BUILD_DIR") or ".aws-sam/build")
    asked = os.environ.get("ARCH")
    if asked and asked != arch:
        sys.exit(f"deploy: ARCH={asked}, but the package in .aws-sam/build is {arch}: "
                 f"`make build ARCH={asked}` first")
    if not asked and saved.get("Architecture", arch) != arch:
        sys.exit(f"deploy: the stack is saved with Architecture={saved['Architecture']} ({config}), but the "
                 f"package in .aws-sam/build is {arch}: `make build ARCH={saved['Architecture']}`, or "
                 f"`make deploy ARCH={arch}` to move the stack to {arch}")
    print(f"deploy: Architecture={arch}, as `make build` built it (press Enter at its prompt)")
    needed = saved.get("Architecture") != arch
    overrides = [(name, value) for name, value in overrides if name != "Architecture"]
    overrides.append(("Architecture", arch))
    if os.environ.get("RANDOM_PATH") and "WebhookPath" not in saved:
        path = f"/webhook/{secrets.token_hex(16)}"
        print(f"deploy: no WebhookPath saved yet: using the random path {path}")
        overrides.append(("WebhookPath", path))
        needed = True
    elif os.environ.get("RANDOM_PATH"):
        print("deploy: keeping the saved WebhookPath (RANDOM_PATH makes one only when none is saved)")
    command = [sam, "deploy", "--guided", *args]
    if config != "samconfig.toml":
        command += ["--config-file", config]
    if needed:
        command += ["--parameter-overrides", *(f"{name}={value}" for name, value in overrides)]
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
