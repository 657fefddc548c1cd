"""A team's own consumer crate, written from docs/consumer.md's snippet with its one dependency line,
built as `sam build` builds it (`cargo lambda build --release`): refused without
`panic = "unwind"` in its release profile, with a message naming the setting; built with it.

cargo lambda builds with panic = "abort" when the profile does not say, and the consumer
catches a handler's panic to return that message alone (docs/consumer.md, "Your own crate"). The
two builds share target/team-crate; opt-level 0 keeps them short (it does not change the panic
strategy). Run by `make test` with the project's virtualenv (cargo-lambda and zig).
"""

import os
import pathlib
import shutil
import subprocess
import tempfile
import unittest

import summary

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAIN = """\
use nylas_webhook_consumer::{run, tokio, Error, LambdaEvent, Notification};

#[tokio::main(flavor = "current_thread", crate = "nylas_webhook_consumer::tokio")]
async fn main() -> Result<(), Error> {
    run(|event: LambdaEvent<Notification>| async move {
        println!("{} {}", event.payload.id, event.context.request_id);
        Ok::<(), std::io::Error>(())
    })
    .await
}
"""
MANIFEST = f"""\
[package]
name = "team-consumer"
version = "0.1.0"
edition = "2021"

[dependencies]
nylas-webhook-consumer = {{ path = "{ROOT / 'consumer'}" }}

[workspace]
"""
PROFILE = '\n[profile.release]\npanic = "unwind"\n'


class TeamCrateTest(unittest.TestCase):
    def build(self, manifest):
        with tempfile.TemporaryDirectory() as folder:
            crate = pathlib.Path(folder)
            (crate / "src").mkdir()
            (crate / "src" / "main.rs").write_text(MAIN)
            (crate / "Cargo.toml").write_text(manifest)
            shutil.copy(ROOT / "Cargo.lock", crate / "Cargo.lock")
            venv = ROOT / ".venv" / "bin"
            env = {**os.environ, "PATH": f"{venv}:{os.environ['PATH']}",
                   "CARGO_TARGET_DIR": str(ROOT / "target" / "team-crate"),
                   "CARGO_PROFILE_RELEASE_OPT_LEVEL": "0"}
            done = subprocess.run(
                [str(venv / "cargo-lambda"), "lambda", "build", "--release"], cwd=crate, env=env,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800,
            )
            return done.returncode, done.stdout

    def test_a_team_crate_without_panic_unwind_is_refused_naming_the_setting(self):
        code, output = self.build(MANIFEST)
        self.assertNotEqual(code, 0, output[-3000:])
        self.assertIn('add `panic = "unwind"` under [profile.release]', output)

    def test_a_team_crate_with_readme_s_profile_lines_builds(self):
        code, output = self.build(MANIFEST + PROFILE)
        self.assertEqual(code, 0, output[-3000:])


if __name__ == "__main__":
    summary.run(verbosity=2)
