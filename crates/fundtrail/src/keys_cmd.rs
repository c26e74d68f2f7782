//! `fundtrail keys`, `sign` and `check`: offline work with keys and envelopes.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use ed25519_dalek::VerifyingKey;
use fundtrail_domain::KeyId;
use fundtrail_envelope::{open, parse_public_key, read_payload, ActorKey};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Generate a new Ed25519 key from the OS random number generator.
    New {
        /// Where to write the private key (created with mode 0600; never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show the key id and public key of a key file.
    Show {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct SignArgs {
    /// The signer's private key file.
    #[arg(long)]
    key: PathBuf,
    /// The event to sign (JSON); its bytes are signed exactly as they are.
    event: PathBuf,
}

#[derive(Args)]
pub struct CheckArgs {
    /// The envelope to check.
    envelope: PathBuf,
    /// Public keys the signer may have: base64, or a key file (repeatable).
    #[arg(long = "pubkey", required = true)]
    pubkeys: Vec<String>,
    #[arg(long)]
    json: bool,
}

pub fn keys(cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::New { out, json } => {
            let key = ActorKey::generate()?;
            fundtrail_client::key_file::write(&out, &key)?;
            print_key(&key, json, Some(&out));
        }
        KeysCommand::Show { key, json } => print_key(&load_key(&key)?, json, None),
    }
    Ok(())
}

fn print_key(key: &ActorKey, json: bool, path: Option<&Path>) {
    if json {
        let value = serde_json::json!({
            "key_id": key.key_id(),
            "public_key": key.public_key_b64(),
            "file": path.map(|p| p.display().to_string()),
        });
        println!("{value}");
    } else {
        if let Some(path) = path {
            println!("wrote {} (mode 0600)", path.display());
        }
        println!("key id:     {}", key.key_id());
        println!("public key: {}", key.public_key_b64());
    }
}

pub use fundtrail_client::key_file::load as load_key;

pub fn sign(args: SignArgs) -> Result<()> {
    let key = load_key(&args.key)?;
    let payload = std::fs::read(&args.event).with_context(|| format!("cannot read {}", args.event.display()))?;
    let event = read_payload(&payload).with_context(|| format!("{} is not a valid event", args.event.display()))?;
    if event.author != key.key_id() {
        bail!(
            "the event's author is {} but the key is {}: an event is signed by its author",
            event.author,
            key.key_id()
        );
    }
    let envelope = key.sign_payload(&payload);
    println!("{}", String::from_utf8(envelope).expect("envelopes are UTF-8"));
    Ok(())
}

pub fn check(args: CheckArgs) -> Result<()> {
    let bytes = std::fs::read(&args.envelope).with_context(|| format!("cannot read {}", args.envelope.display()))?;
    let bytes = trim_trailing_newline(&bytes);
    let keys: Vec<VerifyingKey> = args.pubkeys.iter().map(|k| pubkey_arg(k)).collect::<Result<_>>()?;
    let resolve = |id: &KeyId| keys.iter().find(|k| KeyId::of_public_key(k.as_bytes()) == *id).copied();
    let verified = open(bytes, resolve).with_context(|| format!("{} does not verify", args.envelope.display()))?;
    let e = &verified.event;
    if args.json {
        let value = serde_json::json!({
            "ok": true, "id": e.id, "type": e.type_name(), "fund": e.fund, "author": e.author,
            "occurred_at": fundtrail_domain::event::format_utc(&e.occurred_at),
        });
        println!("{value}");
    } else {
        println!("OK: {} {} in {} signed by {}", e.type_name(), e.id, e.fund, e.author);
    }
    Ok(())
}

/// A file saved by `sign > FILE` ends in a newline that is not part of the envelope.
fn trim_trailing_newline(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(b"\n").unwrap_or(bytes)
}

fn pubkey_arg(arg: &str) -> Result<VerifyingKey> {
    if Path::new(arg).is_file() {
        return Ok(load_key(Path::new(arg))?.verifying_key());
    }
    parse_public_key(arg).with_context(|| format!("--pubkey {arg:?} is neither a key file nor a base64 public key"))
}
