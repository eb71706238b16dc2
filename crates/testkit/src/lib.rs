//! amika's test harness, written once for every Rust test suite and benchmark (never part of a
//! release: `publish = false`, a dev-dependency of the crates whose tests use it, a dependency
//! of the bench crate only).
//!
//! - [`server`]: a real server (real store, real vault, real provider) in the test's own
//!   process, on a temp dir, driven through the router without a socket or served on port 0.
//! - [`postgres`]: a fresh database on the throwaway PostgreSQL cluster of
//!   `scripts/with-postgres.sh`, and `pg_dump`.
//! - [`fixtures`]: credential documents as Claude Code and Codex write them.
//! - [`git_http`]: a private git repository over HTTP (`git http-backend` wanting a token).
//!
//! Tests that drive the real `amika` binary keep their process harness in
//! `crates/cli/tests/common`; unit tests inside `amika-server` cannot use this crate (it links
//! a second, non-test copy of amika-server whose types are not the test build's).

pub mod fixtures;
pub mod git_http;
pub mod postgres;
pub mod server;
pub mod sse;

pub use fixtures::{unsigned_id_token, ClaudeOauth, CodexAuth};
pub use postgres::FreshDatabase;
pub use server::{exec_sh, open_store, RunningServer, ServerBuilder, TestServer};
