"""`make sign-events`: signs the sample API Gateway events again after an edit.

    python scripts/sign_events.py [events/x.json ...]    (default: every events/*.json)

Each event that carries the sender's signature header (in any case: `X-Nylas-Signature` for
Nylas, whatever `sender()` reads from the sender src/main.rs runs with) gets the signature of
its body (the decoded bytes when `isBase64Encoded` is true) as the sender signs it: its prefix,
then the lowercase hex of HMAC-SHA256 under SECRET (default: the sample secret `make dev`
starts with). Events whose name
holds `tampered` keep theirs: it is meant not to match. Only the signature's text changes; the
file keeps its layout. Python's standard library alone, so nothing is built.
"""

import base64
import hashlib
import hmac
import json
import os
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SAMPLE_SECRET = "nylas-sample-secret"


def sender(root=ROOT):
    """The signature header and prefix of the sender the function runs with (src/lib.rs:
    `pub const SENDER: Sender = NYLAS;`), as its `const NYLAS: Sender = Sender { ... }` in src/
    says: a fork that defines its own sender signs its events with it."""
    lib = (root / "src" / "lib.rs").read_text()
    name = re.search(r"const SENDER: Sender = (?:\w+::)*(\w+);", lib)
    for path in sorted((root / "src").glob("*.rs")) if name else []:
        found = re.search(rf"const {name[1]}: Sender = Sender \{{(.*?)\n\}};", path.read_text(), re.S)
        if found:
            fields = dict(re.findall(r'(\w+): "([^"]*)"', found[1]))
            return fields["signature_header"], fields["signature_prefix"]
    raise SystemExit("no `const NAME: Sender = Sender { ... }` in src/ for the sender that "
                     "src/lib.rs names in `pub const SENDER: Sender = NAME;`")


def sign(secret, body, prefix=""):
    return prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def resign(path, secret, header="X-Nylas-Signature", prefix=""):
    text = path.read_text()
    event = json.loads(text)
    if "tampered" in path.name:
        return "left as is: its signature is meant not to match"
    headers = event.get("headers") or {}
    old = next((v for k, v in headers.items() if k.lower() == header.lower()), None)
    if old is None:
        return "unsigned, left as is"
    body = event.get("body") or ""
    body = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode()
    new = sign(secret, body, prefix)
    if new == old:
        return "already signed"
    path.write_text(text.replace(f'"{old}"', f'"{new}"'))
    return "signed"


def main():
    secret = os.environ.get("SECRET") or SAMPLE_SECRET
    header, prefix = sender()
    paths = [pathlib.Path(p) for p in sys.argv[1:]] or sorted((ROOT / "events").glob("*.json"))
    failed = False
    for path in paths:
        try:
            print(f"{path}: {resign(path, secret, header, prefix)}")
        except (OSError, ValueError) as error:
            print(f"{path}: {error}", file=sys.stderr)
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
