//! `nylas-replay`: `make replay` runs it (scripts/replay.py finds the bucket and the queue).
//!
//!     nylas-replay --bucket B --queue-url Q --from 2026-12-06T08:00:00Z --to 2026-12-06T11:00:00Z
//!                  [--prefix notifications/] [--type T] [--grant G] [--rate 100]
//!                  [--replay-id ID] [--dry-run]
//!
//! AWS settings (region, credentials, `AWS_ENDPOINT_URL` for moto) come from aws-config's
//! defaults. Progress goes to standard error after each archive object; the summary (found,
//! sent, skipped, the replay's id) to standard output.

use nylas_replay::{parse_time, run, Options, Summary};
use std::process::ExitCode;

const USAGE: &str =
    "usage: nylas-replay --bucket B --queue-url Q --from TIME --to TIME [--prefix P] \
    [--type T] [--grant G] [--rate N] [--replay-id ID] [--dry-run]   (TIME: 2026-12-06T08:00:00Z)";

fn options(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let (mut bucket, mut queue_url, mut from, mut to) = (None, None, None, None);
    let (mut prefix, mut kind, mut grant) = ("notifications/".to_owned(), None, None);
    let (mut rate, mut replay_id, mut dry_run) = (100, None, false);
    while let Some(flag) = args.next() {
        if flag == "--dry-run" {
            dry_run = true;
            continue;
        }
        let value = args.next().filter(|v| !v.is_empty());
        let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
        let time =
            |v: &str| parse_time(v).ok_or_else(|| format!("{flag} {v}: not an RFC 3339 time"));
        match flag.as_str() {
            "--bucket" => bucket = Some(value),
            "--queue-url" => queue_url = Some(value),
            "--from" => from = Some(time(&value)?),
            "--to" => to = Some(time(&value)?),
            "--prefix" => prefix = value,
            "--type" => kind = Some(value),
            "--grant" => grant = Some(value),
            "--rate" => {
                rate = value
                    .parse()
                    .ok()
                    .filter(|r| *r > 0)
                    .ok_or("--rate: messages a second, above 0")?
            }
            "--replay-id" => replay_id = Some(value),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    let (from_ms, to_ms) = (from.ok_or("--from is missing")?, to.ok_or("--to is missing")?);
    if to_ms <= from_ms {
        return Err("--to must come after --from".to_owned());
    }
    let replay_id = replay_id.unwrap_or_else(|| {
        Options::default_replay_id(from_ms, to_ms, kind.as_deref(), grant.as_deref())
    });
    Ok(Options {
        bucket: bucket.ok_or("--bucket is missing")?,
        queue_url: queue_url.ok_or("--queue-url is missing")?,
        prefix,
        from_ms,
        to_ms,
        kind,
        grant,
        dry_run,
        rate,
        replay_id,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let options = match options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("replay: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let (s3, sqs) = (aws_sdk_s3::Client::new(&aws), aws_sdk_sqs::Client::new(&aws));
    let what = if options.dry_run { "would send" } else { "sent" };
    let line = |s: &Summary| {
        format!(
            "{} found, {} {what}, {} skipped ({} objects read)",
            s.found, s.sent, s.skipped, s.objects
        )
    };
    eprintln!(
        "replay {}: reading s3://{}/{} ...",
        options.replay_id, options.bucket, options.prefix
    );
    match run(&s3, &sqs, &options, |s| eprintln!("replay: {}", line(s))).await {
        Ok(summary) => {
            println!("replay {}: {}", options.replay_id, line(&summary));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("replay {}: {error}", options.replay_id);
            ExitCode::FAILURE
        }
    }
}
