//! Redaction of injected values from everything amika relays out of a sandbox: exec output,
//! agent replies and transcripts, a failed start's explanation, and whatever relays come later.
//!
//! [`RedactionSet`] is the one place that decides *what* is redacted (see [`RedactionSet::add`]):
//! the server builds one per running sandbox, the provider one per start, both with the same
//! rule; it is the crate's one public redaction type. [`Redactor`] is the matching core under
//! it, private to the crate, and can only be built through a set.
//!
//! Output arrives in arbitrary chunks (pipe reads), so a value can be split across two or more
//! chunks. [`Redactor::push`] therefore emits only the bytes whose fate is decided and holds back
//! a tail that could still turn out to be the start of a value; [`Redactor::finish`] flushes it.
//! [`OutputFilter`] adds to that a cut at UTF-8 character boundaries, for text relays.
//!
//! Matching is leftmost, and at one position the longest value wins (values are tried longest
//! first), so "abcd" is redacted as a whole even when "ab" is also a value. The streaming result
//! is byte-for-byte the one-shot result for any chunking (property-tested below): a position is
//! only decided once every value that could start there has either matched in full or been ruled
//! out, which is exactly the information the one-shot scan uses.
//!
//! Cost is O(n·k·m) for n bytes, k values of length at most m — trivial for the handful of
//! secrets a sandbox has, and simple enough to trust.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use zeroize::Zeroizing;

/// Shortest value worth redacting on its own: shorter ones would shred ordinary output.
const MIN_REDACTED_LEN: usize = 4;

/// Shortest string inside a JSON credential document that is redacted on its own: tokens are
/// long, while the document's short strings ("Bearer", a scope) are ordinary words.
const MIN_DOCUMENT_STRING_LEN: usize = 16;

/// Every value injected into one sandbox run, by label, under amika's one rule of what is
/// redacted. Kept in memory only, zeroized on drop; `Debug` shows labels only.
#[derive(Debug, Clone, Default)]
pub struct RedactionSet {
    redactor: Redactor,
}

impl RedactionSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything a sandbox is given: its env values and file contents, each under its label.
    pub fn from_injection(injection: &crate::Injection) -> Self {
        let mut set = RedactionSet::new();
        for e in &injection.env {
            set.add(&e.label, e.value.expose_secret());
        }
        for f in &injection.files {
            set.add(&f.label, f.contents.expose_secret());
        }
        set
    }

    /// Add a value under `label`: the rule of what is redacted. A value shorter than
    /// [`MIN_REDACTED_LEN`] is left out; a JSON document (an OAuth credential) also adds each
    /// string inside it of at least [`MIN_DOCUMENT_STRING_LEN`] bytes, since its tokens are what
    /// a process is likely to print, not the whole document.
    pub fn add(&mut self, label: &str, value: &[u8]) {
        self.push(label, value);
        if value.trim_ascii_start().first() == Some(&b'{') {
            for s in document_strings(value) {
                self.push(label, s.as_bytes());
            }
        }
    }

    fn push(&mut self, label: &str, value: &[u8]) {
        if value.len() >= MIN_REDACTED_LEN {
            self.redactor.add(label, value);
        }
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.redactor.is_empty()
    }

    /// A filter for one text stream (exec stdout or stderr, ...).
    pub fn filter(&self) -> OutputFilter {
        OutputFilter {
            redactor: self.redactor.clone(),
            pending: Vec::new(),
        }
    }

    /// A filter for one byte stream that must stay byte-exact (see [`ByteFilter`]).
    pub fn byte_filter(&self) -> ByteFilter {
        ByteFilter {
            redactor: self.redactor.clone(),
        }
    }

    /// Redact complete bytes at once.
    pub fn redact(&self, data: &[u8]) -> Vec<u8> {
        self.redactor.redact(data)
    }

    /// Redact a complete text at once (stored replies, error messages). Values are whole UTF-8
    /// strings, so they match only at character boundaries and the result stays valid UTF-8.
    pub fn redact_all(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.redactor.redact(text.as_bytes())).into_owned()
    }
}

/// The long strings of a JSON document, each in a zeroizing buffer; none unless all of `doc` is
/// valid JSON. Walked with a visitor rather than parsed into a `serde_json::Value`, which would
/// hold every token as a plain `String` (and free it unzeroized). serde_json itself only copies
/// a string into its (unzeroized) scratch buffer when the string has escapes, which tokens do
/// not.
pub(crate) fn document_strings(doc: &[u8]) -> Vec<Zeroizing<String>> {
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(doc);
    match LongStrings(&mut found)
        .deserialize(&mut de)
        .and_then(|()| de.end())
    {
        Ok(()) => found,
        Err(_) => Vec::new(),
    }
}

/// Collects the strings of at least [`MIN_DOCUMENT_STRING_LEN`] bytes of any JSON value (object
/// keys excepted).
struct LongStrings<'a>(&'a mut Vec<Zeroizing<String>>);

impl<'de> DeserializeSeed<'de> for LongStrings<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LongStrings<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        if s.len() >= MIN_DOCUMENT_STRING_LEN {
            // An exact-size copy, straight into a zeroizing buffer.
            self.0.push(Zeroizing::new(s.to_owned()));
        }
        Ok(())
    }
    fn visit_string<E>(self, s: String) -> Result<(), E> {
        let s = Zeroizing::new(s);
        if s.len() >= MIN_DOCUMENT_STRING_LEN {
            self.0.push(s);
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(LongStrings(&mut *self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(LongStrings(&mut *self.0))?;
        }
        Ok(())
    }
}

/// Redacts one byte stream as it is (no UTF-8 cut): a relay that must stay byte-exact apart
/// from the values it replaces (an SSH command's stdout and stderr).
pub struct ByteFilter {
    redactor: Redactor,
}

impl fmt::Debug for ByteFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ByteFilter")
    }
}

impl ByteFilter {
    /// Feed the next chunk; returns the bytes that are safe to emit now (possibly none).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.redactor.push(chunk)
    }

    /// End of stream: what was held back, redacted.
    pub fn finish(self) -> Vec<u8> {
        self.redactor.finish()
    }
}

/// Redacts one text stream and cuts it at UTF-8 character boundaries.
pub struct OutputFilter {
    redactor: Redactor,
    /// Redacted bytes that end inside a multi-byte character.
    pending: Vec<u8>,
}

impl fmt::Debug for OutputFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OutputFilter")
    }
}

impl OutputFilter {
    /// Feed the next chunk; returns the text that is safe to emit now (possibly empty).
    pub fn push(&mut self, chunk: &[u8]) -> String {
        let safe = self.redactor.push(chunk);
        self.pending.extend_from_slice(&safe);
        let cut = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            // An incomplete character at the end waits for the next chunk; anything else
            // invalid is shown as U+FFFD by the lossy conversion below.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let rest = self.pending.split_off(cut);
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending = rest;
        out
    }

    /// End of stream: what was held back, redacted.
    pub fn finish(self) -> String {
        let OutputFilter {
            redactor,
            mut pending,
        } = self;
        pending.extend_from_slice(&redactor.finish());
        String::from_utf8_lossy(&pending).into_owned()
    }
}

/// Replaces every occurrence of the injected values in a byte stream by `[REDACTED:<label>]`.
/// Built only through a [`RedactionSet`] (or empty, by `Default`), so that what it matches
/// always follows the set's rule.
///
/// Holds secret values (zeroized on drop, never printed by `Debug`). One `Redactor` per stream:
/// stdout and stderr each need their own, since a value split across them is not "in" either.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    /// (value, replacement), longest value first.
    values: Vec<(Zeroizing<Vec<u8>>, Vec<u8>)>,
    /// Undecided tail of what was pushed: may be the start of a value.
    pending: Zeroizing<Vec<u8>>,
}

impl Redactor {
    /// Build from (label, value) pairs. Empty values are ignored (they would match everywhere);
    /// for equal values the first label wins. Only the tests build one without the set's rule.
    #[cfg(test)]
    fn new(values: Vec<(String, Vec<u8>)>) -> Self {
        let mut redactor = Redactor::default();
        for (label, value) in values {
            redactor.insert(&label, Zeroizing::new(value));
        }
        redactor
    }

    /// Add one value (copied into a zeroizing buffer), with the same rules as [`Redactor::new`].
    fn add(&mut self, label: &str, value: &[u8]) {
        self.insert(label, Zeroizing::new(value.to_vec()));
    }

    fn insert(&mut self, label: &str, value: Zeroizing<Vec<u8>>) {
        if value.is_empty() || self.values.iter().any(|(v, _)| **v == *value) {
            return;
        }
        // Longest first; among equal lengths, the order of insertion.
        let at = self.values.partition_point(|(v, _)| v.len() >= value.len());
        let replacement = format!("[REDACTED:{label}]").into_bytes();
        self.values.insert(at, (value, replacement));
    }

    /// Whether there is nothing to redact (every byte passes through unchanged).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Feed the next chunk; returns the bytes that are safe to emit now. At most
    /// (longest value − 1) bytes are held back.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.values.is_empty() {
            return chunk.to_vec();
        }
        self.pending.extend_from_slice(chunk);
        let (out, consumed) = scan(&self.values, &self.pending, false);
        self.pending.drain(..consumed);
        out
    }

    /// End of stream: the held-back tail, redacted.
    pub fn finish(mut self) -> Vec<u8> {
        let (out, _) = scan(&self.values, &self.pending, true);
        self.pending.clear();
        out
    }

    /// One-shot redaction of a complete buffer; does not touch the streaming state.
    pub fn redact(&self, data: &[u8]) -> Vec<u8> {
        scan(&self.values, data, true).0
    }
}

/// Redact `buf`; returns the output and how many input bytes it decided. Unless `at_end`, the scan
/// stops at the first position where a value longer than the rest of `buf` could still start.
fn scan(values: &[(Zeroizing<Vec<u8>>, Vec<u8>)], buf: &[u8], at_end: bool) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(buf.len());
    let mut i = 0;
    'positions: while i < buf.len() {
        let rest = &buf[i..];
        for (value, replacement) in values {
            if rest.len() >= value.len() {
                if rest.starts_with(value) {
                    out.extend_from_slice(replacement);
                    i += value.len();
                    continue 'positions;
                }
            } else if !at_end && value.starts_with(rest) {
                // A longer value may still match here once more bytes arrive; deciding now
                // could pick a shorter value (or none) where the one-shot scan would not.
                break 'positions;
            }
        }
        out.push(buf[i]);
        i += 1;
    }
    (out, i)
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<String> = self
            .values
            .iter()
            .map(|(_, r)| String::from_utf8_lossy(r).into_owned())
            .collect();
        f.debug_struct("Redactor")
            .field("replacements", &labels)
            .field("pending_bytes", &self.pending.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn redactor(values: &[(&str, &str)]) -> Redactor {
        Redactor::new(
            values
                .iter()
                .map(|(l, v)| (l.to_string(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    fn streamed(r: &Redactor, chunks: &[&[u8]]) -> Vec<u8> {
        let mut r = r.clone();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(r.push(c));
        }
        out.extend(r.finish());
        out
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn one_shot_replaces_every_occurrence() {
        let r = redactor(&[("KEY", "s3cr3t")]);
        assert_eq!(
            r.redact(b"a s3cr3t b s3cr3ts3cr3t"),
            b"a [REDACTED:KEY] b [REDACTED:KEY][REDACTED:KEY]".to_vec()
        );
    }

    #[test]
    fn value_split_at_every_offset() {
        let r = redactor(&[("KEY", "sk-0123456789")]);
        let input = b"before sk-0123456789 after";
        let expected = b"before [REDACTED:KEY] after".to_vec();
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(streamed(&r, &[a, b]), expected, "cut at {cut}");
        }
        // And byte by byte, the worst case.
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(streamed(&r, &bytes), expected);
    }

    #[test]
    fn values_at_chunk_edges() {
        let r = redactor(&[("K", "secret")]);
        assert_eq!(
            streamed(&r, &[b"secret", b"secret"]),
            b"[REDACTED:K][REDACTED:K]".to_vec()
        );
        assert_eq!(
            streamed(&r, &[b"", b"secret", b""]),
            b"[REDACTED:K]".to_vec()
        );
        assert_eq!(
            streamed(&r, &[b"xsecre", b"tx"]),
            b"x[REDACTED:K]x".to_vec()
        );
    }

    #[test]
    fn holds_back_at_most_longest_minus_one() {
        let mut r = redactor(&[("K", "abcdef")]);
        // "abcde" could be the start of the value: all of it is held back.
        assert_eq!(r.push(b"xxabcde"), b"xx".to_vec());
        assert_eq!(r.pending.len(), 5);
        // A mismatch releases it.
        assert_eq!(r.push(b"z"), b"abcdez".to_vec());
        // Bytes that cannot start a value are never held.
        assert_eq!(r.push(b"zzz"), b"zzz".to_vec());
        assert_eq!(r.finish(), Vec::<u8>::new());
    }

    #[test]
    fn two_values() {
        let r = redactor(&[("A", "alpha"), ("B", "beta")]);
        assert_eq!(
            streamed(&r, &[b"al", b"phabe", b"ta alph", b"beta"]),
            b"[REDACTED:A][REDACTED:B] alph[REDACTED:B]".to_vec()
        );
    }

    #[test]
    fn overlapping_prefixes_prefer_the_longest() {
        let r = redactor(&[("SHORT", "abc"), ("LONG", "abcdef")]);
        assert_eq!(
            r.redact(b"abcdef abcxyz"),
            b"[REDACTED:LONG] [REDACTED:SHORT]xyz".to_vec()
        );
        // Split inside the longer value: the shorter one must not win early.
        assert_eq!(streamed(&r, &[b"abc", b"def"]), b"[REDACTED:LONG]".to_vec());
        // Stream ends after the shorter value: it is still redacted at finish.
        assert_eq!(streamed(&r, &[b"ab", b"c"]), b"[REDACTED:SHORT]".to_vec());
        assert_eq!(streamed(&r, &[b"abcde"]), b"[REDACTED:SHORT]de".to_vec());
    }

    #[test]
    fn self_overlapping_value() {
        let r = redactor(&[("K", "aab")]);
        assert_eq!(
            streamed(&r, &[b"a", b"a", b"a", b"b"]),
            b"a[REDACTED:K]".to_vec()
        );
    }

    #[test]
    fn empty_values_and_no_values() {
        let r = redactor(&[("E", "")]);
        assert!(r.is_empty());
        assert_eq!(streamed(&r, &[b"anything"]), b"anything".to_vec());
    }

    #[test]
    fn debug_shows_no_value() {
        let r = redactor(&[("K", "topsecretvalue")]);
        let d = format!("{r:?}");
        assert!(d.contains("[REDACTED:K]"));
        assert!(!d.contains("topsecretvalue"));
    }

    // ---- the set: the one rule of what is redacted

    #[test]
    fn values_split_across_chunks_and_characters_are_redacted() {
        let mut set = RedactionSet::new();
        set.add("db", "postgres://u:pässword@h/db".as_bytes());
        let text = "url=postgres://u:pässword@h/db done é";
        for cut in 0..text.len() {
            let mut f = set.filter();
            let mut out = f.push(&text.as_bytes()[..cut]);
            out.push_str(&f.push(&text.as_bytes()[cut..]));
            out.push_str(&f.finish());
            assert_eq!(out, "url=[REDACTED:db] done é", "cut at {cut}");
        }
    }

    #[test]
    fn tokens_inside_oauth_documents_are_redacted_alone() {
        let mut set = RedactionSet::new();
        set.add(
            "personal-oauth",
            br#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-AAAABBBBCCCC","expiresAt":1}}"#,
        );
        assert_eq!(
            set.redact_all("token sk-ant-oat01-AAAABBBBCCCC!"),
            "token [REDACTED:personal-oauth]!"
        );
        assert!(!format!("{set:?}").contains("AAAABBBB"));
    }

    const CLAUDE_OAUTH: &str = r#"  {"claudeAiOauth":{"accessToken":"sk-ant-oat01-ACCESS-0123456789","refreshToken":"sk-ant-ort01-REFRESH-0123456789","scopes":["user:inference",["nested-string-long-enough"]],"expiresAt":1767225600000,"subscriptionType":"max"}}"#;

    /// The provider's explanation of a failed start used its own redactor, which knew the
    /// whole document but not the tokens inside it.
    #[test]
    fn a_set_built_from_an_injection_redacts_the_tokens_of_an_oauth_file() {
        let injection = crate::Injection {
            env: vec![crate::InjectedEnv {
                name: "API".into(),
                value: crate::SecretBytes::new(b"sk-live-api".to_vec()),
                label: "api".into(),
            }],
            files: vec![crate::InjectedFile {
                relative_path: ".claude/.credentials.json".into(),
                contents: crate::SecretBytes::new(CLAUDE_OAUTH.as_bytes().to_vec()),
                label: "personal".into(),
            }],
        };
        let set = RedactionSet::from_injection(&injection);
        let said = "cannot refresh sk-ant-ort01-REFRESH-0123456789 (access sk-ant-oat01-ACCESS-0123456789, nested-string-long-enough) with sk-live-api";
        assert_eq!(
            set.redact_all(said),
            "cannot refresh [REDACTED:personal] (access [REDACTED:personal], [REDACTED:personal]) with [REDACTED:api]"
        );
        // Short strings of the document and its keys are ordinary words.
        assert_eq!(
            set.redact_all("max user:inference accessToken"),
            "max user:inference accessToken"
        );
    }

    #[test]
    fn short_values_and_broken_documents_follow_the_rule() {
        let mut set = RedactionSet::new();
        set.add("tiny", b"abc");
        assert!(set.is_empty(), "shorter than {MIN_REDACTED_LEN} bytes");
        // Not valid JSON as a whole: only the value itself, none of its strings alone.
        set.add(
            "broken",
            br#"{"token":"sk-a-long-token-0123456789"} trailing"#,
        );
        assert_eq!(
            set.redact_all("sk-a-long-token-0123456789"),
            "sk-a-long-token-0123456789"
        );
        // A string with escapes is matched as the sandbox sees it, unescaped.
        set.add("escaped", br#"{"t":"sk-ABC-escaped-token"}"#);
        assert_eq!(set.redact_all("sk-ABC-escaped-token"), "[REDACTED:escaped]");
    }

    #[test]
    fn document_strings_walks_every_value_but_no_key() {
        let found: Vec<String> = document_strings(CLAUDE_OAUTH.as_bytes())
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            found,
            [
                "sk-ant-oat01-ACCESS-0123456789",
                "sk-ant-ort01-REFRESH-0123456789",
                "nested-string-long-enough"
            ]
        );
        assert!(document_strings(b"[1, 2").is_empty());
        assert!(document_strings(br#"{"a":"0123456789abcdef"}{}"#).is_empty());
    }

    proptest! {
        /// For any values, input and chunking: streaming equals one-shot, and the output never
        /// contains a value. The alphabet is tiny so values overlap and repeat a lot; labels use
        /// letters that are not in it, so a replacement can never spell a value.
        #[test]
        fn any_chunking_equals_one_shot(
            values in proptest::collection::vec("[abc]{1,5}", 1..4),
            input in "[abc]{0,60}",
            cuts in proptest::collection::vec(0usize..61, 0..8),
        ) {
            let r = Redactor::new(
                values.iter().enumerate().map(|(i, v)| (format!("K{i}"), v.as_bytes().to_vec())).collect(),
            );
            let input = input.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut prev = 0;
            for c in cuts {
                chunks.push(&input[prev..c]);
                prev = c;
            }
            chunks.push(&input[prev..]);

            let one_shot = r.redact(input);
            prop_assert_eq!(streamed(&r, &chunks), one_shot.clone());
            for v in &values {
                prop_assert!(!contains(&one_shot, v.as_bytes()), "{:?} leaked in {:?}", v, String::from_utf8_lossy(&one_shot));
            }
        }
    }
}
