//! Reading a streamed agent send's server-sent events in tests, as JSON values.

use serde_json::{json, Value};

/// The events of an SSE body: each one's data as JSON, checked to carry its `event:` name.
pub fn events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter(|block| block.lines().any(|l| l.starts_with("data:")))
        .map(|block| {
            let name = block
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_else(|| panic!("no event name in {block:?}"));
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            let event: Value = serde_json::from_str(&data).unwrap();
            assert_eq!(event["event"], json!(name), "{block}");
            event
        })
        .collect()
}

/// `status:<state>`, `delta:<kind>`, `done`, `error`: the order of a stream at a glance.
pub fn shape(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e["event"].as_str().unwrap() {
            "status" => format!("status:{}", e["state"].as_str().unwrap()),
            "delta" => format!("delta:{}", e["kind"].as_str().unwrap()),
            other => other.to_string(),
        })
        .collect()
}

/// The text deltas, joined.
pub fn streamed_text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["event"] == "delta" && e["kind"] == "text")
        .map(|e| e["text"].as_str().unwrap())
        .collect()
}
