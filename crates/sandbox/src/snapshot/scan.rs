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
//! The search is one pass over a haystack whatever the number of needles (a value has about a
//! dozen forms, a sandbox a few dozen values): a bit per first two bytes of any needle rejects
//! most positions at once; the rest are looked up by their first four bytes and compared in
//! full. Needles and that index live in zeroizing buffers, so no copy of a value outlives the
//! set.

use std::fmt;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
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
    index: Index,
}

/// The needles by their first bytes (see the module's doc). Every needle has at least
/// [`MIN_SCANNED_LEN`] = 4 bytes.
struct Index {
    /// One bit per value of a needle's first two bytes (65,536 bits).
    first_two: Zeroizing<Vec<u64>>,
    /// (a needle's first four bytes, big-endian; its index in `needles`), sorted.
    by_prefix: Zeroizing<Vec<(u32, usize)>>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            first_two: Zeroizing::new(vec![0; 1024]),
            by_prefix: Zeroizing::new(Vec::new()),
        }
    }
}

fn first_two(bytes: &[u8]) -> usize {
    usize::from(bytes[0]) << 8 | usize::from(bytes[1])
}

fn first_four(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
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
        let two = first_two(&bytes);
        self.index.first_two[two / 64] |= 1 << (two % 64);
        let key = (first_four(&bytes), self.needles.len());
        let at = self.index.by_prefix.partition_point(|e| *e < key);
        self.index.by_prefix.insert(at, key);
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

    /// Add to `found` the label of every value that `haystack` holds in a searched form (one
    /// pass over it).
    pub(crate) fn find(&self, haystack: &[u8], found: &mut Vec<usize>) {
        if self.needles.is_empty() || haystack.len() < MIN_SCANNED_LEN {
            return;
        }
        let bits = &self.index.first_two;
        for at in 0..=haystack.len() - MIN_SCANNED_LEN {
            let rest = &haystack[at..];
            let two = first_two(rest);
            if bits[two / 64] & (1 << (two % 64)) == 0 {
                continue;
            }
            let four = first_four(rest);
            let by_prefix = &self.index.by_prefix;
            let start = by_prefix.partition_point(|&(p, _)| p < four);
            for &(_, n) in by_prefix[start..].iter().take_while(|(p, _)| *p == four) {
                let needle = &self.needles[n];
                if !found.contains(&needle.label) && rest.starts_with(&needle.bytes) {
                    found.push(needle.label);
                }
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

    proptest::proptest! {
        /// The one-pass search finds exactly what a search for each raw value finds (the
        /// values' other forms aside: a small alphabet makes raw hits, shared prefixes and
        /// overlaps common).
        #[test]
        fn one_pass_finds_what_each_needle_search_finds(
            values in proptest::collection::vec("[ab%]{4,9}", 1..12),
            haystack in "[ab%]{0,200}",
        ) {
            let mut set = ScanSet::new();
            for (i, v) in values.iter().enumerate() {
                set.add(&format!("v{i}"), v.as_bytes());
            }
            let mut found = Vec::new();
            set.find(haystack.as_bytes(), &mut found);
            let labels: std::collections::BTreeSet<String> =
                found.iter().map(|&i| set.label(i).to_string()).collect();
            for (i, v) in values.iter().enumerate() {
                let label = format!("v{i}");
                let index = set.labels.iter().position(|l| *l == label).unwrap();
                let naive = set.needles.iter().filter(|n| n.label == index).any(|n| {
                    haystack.as_bytes().windows(n.bytes.len()).any(|w| w == &n.bytes[..])
                });
                proptest::prop_assert_eq!(labels.contains(&label), naive, "{} in {}", v, haystack);
            }
        }
    }
}
