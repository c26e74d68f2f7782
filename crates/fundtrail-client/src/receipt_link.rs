//! Receipts people can carry: a QR code that opens the portal's "My donation"
//! page for one gift, as PNG bytes and as terminal text (the command line
//! writes and prints them).
//!
//! The link format is fixed (the portal reads it):
//! `<portal base URL>/#/my/<ledger index>/<salt>` where the salt is the 32 bytes
//! behind the donor's commitment as 43 characters of base64url without padding,
//! optionally followed by `/<donor reference, percent-encoded>` — only when the
//! donor asks for it (the CLI's `--qr-include-ref`): the reference is personal data and
//! never goes in a code by default. Everything after `#` stays in the browser
//! (RFC 3986 §3.5: a fragment is never sent to a server).
//!
//! The code must scan from a small printed receipt: at most version 6
//! ([`QR_VERSION_MAX`], 41×41 modules) at error correction M (ISO/IEC 18004
//! §6.5.1: about 15 % of the code may be damaged).

use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use qrcode::render::unicode::Dense1x2;
use qrcode::{Color, EcLevel, QrCode, Version};

use fundtrail_domain::EventId;

use crate::wallet::{read_donor_file, SALT_SIZE};

/// The largest QR version a receipt carries (ISO/IEC 18004 Table 1).
pub const QR_VERSION_MAX: i16 = 6;
/// Modules per side at [`QR_VERSION_MAX`]: 17 + 4·version.
pub const QR_MODULES_MAX: usize = 41;
/// The error correction level of every receipt code.
pub const QR_EC_LEVEL: EcLevel = EcLevel::M;
/// Light modules around the code (ISO/IEC 18004 §6.3.8: at least 4).
pub const QR_QUIET_ZONE_MODULES: usize = 4;
/// PNG pixels per module: 8 px, so a 41-module code is 392 px with its quiet zone.
pub const PNG_MODULE_PX: usize = 8;
/// Length of the salt in the link: 32 bytes of unpadded base64url.
pub const SALT_B64URL_CHARS: usize = 43;

/// What `percent-encoding` leaves alone in the donor reference: RFC 3986
/// unreserved characters (§2.3), so the portal decodes it with
/// `decodeURIComponent`.
const REFERENCE_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The portal link for one gift (the module doc gives the format).
pub fn receipt_link(
    portal_base: &str,
    ledger_index: u64,
    salt: &[u8; SALT_SIZE],
    donor_reference: Option<&str>,
) -> Result<String> {
    let base = portal_base.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) || base.contains('#') {
        bail!("portal URL {portal_base:?}: expected http:// or https:// and no '#'");
    }
    let salt = B64URL.encode(salt);
    assert_eq!(salt.len(), SALT_B64URL_CHARS, "32 bytes are 43 base64url characters");
    let mut link = format!("{base}/#/my/{ledger_index}/{salt}");
    if let Some(reference) = donor_reference {
        link.push('/');
        link.extend(utf8_percent_encode(reference, REFERENCE_ESCAPED));
    }
    Ok(link)
}

/// The QR code of `link`: the smallest version at error correction M, refused
/// when it would need more than [`QR_MODULES_MAX`] modules a side.
pub fn encode(link: &str) -> Result<QrCode> {
    let too_long = || {
        format!(
            "the receipt link is {} bytes: a receipt's QR code holds at most version {QR_VERSION_MAX} \
             ({QR_MODULES_MAX}×{QR_MODULES_MAX} modules) at error correction M — use a shorter --portal URL \
             (or leave out --qr-include-ref)",
            link.len()
        )
    };
    let code =
        QrCode::with_error_correction_level(link.as_bytes(), QR_EC_LEVEL).map_err(|_| anyhow::anyhow!(too_long()))?;
    if code.width() > QR_MODULES_MAX {
        bail!(too_long());
    }
    assert!(matches!(code.version(), Version::Normal(v) if v <= QR_VERSION_MAX), "41 modules is version 6");
    assert_eq!(code.error_correction_level(), QR_EC_LEVEL);
    Ok(code)
}

/// The code as 8-bit grey pixels (0 dark, 255 light), with its quiet zone:
/// (side in pixels, pixels row by row).
pub fn pixels(code: &QrCode, module_px: usize) -> (usize, Vec<u8>) {
    let width = code.width();
    let colors = code.to_colors();
    assert_eq!(colors.len(), width * width);
    let side = (width + 2 * QR_QUIET_ZONE_MODULES) * module_px;
    let mut out = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (mx, my) = (i % width + QR_QUIET_ZONE_MODULES, i / width + QR_QUIET_ZONE_MODULES);
        for y in my * module_px..(my + 1) * module_px {
            out[y * side + mx * module_px..(mx + 1) * module_px + y * side].fill(0);
        }
    }
    (side, out)
}

/// The code as a greyscale PNG file's bytes.
pub fn png_bytes(code: &QrCode) -> Result<Vec<u8>> {
    let (side, data) = pixels(code, PNG_MODULE_PX);
    let side_u32 = u32::try_from(side).expect("a receipt code is a few hundred pixels");
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side_u32, side_u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().context("encoding the receipt's QR code as PNG")?;
    writer.write_image_data(&data).context("encoding the receipt's QR code as PNG")?;
    writer.finish().context("encoding the receipt's QR code as PNG")?;
    Ok(out)
}

/// The code in Unicode half blocks (two modules a character cell), light on dark
/// terminals read as the printed code: dark modules are drawn as spaces.
pub fn terminal_text(code: &QrCode) -> String {
    code.render::<Dense1x2>().dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).quiet_zone(true).build()
}

/// The link of one gift whose donor file (salt and reference) is in `donor_dir`,
/// without which no link can be made; the reference goes in only with
/// `include_ref`.
pub fn link_from_donor_file(
    portal_base: &str,
    event: &EventId,
    ledger_index: u64,
    donor_dir: &Path,
    include_ref: bool,
) -> Result<String> {
    let Some((salt, reference)) = read_donor_file(donor_dir, event)? else {
        bail!(
            "a receipt QR code needs the donor's salt: no donor file for {event} in {} (--receipt-dir)",
            donor_dir.display()
        );
    };
    receipt_link(portal_base, ledger_index, &salt, include_ref.then_some(reference.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a code back from grey pixels with an independent decoder.
    fn decode(side: usize, pixels: &[u8]) -> (String, usize) {
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| pixels[y * side + x]);
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in the image");
        let (meta, content) = grids[0].decode().expect("the code decodes");
        assert_eq!(meta.ecc_level, 0, "error correction M is format bits 00");
        (content, 17 + 4 * meta.version.0)
    }

    const SALT: [u8; SALT_SIZE] = [0xfb; SALT_SIZE];

    #[test]
    fn the_link_has_the_agreed_format() {
        let link = receipt_link("http://127.0.0.1:8080/", 1234, &SALT, None).unwrap();
        let salt = B64URL.encode(SALT);
        assert_eq!(link, format!("http://127.0.0.1:8080/#/my/1234/{salt}"));
        assert_eq!(salt.len(), 43);
        assert!(!salt.contains(['+', '/', '=']));
        let with_ref = receipt_link("https://portal.example", 7, &SALT, Some("王 R/1+?")).unwrap();
        assert_eq!(with_ref, format!("https://portal.example/#/my/7/{salt}/%E7%8E%8B%20R%2F1%2B%3F"));
        assert!(receipt_link("portal.example", 7, &SALT, None).is_err());
        assert!(receipt_link("http://x/#/y", 7, &SALT, None).is_err());
    }

    #[test]
    fn a_receipt_code_decodes_to_its_link_within_41_modules() {
        let salt: [u8; SALT_SIZE] = std::array::from_fn(|i| (i * 37 + 11) as u8);
        for (base, index, reference) in [
            ("http://127.0.0.1:8080", 0, None),
            ("http://127.0.0.1:8080", u64::from(u32::MAX), Some("DEMO-R-0042")),
            ("https://xihu.fundtrail.example", 123_456, Some("13800138000")),
        ] {
            let link = receipt_link(base, index, &salt, reference).unwrap();
            let code = encode(&link).unwrap();
            assert!(code.width() <= QR_MODULES_MAX, "{link}: {} modules", code.width());
            assert_eq!(code.error_correction_level(), EcLevel::M);
            let (side, px) = pixels(&code, 4);
            let (content, modules) = decode(side, &px);
            assert_eq!(content, link);
            assert!(modules <= QR_MODULES_MAX);
            assert_eq!(modules, code.width());
        }
    }

    #[test]
    fn the_png_and_the_terminal_code_scan_back() {
        let link = receipt_link("http://127.0.0.1:8080", 42, &SALT, Some("DEMO-R-0042")).unwrap();
        let code = encode(&link).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("receipt.png");
        std::fs::write(&path, png_bytes(&code).unwrap()).unwrap();
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.color_type), (info.height, png::ColorType::Grayscale));
        let (content, modules) = decode(info.width as usize, &buf[..info.buffer_size()]);
        assert_eq!((content.as_str(), modules), (link.as_str(), code.width()));

        // The terminal text: each character is two modules, a space dark (inverted).
        let text = terminal_text(&code);
        let rows: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
        let side = rows[0].len();
        let module = |x: usize, y: usize| -> bool {
            let c = rows[y / 2][x];
            let (top, bottom) = match c {
                ' ' => (true, true),
                '▀' => (false, true),
                '▄' => (true, false),
                '█' => (false, false),
                other => panic!("unexpected {other:?}"),
            };
            if y.is_multiple_of(2) {
                top
            } else {
                bottom
            }
        };
        let scale = 4;
        let px_side = side * scale;
        let grey = |x: usize, y: usize| -> u8 {
            let (mx, my) = (x / scale, y / scale);
            if my / 2 >= rows.len() || !module(mx, my) {
                255
            } else {
                0
            }
        };
        let px: Vec<u8> = (0..px_side * px_side).map(|i| grey(i % px_side, i / px_side)).collect();
        let (content, _) = decode(px_side, &px);
        assert_eq!(content, link);
    }

    #[test]
    fn a_link_too_long_for_41_modules_is_refused() {
        let base = format!("https://{}.example", "a".repeat(60));
        let link = receipt_link(&base, 1, &SALT, Some("DEMO-R-0042")).unwrap();
        let Err(err) = encode(&link) else { panic!("{link} was encoded") };
        let err = err.to_string();
        assert!(err.contains("at most version 6"), "{err}");
    }
}
