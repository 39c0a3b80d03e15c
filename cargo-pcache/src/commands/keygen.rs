//! `cargo pcache keygen NAME`: a new Ed25519 key pair for signed remote
//! entries, printed in the form settings take.

use std::io::Write;

use anyhow::Result;
use pcache_core::remote::{SIGNING_KEY_VAR, TRUSTED_KEYS_VAR};
use serde::Serialize;

use crate::cli::KeygenArgs;
use crate::remote::signing::SigningKeyPair;

/// The `--json` document. Fields may be added, never renamed or removed.
#[derive(Serialize)]
struct Report<'a> {
    name: &'a str,
    /// The public key, in base64: the trusted key.
    public: String,
    /// The secret key (its 32-byte seed), in base64: the signing key.
    secret: String,
}

/// Prints a new key pair named `args.name`.
pub(crate) fn run(args: &KeygenArgs, out: &mut dyn Write) -> Result<()> {
    let pair = SigningKeyPair::generate(&args.name).map_err(anyhow::Error::msg)?;
    let name = pair.name();
    if args.json {
        let report = Report {
            name,
            public: pair.public(),
            secret: pair.secret(),
        };
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{SIGNING_KEY_VAR}={name}:{}", pair.secret())?;
        writeln!(out, "{TRUSTED_KEYS_VAR}={name}:{}", pair.public())?;
    }
    Ok(())
}
