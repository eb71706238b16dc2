//! `amika secret ssh-key`: register, list and delete the SSH public keys that log you in to your
//! sandboxes as `ssh -p PORT SANDBOX_NAME@HOST` (the server's `/secrets/ssh-public-keys`).
//!
//! `push` reads a `.pub` file (by default the first of `~/.ssh/id_ed25519.pub`, `id_ecdsa.pub`,
//! `id_rsa.pub`) and refuses, before anything is sent, a file that holds a private key.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::json;

use super::Ctx;
use crate::output::{print_json, time, Table};
use crate::prompt;

#[derive(Debug, clap::Subcommand)]
pub enum SshKeyCommand {
    /// Register a public key (a .pub file; `-` reads stdin). Then `ssh -p PORT NAME@HOST`
    /// logs in to your sandbox NAME with the matching private key.
    Push(PushArgs),
    /// Your registered public keys.
    List,
    /// Remove a registered key (by name or id): logins with it are refused from now on.
    Delete {
        /// The key's name (or id).
        name: String,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The public key file (default: ~/.ssh/id_ed25519.pub, else id_ecdsa.pub, else id_rsa.pub).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A name for the key (default: from the key's comment, else the file's name).
    #[arg(long)]
    pub name: Option<String>,
}

pub async fn run(ctx: &Ctx, cmd: SshKeyCommand) -> anyhow::Result<()> {
    match cmd {
        SshKeyCommand::Push(args) => push(ctx, args).await,
        SshKeyCommand::List => list(ctx).await,
        SshKeyCommand::Delete { name, yes } => delete(ctx, name, yes).await,
    }
}

async fn push(ctx: &Ctx, args: PushArgs) -> anyhow::Result<()> {
    let (line, origin) = read_key(args.file.as_deref())?;
    let name = match args.name {
        Some(name) => name,
        None => default_name(&line, &origin).with_context(|| {
            format!("cannot make a name for the key from {origin}: give one with --name NAME")
        })?,
    };
    let key = ctx.client()?.create_ssh_public_key(&name, &line).await?;
    if ctx.json() {
        return print_json(&key);
    }
    crate::outln!(
        "Registered {} key {:?} ({}) from {origin}",
        key.key_type,
        key.name,
        key.fingerprint
    );
    crate::outln!("Log in to a running sandbox of yours with: amika sandbox ssh NAME --key");
    Ok(())
}

/// The key line and where it came from. A private key is refused here, so that it is never
/// sent anywhere.
fn read_key(file: Option<&Path>) -> anyhow::Result<(String, String)> {
    let (text, origin) = match file {
        Some(path) if path == Path::new("-") => (prompt::read_stdin()?, "stdin".to_owned()),
        Some(path) => (read_file(path)?, path.display().to_string()),
        None => {
            let ssh_dir = dirs_home()?.join(".ssh");
            let candidates = ["id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"];
            let Some(path) = candidates
                .iter()
                .map(|f| ssh_dir.join(f))
                .find(|p| p.is_file())
            else {
                bail!(
                    "no public key found in {} (looked for {}): give a .pub file, or make a key \
                     with `ssh-keygen -t ed25519`",
                    ssh_dir.display(),
                    candidates.join(", ")
                );
            };
            (read_file(&path)?, path.display().to_string())
        }
    };
    if text.contains("PRIVATE KEY") {
        bail!(
            "{origin} holds a private key, which must never leave your machine: give its public \
             half (the .pub file beside it)"
        );
    }
    Ok((text.trim().to_owned(), origin))
}

fn read_file(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn dirs_home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .context("HOME is not set: give the public key file")
}

/// A name from the key's comment (`me@laptop` → `me-laptop`), else from the file's name
/// (`id_ed25519.pub` → `id_ed25519`); `None` when neither gives one.
fn default_name(line: &str, origin: &str) -> Option<String> {
    let clean = |s: &str| -> String {
        let replaced: String = s
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        replaced
            .trim_start_matches(['-', '.'])
            .chars()
            .take(128)
            .collect()
    };
    let comment = line
        .split_whitespace()
        .skip(2)
        .collect::<Vec<_>>()
        .join(" ");
    let from_comment = clean(&comment);
    if !from_comment.is_empty() {
        return Some(from_comment);
    }
    let stem = Path::new(origin).file_stem()?.to_str()?;
    Some(clean(stem)).filter(|s| !s.is_empty() && origin != "stdin")
}

async fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let keys = ctx.client()?.list_ssh_public_keys().await?;
    if ctx.json() {
        return print_json(&keys);
    }
    let mut table = Table::new(&["NAME", "TYPE", "FINGERPRINT", "ADDED"]);
    for k in &keys {
        table.row(vec![
            k.name.clone(),
            k.key_type.clone(),
            k.fingerprint.clone(),
            time(&k.created_at),
        ]);
    }
    table.print()
}

async fn delete(ctx: &Ctx, name: String, yes: bool) -> anyhow::Result<()> {
    let client = ctx.client()?;
    prompt::confirm(
        ctx.output,
        yes,
        "--yes",
        &format!("delete SSH public key {name:?}"),
        &format!("Delete SSH public key {name:?}? Logins with it will be refused."),
    )?;
    client.delete_ssh_public_key(&name).await?;
    if ctx.json() {
        print_json(&json!({ "deleted": name }))
    } else {
        crate::outln!("Deleted SSH public key {name}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_come_from_the_comment_else_the_file() {
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        assert_eq!(
            default_name(&format!("{key} me@laptop"), "/h/.ssh/id_ed25519.pub").as_deref(),
            Some("me-laptop")
        );
        assert_eq!(
            default_name(&format!("{key} work key"), "x.pub").as_deref(),
            Some("work-key")
        );
        assert_eq!(
            default_name(key, "/h/.ssh/id_ed25519.pub").as_deref(),
            Some("id_ed25519")
        );
        assert_eq!(default_name(key, "stdin"), None);
        assert_eq!(
            default_name(&format!("{key} @@@"), "/h/.ssh/id_rsa.pub").as_deref(),
            Some("id_rsa")
        );
    }

    #[test]
    fn a_private_key_is_refused_before_anything_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_ed25519");
        std::fs::write(
            &path,
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = read_key(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("holds a private key"), "{err}");
        assert!(err.contains(".pub"), "{err}");
        assert!(!err.contains("AAAA"), "{err}");
        let missing = read_key(Some(&dir.path().join("nope.pub")))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("cannot read"), "{missing}");
    }
}
