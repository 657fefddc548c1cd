#!/usr/bin/env bash
# `make dev`: the receiver on this machine. Starts a local AWS (moto: SQS and Secrets
# Manager), creates the queue and the webhook secret (holding the sample secret), and runs the
# function under the Lambda Runtime API emulator (`cargo lambda watch`, which rebuilds it on
# every change), reading its secret from Secrets Manager as it does when deployed.
set -euo pipefail
cd "$(dirname "$0")/.."

SQS_PORT=${SQS_PORT:-4566}
INVOKE_PORT=${INVOKE_PORT:-9000}
export SQS_ENDPOINT="http://127.0.0.1:${SQS_PORT}"
export QUEUE=${QUEUE:-nylas-webhooks}

mkdir -p .local
.venv/bin/moto_server -H 127.0.0.1 -p "$SQS_PORT" > .local/moto.log 2>&1 &
moto=$!
trap 'kill "$moto" 2>/dev/null || true' EXIT

for _ in $(seq 1 300); do
    (echo > "/dev/tcp/127.0.0.1/${SQS_PORT}") 2>/dev/null && break
    kill -0 "$moto" 2>/dev/null || { echo "moto_server exited: see .local/moto.log" >&2; exit 1; }
    sleep 0.1
done
{
    .venv/bin/python scripts/local_aws.py create
    cat <<ENV
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
AWS_EC2_METADATA_DISABLED=true
AWS_ENDPOINT_URL=${SQS_ENDPOINT}
ENV
} > .local/dev.env
queue_url=$(sed -n 's/^QUEUE_URL=//p' .local/dev.env)

url="http://127.0.0.1:${INVOKE_PORT}/lambda-url/nylas-webhook-sqs/webhook"
cat <<TEXT

  Local SQS (moto):  ${SQS_ENDPOINT}   queue: ${queue_url}
  Function URL:      ${url}
  Secret:            nylas-sample-secret, in Secrets Manager (the sample events are signed
                     with it; \`make secret LOCAL=1\` stores another)

  In another terminal:
    make invoke EVENT=events/v3-message-created.json    send a sample event
    make queue                                          print (and remove) what reached the queue
    curl '${url}?challenge=hello'

TEXT

.venv/bin/cargo-lambda lambda watch --invoke-address 127.0.0.1 --invoke-port "$INVOKE_PORT" \
    --env-file .local/dev.env
