//! How the CLI shows things: the `-o text|json` switch, value masking, aligned tables and JSON.
//!
//! Every preview of a secret value goes through [`mask`]; the only commands that print a value in
//! clear are `reveal` and the ones that hand out a freshly created API key once.

use std::io::Write;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The global `-o/--output` format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text and tables.
    Text,
    /// Only JSON on stdout; never prompts.
    Json,
}

impl OutputFormat {
    pub fn is_json(self) -> bool {
        self == OutputFormat::Json
    }
}

/// Masks a secret value for previews (DESIGN §9): up to 12 characters → all `*`; longer → the
/// first 4 characters, a `*` for every character in between, the last 4. Characters, not bytes.
/// Control characters among the shown ones become spaces so a preview stays on one line.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    if n <= 12 {
        return "*".repeat(n);
    }
    let shown = |c: &char| if c.is_control() { ' ' } else { *c };
    let mut out = String::with_capacity(n + 8);
    out.extend(chars[..4].iter().map(shown));
    out.push_str(&"*".repeat(n - 8));
    out.extend(chars[n - 4..].iter().map(shown));
    out
}

/// [`mask`] for a table cell: a very long value (an OAuth document is kilobytes) keeps its first
/// and last 4 characters but at most `MAX_STARS` stars, so the table stays readable. It shows no
/// more than `mask` does.
pub fn mask_for_table(value: &str) -> String {
    const MAX_STARS: usize = 24;
    let masked = mask(value);
    let n = masked.chars().count();
    if n <= 8 + MAX_STARS {
        return masked;
    }
    let chars: Vec<char> = masked.chars().collect();
    let mut out: String = chars[..4].iter().collect();
    out.push_str(&"*".repeat(MAX_STARS));
    out.extend(&chars[n - 4..]);
    out.push_str(&format!(" ({} chars)", value.chars().count()));
    out
}

/// Writes one line on stdout, returning write errors (a closed pipe, as with `| head`) instead
/// of panicking the way `println!` does; `main` ends quietly on a broken pipe.
pub fn write_stdout(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_fmt(args)?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}

/// `println!` that returns its write error with `?` (see [`write_stdout`]).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!(""))?
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))?
    };
}

/// Whether an error is stdout's reader having gone away.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("cannot encode output as JSON")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    stdout.flush()?;
    Ok(())
}

/// A column-aligned text table.
#[derive(Debug)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, columns separated by two spaces, no trailing spaces.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate().take(columns) {
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(cell);
                if i + 1 < columns {
                    let pad = widths[i].saturating_sub(cell.chars().count());
                    text.push_str(&" ".repeat(pad));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table on stdout.
    pub fn print(&self) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(self.render().as_bytes())?;
        stdout.flush()?;
        Ok(())
    }

    /// Prints the table on stderr (previews, which must not mix with JSON on stdout).
    pub fn eprint(&self) {
        eprint!("{}", self.render());
    }
}

/// A list printed a page at a time, as the pages arrive: a table whose column widths are the
/// first page's (grown when a later row needs more), or one JSON array streamed item by item
/// (the same text `print_json` gives for the whole list).
#[derive(Debug)]
pub struct PagedOutput {
    /// `None`: JSON.
    headers: Option<Vec<String>>,
    widths: Vec<usize>,
    printed: usize,
}

impl PagedOutput {
    pub fn table(headers: &[&str]) -> Self {
        PagedOutput {
            headers: Some(headers.iter().map(|h| h.to_string()).collect()),
            widths: headers.iter().map(|h| h.chars().count()).collect(),
            printed: 0,
        }
    }

    pub fn json() -> Self {
        PagedOutput {
            headers: None,
            widths: Vec::new(),
            printed: 0,
        }
    }

    /// Prints one page's items (`cells` gives a table row).
    pub fn page<T: Serialize>(
        &mut self,
        items: &[T],
        cells: impl Fn(&T) -> Vec<String>,
    ) -> anyhow::Result<()> {
        let mut text = String::new();
        match &self.headers {
            None => {
                for item in items {
                    let one = serde_json::to_string_pretty(item)
                        .context("cannot encode output as JSON")?;
                    text.push_str(if self.printed == 0 { "[\n" } else { ",\n" });
                    let indented: Vec<String> = one.lines().map(|l| format!("  {l}")).collect();
                    text.push_str(&indented.join("\n"));
                    self.printed += 1;
                }
            }
            Some(headers) => {
                let rows: Vec<Vec<String>> = items.iter().map(cells).collect();
                for row in &rows {
                    for (w, cell) in self.widths.iter_mut().zip(row) {
                        *w = (*w).max(cell.chars().count());
                    }
                }
                if self.printed == 0 && !rows.is_empty() {
                    text.push_str(&render_line(headers, &self.widths));
                }
                for row in &rows {
                    text.push_str(&render_line(row, &self.widths));
                }
                self.printed += rows.len();
            }
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
        Ok(())
    }

    /// Ends the output (a table with no row still shows its header; JSON closes its array).
    pub fn finish(self) -> anyhow::Result<()> {
        let text = match &self.headers {
            None if self.printed == 0 => "[]\n".to_string(),
            None => "\n]\n".to_string(),
            Some(headers) if self.printed == 0 => render_line(headers, &self.widths),
            Some(_) => String::new(),
        };
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
        Ok(())
    }
}

/// One table line: cells padded to `widths`, two spaces apart, no trailing spaces.
fn render_line(cells: &[String], widths: &[usize]) -> String {
    let columns = widths.len();
    let mut text = String::new();
    for (i, cell) in cells.iter().enumerate().take(columns) {
        if i > 0 {
            text.push_str("  ");
        }
        text.push_str(cell);
        if i + 1 < columns {
            text.push_str(&" ".repeat(widths[i].saturating_sub(cell.chars().count())));
        }
    }
    let mut line = text.trim_end().to_string();
    line.push('\n');
    line
}

/// A timestamp for tables: `2024-05-01 12:34:56` (UTC).
pub fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// An optional cell: `-` when absent or empty.
pub fn or_dash(value: Option<impl ToString>) -> String {
    value
        .map(|v| v.to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_all_stars() {
        assert_eq!(mask(""), "");
        assert_eq!(mask("a"), "*");
        assert_eq!(mask("abcdefghijkl"), "************");
    }

    #[test]
    fn long_values_keep_four_chars_at_each_end() {
        assert_eq!(mask("abcdefghijklm"), "abcd*****jklm");
        assert_eq!(mask("sk-ant-0123456789abcdef"), "sk-a***************cdef");
        assert_eq!(mask("abcdefghijklm").chars().count(), 13);
    }

    #[test]
    fn mask_counts_chars_not_bytes() {
        // 12 two-byte characters: still "short".
        assert_eq!(mask("éééééééééééé"), "************");
        assert_eq!(mask("ééééxxxxxüüüü"), "éééé*****üüüü");
    }

    #[test]
    fn mask_keeps_previews_on_one_line() {
        let masked = mask("{\n  \"claudeAiOauth\": {}\n}\n");
        assert!(!masked.contains('\n'), "{masked:?}");
    }

    #[test]
    fn table_mask_caps_stars_but_shows_nothing_more() {
        let long = format!("abcd{}wxyz", "s".repeat(1000));
        let cell = mask_for_table(&long);
        assert_eq!(cell, format!("abcd{}wxyz (1008 chars)", "*".repeat(24)));
        assert_eq!(mask_for_table("abcdefghijklm"), "abcd*****jklm");
    }

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["NAME", "SCOPE"]);
        t.row(vec!["a-long-name".into(), "user".into()]);
        t.row(vec!["b".into(), "org".into()]);
        assert_eq!(
            t.render(),
            "NAME         SCOPE\na-long-name  user\nb            org\n"
        );
    }

    // Moved from the vault crate, whose unused copy of `mask` is gone.
    #[test]
    fn mask_short_values_are_all_stars_vault_cases() {
        assert_eq!(mask(""), "");
        assert_eq!(mask("a"), "*");
        assert_eq!(mask("abc"), "***");
        assert_eq!(mask("123456789012"), "************");
    }

    #[test]
    fn mask_long_values_keep_four_each_side_vault_cases() {
        assert_eq!(mask("1234567890123"), "1234*****0123");
        assert_eq!(mask("sk-ant-1234567890abcd"), "sk-a*************abcd");
        let m = mask("sk-ant-1234567890abcd");
        assert_eq!(m.len(), "sk-ant-1234567890abcd".len());
    }

    #[test]
    fn mask_counts_chars_not_bytes_vault_cases() {
        // 12 multibyte chars: all stars, one per char.
        assert_eq!(mask("ééééééééééé€"), "************");
        // 14 chars, 4 of them multibyte at the edges.
        assert_eq!(mask("日本語の123456ひらがな"), "日本語の******ひらがな");
        assert_eq!(mask("🔑🔑🔑🔑abcdefghiéééé"), "🔑🔑🔑🔑*********éééé");
    }
}
