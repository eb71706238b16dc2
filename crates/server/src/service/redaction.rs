//! What a sandbox must never echo back: every value injected into it, by label. Output relayed
//! from a sandbox passes through a [`OutputFilter`] per stream, which replaces each value with
//! `[REDACTED:<label>]` (also when split across chunks) and emits whole UTF-8 characters only.

use amika_sandbox::redact::Redactor;

/// Values injected into one sandbox run. Kept in memory only, zeroized on drop; `Debug` shows
/// labels only.
#[derive(Debug, Default)]
pub struct RedactionSet {
    redactor: Redactor,
}

/// Shortest string worth redacting on its own: shorter ones would shred ordinary output.
const MIN_REDACTED_LEN: usize = 4;

impl RedactionSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a value; an OAuth JSON document also adds each long string inside it (tokens are
    /// what a process is likely to print, not the whole document).
    pub fn add(&mut self, label: &str, value: &str) {
        self.push(label, value);
        if value.trim_start().starts_with('{') {
            if let Ok(doc) = serde_json::from_str::<serde_json::Value>(value) {
                let mut strings = Vec::new();
                collect_strings(&doc, &mut strings);
                for s in strings.into_iter().filter(|s| s.len() >= 16) {
                    self.push(label, &s);
                }
            }
        }
    }

    fn push(&mut self, label: &str, value: &str) {
        if value.len() >= MIN_REDACTED_LEN {
            self.redactor.add(label, value.as_bytes());
        }
    }

    /// A filter for one output stream.
    pub fn filter(&self) -> OutputFilter {
        OutputFilter {
            redactor: self.redactor.clone(),
            pending: Vec::new(),
        }
    }

    /// Redact a complete text at once (stored replies, error messages). Values are whole UTF-8
    /// strings, so they match only at character boundaries and the result stays valid UTF-8.
    pub fn redact_all(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.redactor.redact(text.as_bytes())).into_owned()
    }
}

fn collect_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

/// Redacts one stream and cuts it at UTF-8 character boundaries.
pub struct OutputFilter {
    redactor: Redactor,
    /// Redacted bytes that end inside a multi-byte character.
    pending: Vec<u8>,
}

impl std::fmt::Debug for OutputFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutputFilter")
    }
}

impl OutputFilter {
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

    pub fn finish(self) -> String {
        let OutputFilter {
            redactor,
            mut pending,
        } = self;
        pending.extend_from_slice(&redactor.finish());
        String::from_utf8_lossy(&pending).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_split_across_chunks_and_characters_are_redacted() {
        let mut set = RedactionSet::new();
        set.add("db", "postgres://u:pässword@h/db");
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
            r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-AAAABBBBCCCC","expiresAt":1}}"#,
        );
        assert_eq!(
            set.redact_all("token sk-ant-oat01-AAAABBBBCCCC!"),
            "token [REDACTED:personal-oauth]!"
        );
        assert!(!format!("{set:?}").contains("AAAABBBB"));
    }
}
