//! The recognition of an unreachable provider, on what the pinned CLIs really print in a
//! sandbox without a network (`offline_outputs/`, see its README).

use super::*;

const CLAUDE: &str = include_str!("offline_outputs/claude.stdout");
const CLAUDE_STREAM: &str = include_str!("offline_outputs/claude-stream.stdout");
const CODEX_KEY_OUT: &str = include_str!("offline_outputs/codex-api-key.stdout");
const CODEX_KEY_ERR: &str = include_str!("offline_outputs/codex-api-key.stderr");
const CODEX_CHATGPT_OUT: &str = include_str!("offline_outputs/codex-chatgpt.stdout");
const CODEX_CHATGPT_ERR: &str = include_str!("offline_outputs/codex-chatgpt.stderr");

#[test]
fn claude_without_a_network_is_unreachable_by_its_result() {
    let found = find(CLAUDE, "").expect("claude's connection_failed result");
    assert_eq!(
        found,
        Unreachable {
            hosts: vec![],
            last_error:
                "API Error: Can't reach the API server — check your internet or DNS (EAI_AGAIN)"
                    .into(),
        }
    );
    // Its structured kind alone is enough, whatever the words.
    let reworded = r#"{"type":"result","is_error":true,"api_error":"connection_failed","result":"API Error: something new"}"#;
    assert_eq!(
        find(reworded, "").unwrap().last_error,
        "API Error: something new"
    );
}

#[test]
fn claude_streaming_retries_without_an_answer_are_unreachable() {
    let found = find(CLAUDE_STREAM, "").unwrap();
    assert!(
        found.last_error.starts_with("API Error: Can't reach"),
        "{found:?}"
    );
    // Killed while it was still retrying: its retry events say enough.
    let so_far: String = CLAUDE_STREAM
        .lines()
        .take(3)
        .map(|l| format!("{l}\n"))
        .collect();
    let found = find(&so_far, "").unwrap();
    assert_eq!(found.last_error, "API request attempt 2 of 2 got no answer");
    // A retry that did get an answer (an overloaded API) is not a connection failure.
    let overloaded = r#"{"type":"system","subtype":"api_retry","attempt":1,"max_retries":10,"retry_delay_ms":500,"error_status":529,"error":"overloaded"}"#;
    assert_eq!(find(overloaded, ""), None);
}

#[test]
fn codex_with_an_api_key_is_unreachable_by_its_events() {
    let found = find(CODEX_KEY_OUT, CODEX_KEY_ERR).unwrap();
    assert_eq!(
        found.last_error,
        "Reconnecting... waiting for network (Connection failed: error sending request)"
    );
    assert!(found.hosts.is_empty(), "{found:?}");
    // What a 30 s deadline had seen: the first reconnects.
    let so_far: String = CODEX_KEY_OUT
        .lines()
        .take(3)
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        find(&so_far, "").unwrap().last_error,
        "Reconnecting... 2/5 (stream disconnected before completion: failed to lookup address information: Try again)"
    );
}

#[test]
fn codex_stopped_before_its_first_reconnect_is_unreachable_by_its_first_log_lines() {
    // What a loaded machine's 45 s deadline may have seen (CI did): no event yet, only the
    // timed-out fetch of its models list.
    let so_far: String = CODEX_KEY_ERR
        .lines()
        .take(3)
        .map(|l| format!("{l}\n"))
        .collect();
    let found = find("", &so_far).unwrap();
    assert_eq!(
        found.last_error,
        "codex_models_manager::manager: failed to refresh available models: request timed out"
    );
    assert!(found.hosts.is_empty(), "{found:?}");
    // Its start alone is no evidence.
    assert_eq!(find("", "Reading additional input from stdin...\n"), None);
}

#[test]
fn codex_with_chatgpt_is_unreachable_by_its_log_which_names_the_host() {
    // Its own events only say "workspace routing discovery failed"; its log says why.
    assert_eq!(find(CODEX_CHATGPT_OUT, ""), None);
    let found = find(CODEX_CHATGPT_OUT, CODEX_CHATGPT_ERR).unwrap();
    assert_eq!(found.hosts, ["chatgpt.com"]);
    assert!(
        found
            .last_error
            .starts_with("rmcp::transport::worker: worker quit with fatal"),
        "the log line without its timestamp and level: {found:?}"
    );
    assert!(found
        .last_error
        .contains("error sending request for url (https://chatgpt.com/"));
}

#[test]
fn hosts_come_from_urls_and_failed_lookups_never_from_a_url_user() {
    let mut hosts = Vec::new();
    hosts_in(
        "getaddrinfo EAI_AGAIN api.anthropic.com; url (https://[REDACTED:k]@proxy.example.net:8080/x) https://chatgpt.com/a https://chatgpt.com/b https://a.io https://b.io",
        &mut hosts,
    );
    assert_eq!(hosts, ["proxy.example.net", "chatgpt.com", "a.io"]);
}

#[test]
fn the_agents_words_and_tool_output_are_not_evidence() {
    // A reply about the user's own server, and a tool's output, in Claude's stream.
    let out = concat!(
        r#"{"type":"assistant","message":{"content":[{"type":"text","text":"The test fails: connection refused on localhost:5432"}]}}"#,
        "\n",
        r#"{"type":"user","message":{"content":[{"type":"tool_result","content":"psql: error: connection refused; ENOTFOUND db"}]}}"#,
        "\n",
        r#"{"type":"result","is_error":true,"subtype":"error_max_turns","result":"max turns"}"#,
    );
    assert_eq!(find(out, ""), None);
    // A Codex command's output is an item too.
    let codex = r#"{"type":"item.completed","item":{"type":"command_execution","aggregated_output":"curl: (6) Could not resolve host: x; Connection refused"}}"#;
    assert_eq!(find(codex, ""), None);
}

#[test]
fn messages_say_what_happened_and_the_network_mode() {
    let found = find(CODEX_CHATGPT_OUT, CODEX_CHATGPT_ERR).unwrap();
    let none = unreachable_message(&found, NetworkMode::None);
    assert!(
        none.starts_with("the agent could not reach its provider (chatgpt.com): this sandbox's network mode is none, which lets no connection out of the sandbox"),
        "{none}"
    );
    let egress = unreachable_message(&find(CLAUDE, "").unwrap(), NetworkMode::Egress);
    assert_eq!(
        egress,
        "the agent could not reach its provider: check that the sandbox (network mode egress) can reach it: \
         the host's DNS, a firewall or a proxy may be in the way. Its last connection error: \
         API Error: Can't reach the API server — check your internet or DNS (EAI_AGAIN)"
    );
    let killed = unreachable_at_deadline_message(30, &found, NetworkMode::None);
    assert!(
        killed.starts_with("the agent did not finish within 30s and was stopped (its processes were killed); until then it could not reach its provider (chatgpt.com): this sandbox's network mode is none"),
        "{killed}"
    );
    assert_eq!(timeout_note(NetworkMode::Egress), None);
    assert!(timeout_note(NetworkMode::None)
        .unwrap()
        .contains("network mode is none"));
}

#[test]
fn long_errors_are_cut() {
    let line = format!("curl: ECONNREFUSED {}", "x".repeat(1000));
    let found = find("", &line).unwrap();
    assert_eq!(found.last_error.chars().count(), QUOTED_ERROR_CHARS + 1);
    assert!(found.last_error.ends_with('…'));
}
