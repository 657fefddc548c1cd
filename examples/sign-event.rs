//! Re-signs the sample API Gateway events after an edit: `make sign-events`, or
//! `cargo run --example sign-event [-- events/x.json ...]` (default: every `events/*.json`).
//!
//! Each event that carries an `X-Nylas-Signature` header gets the signature of its body (the
//! decoded bytes when `isBase64Encoded` is true) under the sample secret, as Nylas would
//! sign it. Events whose name contains `tampered` keep their signature: it is meant not to
//! match. Only the signature's text changes; the file keeps its layout.

use base64::Engine;
use nylas_webhook_sqs::sign;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The secret the sample events are signed with; `make dev` runs the function with it.
const SAMPLE_SECRET: &str = "nylas-sample-secret";

fn main() -> ExitCode {
    let mut paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        match sample_events() {
            Ok(found) => paths = found,
            Err(error) => {
                eprintln!("cannot list events/: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut failed = false;
    for path in &paths {
        match resign(path) {
            Ok(done) => println!("{}: {done}", path.display()),
            Err(error) => {
                eprintln!("{}: {error}", path.display());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn sample_events() -> std::io::Result<Vec<PathBuf>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
    paths.sort();
    Ok(paths)
}

fn resign(path: &Path) -> Result<&'static str, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let event: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    if path.to_string_lossy().contains("tampered") {
        return Ok("left as is: its signature is meant not to match");
    }
    let Some(old) = signature_of(&event) else {
        return Ok("unsigned, left as is");
    };
    let body = body_of(&event)?;
    let new = sign(SAMPLE_SECRET.as_bytes(), &body);
    if old == new {
        return Ok("already signed");
    }
    let updated = text.replace(&format!("\"{old}\""), &format!("\"{new}\""));
    std::fs::write(path, updated).map_err(|e| e.to_string())?;
    Ok("signed")
}

/// The `X-Nylas-Signature` value from `headers`, whatever the header name's case.
fn signature_of(event: &Value) -> Option<String> {
    let headers = event.get("headers")?.as_object()?;
    headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("x-nylas-signature"))
        .and_then(|(_, value)| value.as_str())
        .map(str::to_owned)
}

/// The body bytes as the function will see them.
fn body_of(event: &Value) -> Result<Vec<u8>, String> {
    let body = event
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| format!("body is not base64: {e}"))
    } else {
        Ok(body.as_bytes().to_vec())
    }
}
