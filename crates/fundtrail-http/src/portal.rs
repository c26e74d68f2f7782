//! The public portal: the pages in `portal/dist` (built from `portal/src` by npm and
//! committed), compiled into the binary so that `cargo build` needs no Node.js.
//!
//! `GET /` serves `index.html` with the log's verifier key pinned in it; the scripts and
//! the style sheet are served with their gzip copies to clients that accept gzip. Every
//! answer carries a strong `ETag` (SHA-256 of the bytes) and `Cache-Control: no-cache`:
//! the file names carry no hash, so a browser revalidates (and gets a 304) instead of
//! running yesterday's verifier. Routes are hash routes (`/#/funds/<fund>`…), so these
//! few files are the whole site, and the same files work as a static site beside a
//! ledger mirror ([`static_site`]).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::AppState;

/// One file of the portal.
pub struct Asset {
    /// The path it is served at, without the leading slash.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// The same bytes, gzip-compressed (by the portal's build).
    pub gzip: &'static [u8],
}

/// The page template: `{{MODE}}`, `{{API}}`, `{{LEDGER}}`, `{{VKEY}}` and `{{POLICY}}` are
/// filled in.
pub const INDEX_TEMPLATE: &str = include_str!("../../../portal/dist/index.html");

/// The portal's files other than the page itself.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../../portal/dist/app.js"),
        gzip: include_bytes!("../../../portal/dist/app.js.gz"),
    },
    Asset {
        path: "worker.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../../portal/dist/worker.js"),
        gzip: include_bytes!("../../../portal/dist/worker.js.gz"),
    },
    Asset {
        path: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../../portal/dist/style.css"),
        gzip: include_bytes!("../../../portal/dist/style.css.gz"),
    },
];

/// Cache-Control of every portal file (see the module docs).
pub const PORTAL_CACHE: &str = "no-cache";

/// Where a page reads its data from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Served by `fundtrail serve`: the JSON API under `/v1/`, the ledger under `/ledger/`.
    Server,
    /// Static files beside a ledger mirror: `api/*.json` and the tiles in the same directory.
    Static,
}

/// The page, with the log's verifier key pinned in it.
pub fn index_html(mode: Mode, vkey: &str) -> String {
    index_html_with_policy(mode, vkey, None)
}

/// The page, with the log's verifier key and the witness policy (C2SP tlog-policy text,
/// when the operator gave one) pinned in it: the page checks every checkpoint's
/// cosignatures against that policy, and says the ledger is not witnessed without one.
pub fn index_html_with_policy(mode: Mode, vkey: &str, policy: Option<&str>) -> String {
    let (mode, api, ledger) = match mode {
        Mode::Server => ("server", "/v1/", "/ledger/"),
        Mode::Static => ("static", "api/", "./"),
    };
    INDEX_TEMPLATE
        .replace("{{MODE}}", mode)
        .replace("{{API}}", api)
        .replace("{{LEDGER}}", ledger)
        .replace("{{VKEY}}", &html_attribute(vkey))
        .replace("{{POLICY}}", &html_attribute(policy.unwrap_or("")))
}

/// Escapes text for a double-quoted HTML attribute.
fn html_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\n', "&#10;")
        .replace('\t', "&#9;")
}

/// The files of the portal as a static site: (relative path, bytes).
pub fn static_site(vkey: &str) -> Vec<(&'static str, Vec<u8>)> {
    let mut files = vec![("index.html", index_html(Mode::Static, vkey).into_bytes())];
    files.extend(ASSETS.iter().map(|a| (a.path, a.body.to_vec())));
    files
}

fn etag(bytes: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a valid header value")
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|coding| {
            let mut parts = coding.trim().split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused =
                parts.any(|p| matches!(p.trim().replace(' ', "").as_str(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case("gzip") && !refused
        })
    })
}

fn answer(request: &HeaderMap, content_type: &'static str, body: Vec<u8>, gzip: Option<&'static [u8]>) -> Response {
    let tag = etag(&body);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(PORTAL_CACHE));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if gzip.is_some() {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    headers.insert(header::ETAG, tag.clone());
    let matches = request.get_all(header::IF_NONE_MATCH).iter().any(|v| {
        v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == tag.to_str().unwrap_or("")))
    });
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    match gzip {
        Some(compressed) if accepts_gzip(request) => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            (headers, compressed).into_response()
        }
        _ => (headers, body).into_response(),
    }
}

/// `GET /` and `GET /index.html`.
pub(crate) async fn index(State(app): State<AppState>, request: HeaderMap) -> Response {
    let page = index_html_with_policy(Mode::Server, &app.vkey(), app.witness_policy());
    let mut response = answer(&request, "text/html; charset=utf-8", page.into_bytes(), None);
    // The page runs only its own scripts; it reads this origin alone.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; worker-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    response
}

/// `GET /app.js`, `/worker.js`, `/style.css`.
pub(crate) async fn asset(request: HeaderMap, uri: axum::http::Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    match ASSETS.iter().find(|a| a.path == path) {
        Some(a) => answer(&request, a.content_type, a.body.to_vec(), Some(a.gzip)),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_pins_the_key_and_names_its_sources() {
        let page = index_html(Mode::Server, "log.example+01234567+AQ\"<x>");
        assert!(
            page.contains(r#"<meta name="fundtrail-vkey" content="log.example+01234567+AQ&quot;&lt;x&gt;">"#),
            "{page}"
        );
        assert!(page.contains(r#"content="/v1/""#) && page.contains(r#"content="/ledger/""#));
        let policy = "log k\nquorum none\n";
        let pinned = index_html_with_policy(Mode::Server, "k", Some(policy));
        assert!(
            pinned.contains(r#"<meta name="fundtrail-witness-policy" content="log k&#10;quorum none&#10;">"#),
            "{pinned}"
        );
        assert!(index_html(Mode::Server, "k").contains(r#"<meta name="fundtrail-witness-policy" content="">"#));
        let site = index_html(Mode::Static, "k");
        assert!(site.contains(r#"content="api/""#) && site.contains(r#"content="./""#));
        assert!(!site.contains("{{"));
    }

    #[test]
    fn gzip_is_chosen_by_accept_encoding() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            m
        };
        assert!(accepts_gzip(&h("gzip, deflate, br")));
        assert!(accepts_gzip(&h("br;q=1.0, GZIP;q=0.5")));
        assert!(!accepts_gzip(&h("gzip;q=0")));
        assert!(!accepts_gzip(&h("br")));
        assert!(!accepts_gzip(&HeaderMap::new()));
        for a in ASSETS {
            assert!(a.gzip.len() < a.body.len(), "{} compresses", a.path);
        }
    }
}
