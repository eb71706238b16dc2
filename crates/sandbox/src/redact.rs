//! Streaming redaction of injected values from output that amika relays out of a sandbox.
//!
//! Output arrives in arbitrary chunks (pipe reads), so a value can be split across two or more
//! chunks. [`Redactor::push`] therefore emits only the bytes whose fate is decided and holds back
//! a tail that could still turn out to be the start of a value; [`Redactor::finish`] flushes it.
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

use zeroize::Zeroizing;

/// Replaces every occurrence of the injected values in a byte stream by `[REDACTED:<label>]`.
///
/// Holds secret values (zeroized on drop, never printed by `Debug`). One `Redactor` per stream:
/// stdout and stderr each need their own, since a value split across them is not "in" either.
#[derive(Clone, Default)]
pub struct Redactor {
    /// (value, replacement), longest value first.
    values: Vec<(Zeroizing<Vec<u8>>, Vec<u8>)>,
    /// Undecided tail of what was pushed: may be the start of a value.
    pending: Zeroizing<Vec<u8>>,
}

impl Redactor {
    /// Build from (label, value) pairs. Empty values are ignored (they would match everywhere);
    /// for equal values the first label wins.
    pub fn new(values: Vec<(String, Vec<u8>)>) -> Self {
        let mut redactor = Redactor::default();
        for (label, value) in values {
            redactor.insert(&label, Zeroizing::new(value));
        }
        redactor
    }

    /// A redactor for everything a sandbox was given: its env values and file contents.
    pub fn from_injection(injection: &crate::Injection) -> Self {
        let mut redactor = Redactor::default();
        for e in &injection.env {
            redactor.add(&e.label, e.value.expose_secret());
        }
        for f in &injection.files {
            redactor.add(&f.label, f.contents.expose_secret());
        }
        redactor
    }

    /// Add one value (copied into a zeroizing buffer), with the same rules as [`Redactor::new`].
    pub fn add(&mut self, label: &str, value: &[u8]) {
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
