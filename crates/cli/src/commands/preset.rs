//! `amika preset`: the server's presets (named, versioned, read-only tool layers such as
//! `coder`, the real Claude Code and Codex CLIs): list, install (with a progress bar), update,
//! remove.

use std::io::Write;

use amika_types::{Preset, PresetInstallEvent};

use super::Ctx;
use crate::output::{print_json, time, Table};

#[derive(Debug, clap::Subcommand)]
pub enum PresetCommand {
    /// The server's presets: pinned packages, installed versions, the default.
    List,
    /// Install a preset's pinned version on the server (admins), e.g. `coder`.
    Install(NameArg),
    /// Install the versions this server now pins beside the old ones (admins); sandboxes keep
    /// the version they were created with.
    Update(NameArg),
    /// Remove a preset's installed versions that no sandbox uses (admins).
    Remove(RemoveArgs),
}

#[derive(Debug, clap::Args)]
pub struct NameArg {
    /// The preset, e.g. coder.
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// The preset, e.g. coder.
    pub name: String,
    /// Remove only this version id (see `amika preset list`).
    #[arg(long = "version-id", value_name = "ID")]
    pub version_id: Option<String>,
}

pub async fn run(ctx: &Ctx, cmd: PresetCommand) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match cmd {
        PresetCommand::List => {
            let list = client.list_presets().await?;
            if ctx.json() {
                return print_json(&list);
            }
            let mut table = Table::new(&["NAME", "INSTALLED", "CURRENT", "DEFAULT", "PACKAGES"]);
            for p in &list.presets {
                table.row(vec![
                    p.name.clone(),
                    if p.installed { "yes" } else { "no" }.into(),
                    p.current.clone(),
                    if p.default { "yes" } else { "-" }.into(),
                    packages(p),
                ]);
            }
            table.print()?;
            for p in &list.presets {
                for v in p.versions.iter().filter(|v| !v.current) {
                    crate::outln!(
                        "{}: older version {} installed {} ({})",
                        p.name,
                        v.id,
                        time(&v.installed_at),
                        v.packages
                            .iter()
                            .map(|(k, v)| format!("{k}@{v}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                }
            }
            for a in &list.agent_permissions {
                crate::outln!(
                    "{} runs with permission mode {} ({})",
                    a.agent,
                    a.mode,
                    a.args.join(" ")
                );
            }
            Ok(())
        }
        PresetCommand::Install(a) | PresetCommand::Update(a) => {
            let mut bar = Bar::new();
            let preset = client.install_preset(&a.name, |e| bar.show(e)).await;
            bar.clear();
            let preset = preset?;
            if ctx.json() {
                return print_json(&preset);
            }
            crate::outln!(
                "Installed {} {} ({})",
                preset.name,
                preset.current,
                packages(&preset)
            );
            Ok(())
        }
        PresetCommand::Remove(a) => {
            let removal = client
                .remove_preset(&a.name, a.version_id.as_deref())
                .await?;
            if ctx.json() {
                return print_json(&removal);
            }
            if removal.removed.is_empty() && removal.kept.is_empty() {
                crate::outln!("{}: nothing installed", a.name);
            }
            for id in &removal.removed {
                crate::outln!("Removed {} {id}", a.name);
            }
            for kept in &removal.kept {
                crate::outln!(
                    "Kept {} {}: used by {} (delete them first)",
                    a.name,
                    kept.id,
                    kept.sandboxes.join(", ")
                );
            }
            Ok(())
        }
    }
}

fn packages(p: &Preset) -> String {
    p.packages
        .iter()
        .map(|(k, v)| format!("{k}@{v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The install's progress on stderr: a bar of its steps and the latest line (npm's), redrawn
/// in place on a terminal; one line per step otherwise.
struct Bar {
    tty: bool,
    last_step: u32,
}

impl Bar {
    fn new() -> Self {
        Bar {
            tty: crate::prompt::stderr_is_tty(),
            last_step: 0,
        }
    }

    fn show(&mut self, e: &PresetInstallEvent) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{}", bar_line(e, 80));
        } else if e.step != self.last_step {
            let _ = writeln!(err, "{}", bar_line(e, 200));
        }
        let _ = err.flush();
        self.last_step = e.step;
    }

    fn clear(&self) {
        if self.tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// `[#####.....] 2/4 message`, the message cut to `width` characters.
fn bar_line(e: &PresetInstallEvent, width: usize) -> String {
    let steps = e.steps.max(1) as usize;
    let done = (e.step as usize).min(steps);
    let filled = done * 20 / steps;
    let message: String = e.message.chars().take(width).collect();
    format!(
        "[{}{}] {}/{} {message}",
        "#".repeat(filled),
        ".".repeat(20 - filled),
        e.step,
        e.steps
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_steps_and_cuts_the_message() {
        let e = |step, message: &str| PresetInstallEvent {
            event: amika_types::PresetInstallEventKind::Progress,
            step,
            steps: 4,
            message: message.into(),
            preset: None,
        };
        assert_eq!(
            bar_line(&e(1, "npm install x"), 80),
            "[#####...............] 1/4 npm install x"
        );
        assert_eq!(
            bar_line(&e(4, "abcdef"), 3),
            "[####################] 4/4 abc"
        );
    }
}
