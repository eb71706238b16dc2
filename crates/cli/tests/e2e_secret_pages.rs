//! `amika secret list` pages through the server's list (issue 17): with more secrets than one
//! page (500) it shows every one exactly once, in order, as a table and as one JSON array, the
//! same as the server's unpaged answer.

mod common;

use common::{http, ok, ok_json, Server};
use serde_json::{json, Value};

#[test]
fn secret_list_pages_through_every_secret_once() {
    let server = Server::start();
    // 1,234 secrets (three pages of 500) in one batch request.
    let names: Vec<String> = (0..1234).map(|i| format!("page-{i:04}")).collect();
    let secrets: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "value": "v"}))
        .collect();
    let body = json!({ "secrets": secrets }).to_string();
    let (status, answer) = http(
        &server,
        "POST",
        "/api/v0beta1/secret-batches",
        Some(&server.admin_key),
        Some(&body),
    );
    assert_eq!(status, 200, "{answer}");

    let listed = ok_json(server.amika().args(["secret", "list", "-o", "json"]));
    let listed: Vec<String> = listed
        .as_array()
        .expect("one JSON array")
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, names, "every secret once, in order");

    let table = ok(server.amika().args(["secret", "list"]));
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("NAME"), "{}", rows[0]);
    assert_eq!(
        rows.iter().filter(|l| l.starts_with("NAME")).count(),
        1,
        "one header"
    );
    let table_names: Vec<&str> = rows[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        table_names, names,
        "the table lists every secret once, in order"
    );
}
