"""Runs a command that may say nothing for minutes (`sam build` hides cargo's output), passing
its output on and printing a line each time it has been silent for EVERY seconds (30), so that
nobody wonders whether it hangs. Exits with the command's status.

    python scripts/progress.py WHAT COMMAND [ARGS...]     e.g. progress.py build sam build
"""

import os
import subprocess
import sys
import threading
import time


def main():
    what, *command = sys.argv[1:]
    every = float(os.environ.get("EVERY") or 30)
    started = last = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def tick():
        nonlocal last
        while child.poll() is None:
            time.sleep(min(every, 1))
            if time.monotonic() - last >= every and child.poll() is None:
                spent = int(time.monotonic() - started)
                print(f"{what}: still building ({spent // 60} min {spent % 60:02} s; a first release "
                      "build of the AWS SDK takes minutes)", flush=True)
                last = time.monotonic()

    threading.Thread(target=tick, daemon=True).start()
    for line in iter(child.stdout.readline, b""):
        sys.stdout.buffer.write(line)
        sys.stdout.flush()
        last = time.monotonic()
    sys.exit(child.wait())


if __name__ == "__main__":
    main()
