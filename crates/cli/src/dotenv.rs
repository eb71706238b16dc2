//! `.env` parsing for `amika secret push --from-file` (DESIGN §9).
//!
//! Deliberately literal, so what is stored is exactly what the file says: blank lines and lines
//! whose first non-space character is `#` are skipped; each other line splits at its first `=`;
//! the key is trimmed; the value is kept verbatim (no quote stripping, no inline comments, no
//! `$VAR` expansion) except for a trailing `\r`; later duplicates win. A line without `=` or with
//! an empty key is an error naming the file and the 1-based line number.
//!
//! This is what the public Amika CLI does too. Since other tools strip quotes and comments,
//! [`warnings`] points at the lines where the two readings differ (a value in quotes, a value
//! with ` #` in it) and at keys set twice, by file and line, never quoting a value.

use std::collections::BTreeMap;
use std::fmt;

/// A malformed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvError {
    pub file: String,
    pub line: usize,
    pub problem: &'static str,
}

impl fmt::Display for DotenvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.problem)
    }
}

impl std::error::Error for DotenvError {}

/// A line this parser reads differently from shells and other `.env` readers, or a key set
/// twice. Its text names the file, line and key, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvWarning {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for DotenvWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// The `KEY=VALUE` lines of `content`: (1-based line number, trimmed key, verbatim value).
fn entries<'a>(
    file: &'a str,
    content: &'a str,
) -> impl Iterator<Item = Result<(usize, &'a str, &'a str), DotenvError>> + 'a {
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    content
        .split('\n')
        .enumerate()
        .filter_map(move |(index, raw)| {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                return None;
            }
            let error = |problem| DotenvError {
                file: file.to_string(),
                line: index + 1,
                problem,
            };
            let Some((key, value)) = line.split_once('=') else {
                return Some(Err(error("expected KEY=VALUE")));
            };
            let key = key.trim();
            if key.is_empty() {
                return Some(Err(error("expected KEY=VALUE, found an empty key")));
            }
            Some(Ok((index + 1, key, value)))
        })
}

/// Parses `content`, read from `file` (used in error messages only).
pub fn parse(file: &str, content: &str) -> Result<BTreeMap<String, String>, DotenvError> {
    let mut map = BTreeMap::new();
    for entry in entries(file, content) {
        let (_, key, value) = entry?;
        map.insert(key.to_string(), value.to_string());
    }
    Ok(map)
}

/// Whether `value`, trimmed, starts or ends with a quote, as a shell-style value in quotes does.
fn looks_quoted(value: &str) -> bool {
    let v = value.trim();
    v.starts_with(['"', '\'', '`']) || v.ends_with(['"', '\'', '`'])
}

/// Whether `value` holds what other readers take for an inline comment: `#` after a space.
fn has_inline_comment(value: &str) -> bool {
    value.contains(" #") || value.contains("\t#")
}

/// The lines of a well-formed `content` worth a warning (see the module doc), in line order.
/// Lines that [`parse`] rejects are not looked at.
pub fn warnings(file: &str, content: &str) -> Vec<DotenvWarning> {
    let mut found = Vec::new();
    let mut first_line: BTreeMap<&str, usize> = BTreeMap::new();
    for (line, key, value) in entries(file, content).flatten() {
        let mut warn = |message: String| {
            found.push(DotenvWarning {
                file: file.to_string(),
                line,
                message,
            })
        };
        if looks_quoted(value) {
            warn(format!(
                "the value of {key} is in quotes: they are kept as part of the value \
                 (values are taken verbatim)"
            ));
        }
        if has_inline_comment(value) {
            warn(format!(
                "the value of {key} contains ' #': it is kept as part of the value, not read \
                 as a comment (values are taken verbatim)"
            ));
        }
        if let Some(first) = first_line.insert(key, line) {
            warn(format!(
                "{key} is set on line {first} and again on line {line}: the value of line \
                 {line} is used"
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(content: &str) -> BTreeMap<String, String> {
        parse(".env", content).unwrap()
    }

    fn pairs(map: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
        map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn blank_and_comment_lines_are_skipped() {
        let map = ok("\n   \n# comment\n   # indented comment\nA=1\n\t\nB=2");
        assert_eq!(pairs(&map), vec![("A", "1"), ("B", "2")]);
    }

    #[test]
    fn splits_at_the_first_equals_and_keeps_the_value_verbatim() {
        let map = ok("URL=postgres://u:p@h/db?x=1\nQ=\"quoted\"\nC=v # not a comment\nE=$HOME\nS=  padded  \n");
        assert_eq!(map["URL"], "postgres://u:p@h/db?x=1");
        assert_eq!(map["Q"], "\"quoted\"");
        assert_eq!(map["C"], "v # not a comment");
        assert_eq!(map["E"], "$HOME");
        assert_eq!(map["S"], "  padded  ");
    }

    #[test]
    fn keys_are_trimmed() {
        assert_eq!(pairs(&ok("  KEY  =v")), vec![("KEY", "v")]);
    }

    #[test]
    fn trailing_carriage_return_is_stripped() {
        assert_eq!(pairs(&ok("A=1\r\nB=2\r")), vec![("A", "1"), ("B", "2")]);
    }

    #[test]
    fn empty_values_parse_as_empty() {
        assert_eq!(pairs(&ok("A=")), vec![("A", "")]);
    }

    #[test]
    fn later_duplicates_win() {
        assert_eq!(pairs(&ok("A=1\nA=2\n")), vec![("A", "2")]);
    }

    #[test]
    fn a_leading_bom_is_ignored() {
        assert_eq!(pairs(&ok("\u{feff}A=1")), vec![("A", "1")]);
    }

    #[test]
    fn a_line_without_equals_names_file_and_line() {
        let err = parse("config/.env", "A=1\n\n# c\nNOPE\n").unwrap_err();
        assert_eq!(err.to_string(), "config/.env:4: expected KEY=VALUE");
    }

    #[test]
    fn an_empty_key_names_file_and_line() {
        let err = parse(".env", "A=1\n  =value\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(
            err.to_string().starts_with(".env:2: expected KEY=VALUE"),
            "{err}"
        );
    }

    fn messages(content: &str) -> Vec<String> {
        warnings("app.env", content)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_quoted_value_is_warned_about_by_line_without_its_value() {
        let got = messages("A=\"secret-one\"\nB= 'secret-two' \nC=plain\nD=\"a\" 'b'\nE=it's\n");
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[0].starts_with("app.env:1: the value of A is in quotes"),
            "{got:?}"
        );
        assert!(
            got[1].starts_with("app.env:2: the value of B is in quotes"),
            "{got:?}"
        );
        assert!(
            got[2].starts_with("app.env:4: the value of D is in quotes"),
            "{got:?}"
        );
        assert!(!got.concat().contains("secret-"), "{got:?}");
    }

    #[test]
    fn an_inline_comment_is_warned_about() {
        let got = messages("A=v # note\nB=v\t#x\nC=a#b\nD=#all\n");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].starts_with("app.env:1: the value of A contains ' #'"),
            "{got:?}"
        );
        assert!(got[1].starts_with("app.env:2: the value of B"), "{got:?}");
    }

    #[test]
    fn a_duplicate_key_names_both_lines() {
        let got = messages("A=1\nB=2\n\n  A  =3\n");
        assert_eq!(
            got,
            ["app.env:4: A is set on line 1 and again on line 4: the value of line 4 is used"]
        );
    }

    #[test]
    fn a_plain_file_has_no_warnings() {
        assert!(messages("# c\nURL=postgres://u:p@h/db?x=1#frag\nK=v\n").is_empty());
    }

    fn key() -> impl Strategy<Value = String> {
        "[A-Za-z_][A-Za-z0-9_]{0,12}"
    }

    fn value() -> impl Strategy<Value = String> {
        // Anything but line breaks; leading `#`, spaces, `=` and quotes included.
        "[^\n\r]{0,30}"
    }

    proptest! {
        #[test]
        fn writing_lines_and_parsing_gives_the_map_back(
            map in proptest::collection::btree_map(key(), value(), 0..12),
            crlf in any::<bool>(),
            noise in proptest::collection::vec(prop_oneof![Just(""), Just("   "), Just("# c=1"), Just("  #x")], 0..12),
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            let mut noise = noise.into_iter();
            for (k, v) in &map {
                if let Some(n) = noise.next() {
                    text.push_str(n);
                    text.push_str(eol);
                }
                text.push_str(&format!("{k}={v}{eol}"));
            }
            prop_assert_eq!(parse("p.env", &text).unwrap(), map);
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,200}") {
            let _ = parse("any", &text);
        }
    }
}
