//! The `--qr` flags of `receipt`, `donate` and `donate-goods`: write the QR code
//! of the portal's "My donation" link to a PNG file and print it on the terminal.
//!
//! Arguments and output only: the link format and the code are
//! `fundtrail_client::receipt_link`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use fundtrail_client::receipt_link::{encode, link_from_donor_file, png_bytes, receipt_link, terminal_text};
use fundtrail_client::wallet::{ReceiptFiles, SALT_SIZE};

/// Where to put a receipt's QR code (`receipt`, `donate`, `donate-goods`).
#[derive(Args, Clone, Debug, Default)]
pub struct QrArgs {
    /// Write a QR code that opens the portal's "My donation" page for this gift to FILE.png.
    #[arg(long = "qr", value_name = "FILE.png")]
    pub png: Option<PathBuf>,
    /// Print that QR code on the terminal.
    #[arg(long = "qr-terminal")]
    pub terminal: bool,
    /// Put the donor's reference in the link too (percent-encoded): personal data, off by
    /// default — without it the donor types their reference on the page.
    #[arg(long = "qr-include-ref")]
    pub include_ref: bool,
    /// The portal's base URL (default: --server).
    #[arg(long = "portal", env = "FUNDTRAIL_PORTAL", value_name = "URL")]
    pub portal: Option<String>,
}

impl QrArgs {
    /// Whether any QR output was asked for.
    pub fn wanted(&self) -> bool {
        self.png.is_some() || self.terminal
    }
}

/// Builds the link of one gift and writes what `args` asks for; answers the
/// link and the lines to print, or `None` when no QR code was asked for.
pub fn emit(
    args: &QrArgs,
    server: &str,
    ledger_index: u64,
    salt: &[u8; SALT_SIZE],
    donor_reference: &str,
) -> Result<Option<Written>> {
    if !args.wanted() {
        return Ok(None);
    }
    let portal = args.portal.as_deref().unwrap_or(server);
    let link = receipt_link(portal, ledger_index, salt, args.include_ref.then_some(donor_reference))?;
    written(args, link).map(Some)
}

/// [`emit`] for `fundtrail receipt`: the salt and reference come from the donor
/// file, without which no link can be made.
pub fn for_receipt(args: &QrArgs, files: &ReceiptFiles, donor_dir: &Path) -> Result<Option<Written>> {
    if !args.wanted() {
        return Ok(None);
    }
    let portal = args.portal.as_deref().unwrap_or(&files.server);
    let link = link_from_donor_file(portal, &files.event, files.index, donor_dir, args.include_ref)?;
    written(args, link).map(Some)
}

fn written(args: &QrArgs, link: String) -> Result<Written> {
    let code = encode(&link)?;
    if let Some(path) = &args.png {
        std::fs::write(path, png_bytes(&code)?).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let terminal = args.terminal.then(|| terminal_text(&code));
    Ok(Written { link, modules: code.width(), png: args.png.clone(), terminal })
}

/// What [`emit`] made.
pub struct Written {
    pub link: String,
    pub modules: usize,
    pub png: Option<PathBuf>,
    pub terminal: Option<String>,
}

impl Written {
    /// Prints the code (to stderr when stdout carries JSON).
    pub fn print_terminal(&self, json: bool) {
        let Some(text) = &self.terminal else { return };
        if json {
            eprintln!("{text}");
        } else {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
        }
    }

    /// The fields a `--json` answer carries.
    pub fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut map = serde_json::Map::new();
        map.insert("receipt_link".into(), self.link.clone().into());
        map.insert("qr_modules".into(), self.modules.into());
        if let Some(png) = &self.png {
            map.insert("qr_png".into(), png.display().to_string().into());
        }
        map
    }

    /// The lines `print_posted` shows.
    pub fn lines(&self) -> Vec<(&'static str, String)> {
        let mut lines = vec![("portal", self.link.clone())];
        if let Some(png) = &self.png {
            lines.push(("QR code", format!("{} ({}×{} modules)", png.display(), self.modules, self.modules)));
        }
        lines
    }
}
