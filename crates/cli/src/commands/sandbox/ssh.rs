//! `amika sandbox ssh NAME [-t] [-- CMD...] [--print] [--revoke]` and `amika sandbox cp`:
//! interactive access through the server's SSH endpoint with the system's OpenSSH client.
//!
//! Each run mints a short-lived token (`POST /sandboxes/{id}/ssh`), runs `ssh` (or `scp`) with
//! the destination the server answered, and revokes the token when the client exits. The
//! server's host key comes with the answer: it is written to a private `known_hosts` file for
//! this run, so the connection is verified without trust on first use. `--print` prints the
//! destination for another client (the token then lives until it expires or `--revoke`).
//! `--key` mints no token: it logs in as `NAME@HOST` with the user's own key, registered with
//! `amika secret ssh-key push`.
//!
//! The token reaches `ssh` as its user name, on its command line (the public Amika API's
//! `ssh_destination` is made for that): it is short-lived and, unless `--print`ed, revoked when
//! the client exits.

use std::io::Write;
use std::process::ExitCode;

use amika_types::SshAccess;
use anyhow::{bail, Context};

use super::super::Ctx;
use crate::output::print_json;

#[derive(Debug, clap::Args)]
pub struct SshArgs {
    /// The sandbox's name (or id).
    pub name: String,
    /// Force a terminal (as `ssh -t`), e.g. for a full-screen command.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Print the destination (`-p PORT TOKEN@HOST`, for `ssh $(...)`) instead of connecting.
    #[arg(long, conflicts_with_all = ["revoke", "command", "tty"])]
    pub print: bool,
    /// Revoke a token instead of connecting: reads the token, or the destination `--print`
    /// printed, from stdin.
    #[arg(long, conflicts_with_all = ["command", "tty"])]
    pub revoke: bool,
    /// How long the token is valid, in seconds (60 to 86400) [default: 3600].
    #[arg(long, value_name = "SECS", conflicts_with = "key")]
    pub ttl: Option<u64>,
    /// Log in with your own SSH key, registered with `amika secret ssh-key push`, instead of
    /// a token (`ssh -p PORT NAME@HOST`; no token is minted).
    #[arg(long, conflicts_with = "revoke")]
    pub key: bool,
    /// A command to run instead of a login shell (after `--`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct CpArgs {
    /// What to copy: `NAME:PATH` (in the sandbox) or a local path.
    pub from: String,
    /// Where to: a local path, or `NAME:PATH` (in the sandbox).
    pub to: String,
    /// Copy directories recursively.
    #[arg(short, long)]
    pub recursive: bool,
}

pub async fn ssh(ctx: &Ctx, args: SshArgs) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    if args.revoke {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the token from stdin")?;
        let token = token_of(&line)?;
        client.revoke_ssh_access(&args.name, &token).await?;
        if ctx.json() {
            print_json(&serde_json::json!({"revoked": true}))?;
        } else {
            eprintln!("Revoked the SSH token of sandbox {:?}", args.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.key {
        return ssh_with_key(ctx, &client, &args).await;
    }
    let access = client.create_ssh_access(&args.name, args.ttl).await?;
    if args.print {
        if ctx.json() {
            print_json(&access)?;
        } else {
            crate::outln!("{}", access.ssh_destination);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (port, user_host) = destination_parts(&access.ssh_destination)?;
    let hosts = KnownHosts::write(host_of(&user_host), &port, &access.host_key)?;
    let code = run_ssh(&hosts, &args, access.ssh_destination.split_whitespace())?;
    revoke_quietly(&client, &args.name, &access).await;
    Ok(code)
}

/// `--key`: `ssh -p PORT NAME@HOST`, the client signing with the user's own key.
async fn ssh_with_key(
    ctx: &Ctx,
    client: &amika_client::Client,
    args: &SshArgs,
) -> anyhow::Result<ExitCode> {
    // The SSH user is the sandbox's name (an id would not log in); this also fails early, and
    // clearly, for a sandbox that does not exist.
    let sandbox = client.get_sandbox(&args.name).await?;
    let endpoint = client.ssh_endpoint().await?;
    let (Some(host), Some(port), Some(host_key)) =
        (endpoint.host, endpoint.port, endpoint.host_key)
    else {
        bail!("the server has no SSH endpoint: start it with --ssh-listen ADDR (or `ssh_listen` in its config file)");
    };
    let destination = [
        "-p".to_owned(),
        port.to_string(),
        format!("{}@{host}", sandbox.name),
    ];
    if args.print {
        if ctx.json() {
            print_json(
                &serde_json::json!({"ssh_destination": destination.join(" "), "host_key": host_key}),
            )?;
        } else {
            crate::outln!("{}", destination.join(" "));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let hosts = KnownHosts::write(&host, &port.to_string(), &host_key)?;
    run_ssh(&hosts, args, destination.iter().map(String::as_str))
}

fn run_ssh<'a>(
    hosts: &KnownHosts,
    args: &SshArgs,
    destination: impl Iterator<Item = &'a str>,
) -> anyhow::Result<ExitCode> {
    let mut cmd = std::process::Command::new("ssh");
    cmd.args(hosts.options());
    if args.tty {
        cmd.arg("-t");
    }
    cmd.args(destination);
    if !args.command.is_empty() {
        cmd.arg("--").args(&args.command);
    }
    run_client(cmd, "ssh")
}

pub async fn cp(ctx: &Ctx, args: CpArgs) -> anyhow::Result<ExitCode> {
    let (name, remote_is_source) = match (remote_of(&args.from), remote_of(&args.to)) {
        (Some((name, _)), None) => (name, true),
        (None, Some((name, _))) => (name, false),
        _ => bail!(
            "exactly one of {:?} and {:?} must be NAME:PATH (a path in the sandbox), the other a local path",
            args.from,
            args.to
        ),
    };
    let client = ctx.client()?;
    let access = client.create_ssh_access(name, None).await?;
    let (port, user_host) = destination_parts(&access.ssh_destination)?;
    let hosts = KnownHosts::write(host_of(&user_host), &port, &access.host_key)?;
    let remote = |spec: &str| {
        let (_, path) = remote_of(spec).unwrap_or_default();
        format!("{user_host}:{path}")
    };
    let (from, to) = if remote_is_source {
        (remote(&args.from), args.to.clone())
    } else {
        (args.from.clone(), remote(&args.to))
    };
    let mut cmd = std::process::Command::new("scp");
    cmd.args(hosts.options()).arg("-P").arg(port);
    if args.recursive {
        cmd.arg("-r");
    }
    cmd.arg("-q").arg("--").arg(from).arg(to);
    let code = run_client(cmd, "scp")?;
    revoke_quietly(&client, name, &access).await;
    Ok(code)
}

/// `NAME:PATH` → (NAME, PATH); a local path (no `:` before any `/`) → `None`.
fn remote_of(spec: &str) -> Option<(&str, &str)> {
    let (name, path) = spec.split_once(':')?;
    (!name.is_empty() && !name.contains('/')).then_some((name, path))
}

/// `-p PORT TOKEN@HOST` → (PORT, TOKEN@HOST).
fn destination_parts(destination: &str) -> anyhow::Result<(String, String)> {
    let parts: Vec<&str> = destination.split_whitespace().collect();
    match parts.as_slice() {
        ["-p", port, user_host] => Ok((port.to_string(), user_host.to_string())),
        _ => bail!("the server answered an SSH destination of an unexpected form"),
    }
}

/// `USER@HOST` → `HOST`.
fn host_of(user_host: &str) -> &str {
    user_host.rsplit('@').next().unwrap_or_default()
}

/// The token in a line that is either the token or a destination (`-p PORT TOKEN@HOST`).
fn token_of(line: &str) -> anyhow::Result<String> {
    let word = line
        .split_whitespace()
        .find(|w| w.contains('@'))
        .map(|w| w.split('@').next().unwrap_or_default())
        .or_else(|| line.split_whitespace().next())
        .unwrap_or_default();
    if word.is_empty() {
        bail!(
            "--revoke reads the token (or the destination --print printed) from stdin: got nothing"
        );
    }
    Ok(word.to_owned())
}

fn run_client(mut cmd: std::process::Command, name: &str) -> anyhow::Result<ExitCode> {
    let status = cmd.status().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!("{name} is not installed: install the OpenSSH client (e.g. `apt-get install -y openssh-client`)")
        } else {
            anyhow::anyhow!("cannot run {name}: {e}")
        }
    })?;
    Ok(ExitCode::from(
        status.code().unwrap_or(255).clamp(0, 255) as u8
    ))
}

async fn revoke_quietly(client: &amika_client::Client, name: &str, access: &SshAccess) {
    if let Err(e) = client.revoke_ssh_access(name, &access.token).await {
        eprintln!(
            "warning: could not revoke the SSH token (it expires at {}): {e}",
            access.expires_at
        );
    }
}

/// A private `known_hosts` file with the server's host key, for one run of a client.
struct KnownHosts {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl KnownHosts {
    fn write(host: &str, port: &str, host_key: &str) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("amika-ssh")
            .tempdir()
            .context("cannot make a temporary directory")?;
        let path = dir.path().join("known_hosts");
        let mut file = std::fs::File::create(&path).context("cannot write known_hosts")?;
        writeln!(file, "[{host}]:{port} {host_key}").context("cannot write known_hosts")?;
        Ok(KnownHosts { _dir: dir, path })
    }

    fn options(&self) -> Vec<String> {
        vec![
            "-o".into(),
            format!("UserKnownHostsFile={}", self.path.display()),
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
            "-o".into(),
            "LogLevel=ERROR".into(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_in_the_sandbox_are_name_colon_path() {
        assert_eq!(remote_of("box:/tmp/x"), Some(("box", "/tmp/x")));
        assert_eq!(remote_of("box:"), Some(("box", "")));
        assert_eq!(remote_of("./a:b"), None);
        assert_eq!(remote_of("local.txt"), None);
        assert_eq!(remote_of(":x"), None);
    }

    #[test]
    fn revoke_takes_a_token_or_a_destination() {
        assert_eq!(token_of("amkssh_ab\n").unwrap(), "amkssh_ab");
        assert_eq!(
            token_of("-p 2222 amkssh_ab@127.0.0.1\n").unwrap(),
            "amkssh_ab"
        );
        assert!(token_of("\n").is_err());
    }

    #[test]
    fn destinations_split_into_port_and_user_host() {
        assert_eq!(
            destination_parts("-p 2222 t@127.0.0.1").unwrap(),
            ("2222".into(), "t@127.0.0.1".into())
        );
        assert!(destination_parts("t@127.0.0.1").is_err());
    }
}
