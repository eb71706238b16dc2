//! Talking to the person at the terminal: `[y/N]` confirmations and hidden value prompts.
//!
//! Prompts happen only in text mode with a terminal on stdin; everywhere else a command that
//! would need one fails with a message saying which flag to pass instead, so scripts never hang.

use std::io::{BufRead, IsTerminal, Read, Write};

use anyhow::{bail, Context};

use crate::output::OutputFormat;

/// Whether stdin is a terminal a person can answer on.
pub fn stdin_is_tty() -> bool {
    std::io::stdin().is_terminal()
}

/// Whether stderr is a terminal (for progress display).
pub fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// Asks `question [y/N]` on stderr and reads the answer from stdin; only `y`/`yes` agree.
pub fn ask_yes_no(question: &str) -> anyhow::Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer from the terminal")?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Asks `question` on stderr and reads one line from stdin: the answer trimmed, or `default`
/// when it is empty.
pub fn ask_line(question: &str, default: &str) -> anyhow::Result<String> {
    eprint!("{question} ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer from the terminal")?;
    let answer = answer.trim();
    Ok(if answer.is_empty() { default } else { answer }.to_string())
}

/// The confirmation rule for destructive or bulk-writing commands (DESIGN §9): `--yes` proceeds;
/// JSON mode or a non-terminal stdin without it is an error naming the flag; otherwise ask, and
/// a "no" aborts with an error (nothing was changed).
///
/// `action` completes "refusing to ..." (e.g. "push", "delete sandbox \"x\"").
pub fn confirm(
    output: OutputFormat,
    yes: bool,
    flag: &str,
    action: &str,
    question: &str,
) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    ensure_can_confirm(output, yes, flag, action)?;
    if ask_yes_no(question)? {
        Ok(())
    } else {
        bail!("aborted: nothing was changed")
    }
}

/// Fails early (before any request) when [`confirm`] would refuse: no `--yes` and either JSON
/// mode or no terminal to ask on.
pub fn ensure_can_confirm(
    output: OutputFormat,
    yes: bool,
    flag: &str,
    action: &str,
) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if output.is_json() {
        bail!("refusing to {action} without confirmation in JSON mode: pass {flag}");
    }
    if !stdin_is_tty() {
        bail!("refusing to {action} without confirmation: pass {flag}");
    }
    Ok(())
}

/// A value typed without echo (rpassword reads the terminal directly).
pub fn hidden(prompt: &str) -> anyhow::Result<String> {
    let value = rpassword::prompt_password(prompt).context("cannot read a hidden value")?;
    Ok(value)
}

/// Whether a hidden prompt may be shown: text mode with a terminal on stdin.
pub fn can_prompt(output: OutputFormat) -> bool {
    !output.is_json() && stdin_is_tty()
}

/// All of stdin (for `--value -` and `--api-key -`).
pub fn read_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read stdin (is it UTF-8 text?)")?;
    Ok(text)
}

/// Removes one trailing line ending (`\n` or `\r\n`), as left by `echo` or an editor.
pub fn strip_one_newline(value: &str) -> &str {
    value
        .strip_suffix("\r\n")
        .or_else(|| value.strip_suffix('\n'))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_newline_is_stripped() {
        assert_eq!(strip_one_newline("k\n"), "k");
        assert_eq!(strip_one_newline("k\r\n"), "k");
        assert_eq!(strip_one_newline("k\n\n"), "k\n");
        assert_eq!(strip_one_newline("k"), "k");
    }

    #[test]
    fn json_mode_without_yes_refuses_and_names_the_flag() {
        let err = confirm(OutputFormat::Json, false, "--yes", "push", "Push?").unwrap_err();
        assert_eq!(
            err.to_string(),
            "refusing to push without confirmation in JSON mode: pass --yes"
        );
        assert!(confirm(OutputFormat::Json, true, "--yes", "push", "Push?").is_ok());
    }
}
