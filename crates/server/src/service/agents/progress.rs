//! An agent's progress while it runs: its stdout, as it arrives, turned into the `delta` events
//! of a streamed send. Claude's `--output-format stream-json` lines (`stream_event` text and
//! thinking deltas, `assistant` messages with tool calls, `user` messages with tool results) and
//! Codex's `--json` event lines (`item.started` / `item.completed` of messages, reasoning,
//! commands, file changes, tool calls).
//!
//! The bytes are redacted as a stream first (a value cut across chunks is still caught), then
//! cut into lines and parsed; every string taken out of a line is redacted once more, for
//! values that only appear once JSON escapes are undone. Lines that are not events are skipped:
//! the final answer is [`super::interpret`]'s, from the whole output.

use std::collections::HashMap;

use amika_types::{AgentDeltaKind, AgentKind, AgentStreamDelta};
use serde_json::Value;

use crate::service::redaction::{OutputFilter, RedactionSet};

/// Most of a tool result or a tool's input summary a delta carries.
const MAX_DELTA_BYTES: usize = 4096;

/// A line longer than this is not an event worth streaming; it is skipped.
const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Turns an agent's stdout into deltas, line by line.
pub(super) struct Progress<'a> {
    kind: AgentKind,
    filter: OutputFilter,
    redactions: &'a RedactionSet,
    line: String,
    /// Skipping the rest of a line that grew past [`MAX_LINE_BYTES`].
    skipping: bool,
    /// Claude sent text deltas (`--include-partial-messages`): its whole messages repeat them.
    partial: bool,
    /// Claude's tool calls by id, for naming their results.
    tools: HashMap<String, String>,
}

impl<'a> Progress<'a> {
    pub(super) fn new(kind: AgentKind, redactions: &'a RedactionSet) -> Self {
        Progress {
            kind,
            filter: redactions.filter(),
            redactions,
            line: String::new(),
            skipping: false,
            partial: false,
            tools: HashMap::new(),
        }
    }

    /// The deltas of the lines this chunk completes.
    pub(super) fn push(&mut self, chunk: &[u8]) -> Vec<AgentStreamDelta> {
        let text = self.filter.push(chunk);
        self.push_text(&text)
    }

    /// The deltas of the lines this redacted text completes.
    fn push_text(&mut self, text: &str) -> Vec<AgentStreamDelta> {
        let mut deltas = Vec::new();
        let mut rest = text;
        while let Some(end) = rest.find('\n') {
            self.line.push_str(&rest[..end]);
            rest = &rest[end + 1..];
            let line = std::mem::take(&mut self.line);
            if !std::mem::take(&mut self.skipping) {
                deltas.extend(self.line_deltas(&line));
            }
        }
        if !self.skipping {
            self.line.push_str(rest);
            if self.line.len() > MAX_LINE_BYTES {
                self.line.clear();
                self.skipping = true;
            }
        }
        deltas
    }

    /// The deltas of a last line without its newline.
    pub(super) fn finish(mut self) -> Vec<AgentStreamDelta> {
        let filter = std::mem::replace(&mut self.filter, self.redactions.filter());
        let mut deltas = self.push_text(&filter.finish());
        let line = std::mem::take(&mut self.line);
        if !self.skipping {
            deltas.extend(self.line_deltas(&line));
        }
        deltas
    }

    fn line_deltas(&mut self, line: &str) -> Vec<AgentStreamDelta> {
        let Ok(event) = serde_json::from_str::<Value>(line.trim()) else {
            return Vec::new();
        };
        let raw = match self.kind {
            AgentKind::Claude => self.claude(&event),
            AgentKind::Codex => codex(&event),
            AgentKind::Github => Vec::new(),
        };
        raw.into_iter()
            .filter(|d| !d.text.is_empty() || d.kind == AgentDeltaKind::ToolCall)
            .map(|d| AgentStreamDelta {
                text: self.redactions.redact_all(&d.text),
                tool: d.tool.map(|t| self.redactions.redact_all(&t)),
                kind: d.kind,
            })
            .collect()
    }

    /// One line of `claude -p --output-format stream-json --verbose`.
    fn claude(&mut self, event: &Value) -> Vec<AgentStreamDelta> {
        match event["type"].as_str() {
            Some("stream_event") => {
                let delta = &event["event"]["delta"];
                let piece = match delta["type"].as_str() {
                    Some("text_delta") => (AgentDeltaKind::Text, &delta["text"]),
                    Some("thinking_delta") => (AgentDeltaKind::Thinking, &delta["thinking"]),
                    _ => return Vec::new(),
                };
                self.partial = true;
                piece
                    .1
                    .as_str()
                    .map(|t| vec![delta_of(piece.0, t, None)])
                    .unwrap_or_default()
            }
            Some("assistant") => blocks(event)
                .filter_map(|b| match b["type"].as_str()? {
                    "text" if !self.partial => {
                        Some(delta_of(AgentDeltaKind::Text, b["text"].as_str()?, None))
                    }
                    "thinking" if !self.partial => Some(delta_of(
                        AgentDeltaKind::Thinking,
                        b["thinking"].as_str()?,
                        None,
                    )),
                    "tool_use" => {
                        let name = b["name"].as_str().unwrap_or("tool").to_string();
                        if let Some(id) = b["id"].as_str() {
                            self.tools.insert(id.to_string(), name.clone());
                        }
                        Some(delta_of(
                            AgentDeltaKind::ToolCall,
                            &input_summary(&b["input"]),
                            Some(name),
                        ))
                    }
                    _ => None,
                })
                .collect(),
            Some("user") => blocks(event)
                .filter(|b| b["type"] == "tool_result")
                .map(|b| {
                    let tool = b["tool_use_id"]
                        .as_str()
                        .and_then(|id| self.tools.get(id).cloned());
                    delta_of(
                        AgentDeltaKind::ToolResult,
                        &content_text(&b["content"]),
                        tool,
                    )
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The content blocks of a Claude message event.
fn blocks(event: &Value) -> impl Iterator<Item = &Value> {
    event["message"]["content"].as_array().into_iter().flatten()
}

/// A tool result's content: a string, or text blocks.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// What a tool was asked: its command, path, pattern, URL or query when it has one, else its
/// input as compact JSON.
fn input_summary(input: &Value) -> String {
    for key in ["command", "file_path", "path", "pattern", "url", "query"] {
        if let Some(s) = input[key].as_str() {
            return s.to_string();
        }
    }
    match input {
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

/// A delta, its text cut to [`MAX_DELTA_BYTES`] unless it is part of the reply (`text` and
/// `thinking` pieces are small; a message whole is the reply).
fn delta_of(kind: AgentDeltaKind, text: &str, tool: Option<String>) -> AgentStreamDelta {
    let text = match kind {
        AgentDeltaKind::ToolCall | AgentDeltaKind::ToolResult => cut(text),
        _ => text.to_string(),
    };
    AgentStreamDelta { kind, text, tool }
}

fn cut(text: &str) -> String {
    if text.len() <= MAX_DELTA_BYTES {
        return text.to_string();
    }
    let mut end = MAX_DELTA_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// One line of `codex exec --json`: the current item events, and the earlier `msg` form.
fn codex(event: &Value) -> Vec<AgentStreamDelta> {
    let item = &event["item"];
    let delta = match (event["type"].as_str(), item["type"].as_str()) {
        (Some("item.started"), Some("command_execution")) => delta_of(
            AgentDeltaKind::ToolCall,
            item["command"].as_str().unwrap_or(""),
            Some("shell".into()),
        ),
        (Some("item.started"), Some("mcp_tool_call")) => delta_of(
            AgentDeltaKind::ToolCall,
            &input_summary(&item["arguments"]),
            Some(format!(
                "{}.{}",
                item["server"].as_str().unwrap_or("mcp"),
                item["tool"].as_str().unwrap_or("tool")
            )),
        ),
        (Some("item.started"), Some("web_search")) => delta_of(
            AgentDeltaKind::ToolCall,
            item["query"].as_str().unwrap_or(""),
            Some("web_search".into()),
        ),
        (Some("item.completed"), Some("agent_message")) => delta_of(
            AgentDeltaKind::Text,
            item["text"].as_str().unwrap_or(""),
            None,
        ),
        (Some("item.completed"), Some("reasoning")) => delta_of(
            AgentDeltaKind::Thinking,
            item["text"].as_str().unwrap_or(""),
            None,
        ),
        (Some("item.completed"), Some("command_execution")) => delta_of(
            AgentDeltaKind::ToolResult,
            item["aggregated_output"].as_str().unwrap_or(""),
            Some("shell".into()),
        ),
        (Some("item.completed"), Some("file_change")) => delta_of(
            AgentDeltaKind::ToolCall,
            &file_changes(&item["changes"]),
            Some("apply_patch".into()),
        ),
        _ => return codex_msg(&event["msg"]),
    };
    vec![delta]
}

/// `update src/lib.rs, add src/new.rs`.
fn file_changes(changes: &Value) -> String {
    changes
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{} {}",
                c["kind"].as_str().unwrap_or("change"),
                c["path"].as_str().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The earlier Codex format: `{"msg": {"type": ...}}`.
fn codex_msg(msg: &Value) -> Vec<AgentStreamDelta> {
    let delta = match msg["type"].as_str() {
        Some("agent_message") => delta_of(
            AgentDeltaKind::Text,
            msg["message"].as_str().unwrap_or(""),
            None,
        ),
        Some("agent_reasoning") => delta_of(
            AgentDeltaKind::Thinking,
            msg["text"].as_str().unwrap_or(""),
            None,
        ),
        Some("exec_command_begin") => {
            let command = match &msg["command"] {
                Value::Array(words) => words
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
                other => other.as_str().unwrap_or("").to_string(),
            };
            delta_of(AgentDeltaKind::ToolCall, &command, Some("shell".into()))
        }
        Some("exec_command_end") => delta_of(
            AgentDeltaKind::ToolResult,
            msg["aggregated_output"]
                .as_str()
                .or_else(|| msg["stdout"].as_str())
                .unwrap_or(""),
            Some("shell".into()),
        ),
        _ => return Vec::new(),
    };
    vec![delta]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk-ant-SECRET-0123456789";

    fn redactions() -> RedactionSet {
        let mut set = RedactionSet::new();
        set.add("ANTHROPIC_API_KEY", SECRET.as_bytes());
        set
    }

    fn deltas(
        kind: AgentKind,
        output: &str,
        chunk: usize,
    ) -> Vec<(AgentDeltaKind, String, Option<String>)> {
        let set = redactions();
        let mut p = Progress::new(kind, &set);
        let mut all = Vec::new();
        for piece in output.as_bytes().chunks(chunk) {
            all.extend(p.push(piece));
        }
        all.extend(p.finish());
        all.into_iter().map(|d| (d.kind, d.text, d.tool)).collect()
    }

    fn claude_run() -> String {
        [
            r#"{"type":"system","subtype":"init","session_id":"s1","tools":["Bash"]}"#.to_string(),
            r#"{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me "}}}"#.to_string(),
            r#"{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"look."}}}"#.to_string(),
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Let me look."}]}}"#.to_string(),
            format!(r#"{{"type":"assistant","message":{{"content":[{{"type":"tool_use","id":"t1","name":"Bash","input":{{"command":"echo {SECRET}"}}}}]}}}}"#),
            format!(r#"{{"type":"user","message":{{"content":[{{"type":"tool_result","tool_use_id":"t1","content":[{{"type":"text","text":"{SECRET}\nok"}}]}}]}}}}"#),
            r#"{"type":"result","subtype":"success","result":"Let me look.","session_id":"s1"}"#.to_string(),
        ]
        .join("\n")
    }

    #[test]
    fn claude_stream_json_gives_text_deltas_tool_calls_and_results_redacted_whatever_the_chunks() {
        let want = vec![
            (AgentDeltaKind::Text, "Let me ".to_string(), None),
            (AgentDeltaKind::Text, "look.".to_string(), None),
            (
                AgentDeltaKind::ToolCall,
                "echo [REDACTED:ANTHROPIC_API_KEY]".to_string(),
                Some("Bash".to_string()),
            ),
            (
                AgentDeltaKind::ToolResult,
                "[REDACTED:ANTHROPIC_API_KEY]\nok".to_string(),
                Some("Bash".to_string()),
            ),
        ];
        let run = claude_run();
        // Every chunk size, including ones that cut the value and the lines anywhere.
        for chunk in [1, 3, 7, 64, run.len()] {
            assert_eq!(
                deltas(AgentKind::Claude, &run, chunk),
                want,
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn claude_without_partial_messages_streams_whole_messages() {
        let run = r#"{"type":"assistant","message":{"content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"Done."}]}}"#;
        assert_eq!(
            deltas(AgentKind::Claude, run, 5),
            [
                (AgentDeltaKind::Thinking, "hmm".to_string(), None),
                (AgentDeltaKind::Text, "Done.".to_string(), None)
            ]
        );
    }

    #[test]
    fn codex_items_become_deltas_and_escaped_values_are_still_redacted() {
        // The value split by a JSON escape only appears once the string is parsed.
        let escaped = SECRET.replace("SECRET", "SEC\\u0052ET");
        let run = [
            r#"{"type":"thread.started","thread_id":"th1"}"#.to_string(),
            r#"{"type":"item.started","item":{"id":"i1","type":"command_execution","command":"bash -lc ls","status":"in_progress"}}"#.to_string(),
            format!(r#"{{"type":"item.completed","item":{{"id":"i1","type":"command_execution","command":"bash -lc ls","aggregated_output":"{escaped}\n","exit_code":0}}}}"#),
            r#"{"type":"item.completed","item":{"id":"i2","type":"file_change","changes":[{"path":"src/a.rs","kind":"update"},{"path":"b.rs","kind":"add"}]}}"#.to_string(),
            r#"{"type":"item.completed","item":{"id":"i3","type":"reasoning","text":"thinking"}}"#.to_string(),
            r#"{"type":"item.completed","item":{"id":"i4","type":"agent_message","text":"All done."}}"#.to_string(),
            r#"{"type":"turn.completed","usage":{}}"#.to_string(),
            "not json at all".to_string(),
        ]
        .join("\n");
        let shell = Some("shell".to_string());
        assert_eq!(
            deltas(AgentKind::Codex, &run, 11),
            [
                (
                    AgentDeltaKind::ToolCall,
                    "bash -lc ls".to_string(),
                    shell.clone()
                ),
                (
                    AgentDeltaKind::ToolResult,
                    "[REDACTED:ANTHROPIC_API_KEY]\n".to_string(),
                    shell
                ),
                (
                    AgentDeltaKind::ToolCall,
                    "update src/a.rs, add b.rs".to_string(),
                    Some("apply_patch".to_string())
                ),
                (AgentDeltaKind::Thinking, "thinking".to_string(), None),
                (AgentDeltaKind::Text, "All done.".to_string(), None),
            ]
        );
    }

    #[test]
    fn long_tool_results_are_cut_and_overlong_lines_skipped() {
        let big = "x".repeat(10_000);
        let line = format!(
            r#"{{"type":"item.completed","item":{{"type":"command_execution","aggregated_output":"{big}"}}}}"#
        );
        let got = deltas(AgentKind::Codex, &line, 4096);
        assert_eq!(got.len(), 1);
        assert!(got[0].1.len() <= MAX_DELTA_BYTES + '…'.len_utf8());
        assert!(got[0].1.ends_with('…'));
        let huge = format!(
            "{}\n{}",
            "y".repeat(MAX_LINE_BYTES + 10),
            r#"{"type":"item.completed","item":{"type":"agent_message","text":"after"}}"#
        );
        assert_eq!(
            deltas(AgentKind::Codex, &huge, 65536),
            [(AgentDeltaKind::Text, "after".to_string(), None)]
        );
    }
}
