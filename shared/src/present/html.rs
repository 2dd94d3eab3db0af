//! Presentation helpers for HTML: a whole page, its style, its headers and policy, and the escaping every page uses.

use base64::Engine;
use sha2::{Digest, Sha256};

/// The style every page shares.
const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:1rem auto;padding:0 1rem;color:#1b1f23}\
h1{font-size:1.3rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem}dt{color:#57606a}\
dd{margin:0;overflow-wrap:anywhere}label{display:block;margin-top:.8rem}input,textarea{width:100%;box-sizing:border-box;\
font:inherit;padding:.4rem}button{font:inherit;padding:.6rem 1.2rem;margin:1rem .6rem 0 0;border-radius:.3rem;\
border:1px solid #888}.approve{background:#1f883d;color:#fff}.reject{background:#cf222e;color:#fff}\
.note{color:#57606a;font-size:.9rem}body:has(.wide){max-width:64rem}h2{font-size:1.1rem;margin-top:2rem}\
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.3rem .5rem;\
border-bottom:1px solid #d0d7de;vertical-align:top}pre{font-size:.8rem;overflow-x:auto;background:#f6f8fa;padding:.5rem}\
ol.stages{display:flex;flex-wrap:wrap;gap:.4rem;list-style:none;padding:0}ol.stages li{padding:.1rem .6rem;\
border-radius:1rem;border:1px solid #d0d7de}.done{background:#dafbe1}.now{background:#fff8c5}.bad{background:#ffebe9}.scroll{overflow-x:auto}";

/// Headers every approval page is sent with, besides `Content-Security-Policy`.
pub const HEADERS: [(&str, &str); 5] = [
    ("content-type", "text/html; charset=utf-8"),
    ("cache-control", "no-store"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
];

/// Nothing but the page's own style and forms posting back to it; no script, no frames, no other origin.
pub fn content_security_policy() -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// A page and the status it is sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    pub html: String,
}

/// A whole page: `head` is added to the head (it is HTML, made by the caller), `body` is the body.
pub(crate) fn document(status: u16, title: &str, head: &str, body: &str) -> Page {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"robots\" content=\"noindex\">\
         {head}<title>{} · sluice</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    );
    Page { status, html }
}

/// Text made safe for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
