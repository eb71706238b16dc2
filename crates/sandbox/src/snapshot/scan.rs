//! The proof behind a `scrub_and_delete` snapshot: every value injected into a sandbox, in the
//! forms a process is likely to have written it down in, searched for in everything a capture
//! archives (file contents, file names, link targets).
//!
//! Forms searched, for each value and (for a JSON credential document) each of its strings of
//! at least 16 bytes: the raw bytes; base64 in the standard and URL-safe alphabets at each of
//! the three alignments a value can have inside a longer base64 text (so a value base64-encoded
//! together with what surrounds it, as in an `Authorization: Basic` header or a `.npmrc`, is
//! found too); URL-encoding (upper- and lowercase hex, `+` for a space); and JSON string
//! escaping. Values shorter than [`MIN_SCANNED_LEN`] bytes are not searched: they would match
//! ordinary text everywhere.
//!
//! Needles live in zeroizing buffers, and searching borrows them (`memchr::memmem`), so no
//! copy of a value outlives the set.

use std::fmt;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use memchr::memmem;
use zeroize::Zeroizing;

/// Shortest value searched for.
pub const MIN_SCANNED_LEN: usize = 4;

/// One form of one value, and the label (secret or credential name) it is reported under.
struct Needle {
    label: usize,
    bytes: Zeroizing<Vec<u8>>,
}

/// Every injected value of one sandbox, in every searched form. `Debug` shows labels only.
#[derive(Default)]
pub struct ScanSet {
    labels: Vec<String>,
    needles: Vec<Needle>,
    longest: usize,
}

impl fmt::Debug for ScanSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScanSet")
            .field("labels", &self.labels)
            .field("needles", &self.needles.len())
            .finish()
    }
}

impl ScanSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a value injected under `label` (and, for a JSON document, its long strings).
    pub fn add(&mut self, label: &str, value: &[u8]) {
        let index = match self.labels.iter().position(|l| l == label) {
            Some(i) => i,
            None => {
                self.labels.push(label.to_string());
                self.labels.len() - 1
            }
        };
        self.add_forms(index, value);
        if value.trim_ascii_start().first() == Some(&b'{') {
            for s in crate::redact::document_strings(value) {
                self.add_forms(index, s.as_bytes());
            }
        }
    }

    /// Whether nothing is searched for.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Longest needle: a stream scan keeps this many bytes minus one between reads.
    pub(crate) fn longest(&self) -> usize {
        self.longest
    }

    fn push(&mut self, label: usize, bytes: Zeroizing<Vec<u8>>) {
        if bytes.len() < MIN_SCANNED_LEN
            || self
                .needles
                .iter()
                .any(|n| n.label == label && *n.bytes == *bytes)
        {
            return;
        }
        self.longest = self.longest.max(bytes.len());
        self.needles.push(Needle { label, bytes });
    }

    fn add_forms(&mut self, label: usize, value: &[u8]) {
        if value.len() < MIN_SCANNED_LEN {
            return;
        }
        self.push(label, Zeroizing::new(value.to_vec()));
        for form in base64_forms(value) {
            self.push(label, form);
        }
        for upper in [true, false] {
            self.push(label, percent_encoded(value, upper, false));
        }
        if value.contains(&b' ') {
            self.push(label, percent_encoded(value, true, true));
        }
        if let Ok(text) = std::str::from_utf8(value) {
            if let Ok(json) = serde_json::to_string(text) {
                let json = Zeroizing::new(json);
                self.push(
                    label,
                    Zeroizing::new(json[1..json.len() - 1].as_bytes().to_vec()),
                );
            }
        }
    }

    /// The labels of every value found in `haystack` (sorted indexes into the labels).
    pub(crate) fn find(&self, haystack: &[u8], found: &mut Vec<usize>) {
        for n in &self.needles {
            if !found.contains(&n.label) && memmem::find(haystack, &n.bytes).is_some() {
                found.push(n.label);
            }
        }
    }

    pub(crate) fn label(&self, index: usize) -> &str {
        &self.labels[index]
    }
}

/// The value's base64 at each alignment inside a longer text: the characters that depend on the
/// value's bytes only, in both alphabets.
fn base64_forms(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut forms = Vec::new();
    for shift in 0..3usize {
        let mut padded = Zeroizing::new(vec![0u8; shift]);
        padded.extend_from_slice(value);
        // Chars [ceil(8*shift/6), floor(8*(shift+n)/6)) are made of the value's bits only.
        let start = (8 * shift).div_ceil(6);
        let end = 8 * (shift + value.len()) / 6;
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let text = Zeroizing::new(engine.encode(&*padded));
            if end > start && end <= text.len() {
                forms.push(Zeroizing::new(text.as_bytes()[start..end].to_vec()));
            }
        }
    }
    forms
}

/// Percent-encoding of every byte outside RFC 3986's unreserved set (`+` for a space in form
/// encoding).
fn percent_encoded(value: &[u8], upper: bool, form: bool) -> Zeroizing<Vec<u8>> {
    let hex: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 3));
    for &b in value {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else if form && b == b' ' {
            out.push(b'+');
        } else {
            out.extend_from_slice(&[b'%', hex[usize::from(b >> 4)], hex[usize::from(b & 15)]]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(set: &ScanSet, text: &[u8]) -> Vec<String> {
        let mut found = Vec::new();
        set.find(text, &mut found);
        found.iter().map(|&i| set.label(i).to_string()).collect()
    }

    #[test]
    fn every_form_is_found() {
        let value = "sk-ant-api03-Q/x+y z\"ok\"";
        let mut set = ScanSet::new();
        set.add("claude-key", value.as_bytes());
        let json = serde_json::to_string(value).unwrap();
        let mut texts: Vec<Vec<u8>> = vec![
            format!("KEY={value}\n").into_bytes(),
            format!("{{\"k\":{json}}}").into_bytes(),
            format!(
                "https://h/?k={}",
                percent_encoded(value.as_bytes(), true, false)
                    .iter()
                    .map(|&b| b as char)
                    .collect::<String>()
            )
            .into_bytes(),
        ];
        for prefix in ["", "u:", "us:"] {
            for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                let b64 = engine.encode(format!("{prefix}{value}:tail"));
                texts.push(format!("Authorization: Basic {b64}\n").into_bytes());
            }
        }
        for text in texts {
            assert_eq!(
                hits(&set, &text),
                ["claude-key"],
                "{}",
                String::from_utf8_lossy(&text)
            );
        }
        assert!(hits(&set, b"nothing here: sk-ant-api03").is_empty());
    }

    #[test]
    fn json_documents_add_their_tokens_and_short_values_are_skipped() {
        let mut set = ScanSet::new();
        set.add(
            "oauth",
            br#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-abcdefghijklmnop","expiresAt":1}}"#,
        );
        set.add("tiny", b"abc");
        assert_eq!(
            hits(&set, b"token sk-ant-oat01-abcdefghijklmnop"),
            ["oauth"]
        );
        assert!(hits(&set, b"abc abc").is_empty());
    }
}
