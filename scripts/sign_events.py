"""`make sign-events`: signs the sample API Gateway events again after an edit.

    python scripts/sign_events.py [events/x.json ...]    (default: every events/*.json)

Each event that carries an `X-Nylas-Signature` header (in any case) gets the signature of its
body (the decoded bytes when `isBase64Encoded` is true) as Nylas signs it: lowercase hex of
HMAC-SHA256 under SECRET (default: the sample secret `make dev` starts with). Events whose name
holds `tampered` keep theirs: it is meant not to match. Only the signature's text changes; the
file keeps its layout. Python's standard library alone, so nothing is built.
"""

import base64
import hashlib
import hmac
import json
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SAMPLE_SECRET = "nylas-sample-secret"


def sign(secret, body):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def resign(path, secret):
    text = path.read_text()
    event = json.loads(text)
    if "tampered" in path.name:
        return "left as is: its signature is meant not to match"
    headers = event.get("headers") or {}
    old = next((v for k, v in headers.items() if k.lower() == "x-nylas-signature"), None)
    if old is None:
        return "unsigned, left as is"
    body = event.get("body") or ""
    body = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode()
    new = sign(secret, body)
    if new == old:
        return "already signed"
    path.write_text(text.replace(f'"{old}"', f'"{new}"'))
    return "signed"


def main():
    secret = os.environ.get("SECRET") or SAMPLE_SECRET
    paths = [pathlib.Path(p) for p in sys.argv[1:]] or sorted((ROOT / "events").glob("*.json"))
    failed = False
    for path in paths:
        try:
            print(f"{path}: {resign(path, secret)}")
        except (OSError, ValueError) as error:
            print(f"{path}: {error}", file=sys.stderr)
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
