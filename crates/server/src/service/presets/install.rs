//! Installing a preset's layer: `npm install` of the pinned packages into a temporary directory
//! beside the layers, on the host, with a clean environment; links for its commands; a
//! manifest; read-only; renamed into place. The npm cache (server config `npm_cache_dir`,
//! default `$AMIKA_NPM_CACHE`, else `~/.cache/amika-npm`) is shared, so a reinstall or a second
//! data dir downloads nothing again.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use amika_types as t;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use super::{Manifest, PresetDef, MANIFEST};
use crate::service::{Result, ServiceError};

/// Steps of an install, as the progress lines count them.
pub const STEPS: u32 = 4;
/// An `npm install` still running after this is killed.
const NPM_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Variables of the server's environment that npm gets (how to reach the registry); nothing
/// else of it.
const NETWORK_ENV: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "npm_config_registry",
    "NPM_CONFIG_REGISTRY",
];

/// Where an install reports what it does (the HTTP answer's NDJSON lines, the CLI's bar).
#[derive(Debug, Clone, Default)]
pub struct InstallProgress(Option<mpsc::UnboundedSender<t::PresetInstallEvent>>);

impl InstallProgress {
    pub fn new(tx: mpsc::UnboundedSender<t::PresetInstallEvent>) -> Self {
        InstallProgress(Some(tx))
    }

    /// Report nothing.
    pub fn none() -> Self {
        InstallProgress(None)
    }

    fn step(&self, step: u32, message: impl Into<String>) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(t::PresetInstallEvent {
                event: t::PresetInstallEventKind::Progress,
                step,
                steps: STEPS,
                message: message.into(),
                preset: None,
            });
        }
    }
}

/// One install at a time in this process; across processes the rename decides.
pub(super) fn lock() -> &'static tokio::sync::Mutex<()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    &LOCK
}

/// npm's whole environment: constants, the server's `HOME` (npm reads `~/.npmrc`, e.g. a
/// registry mirror) and [`NETWORK_ENV`].
pub fn npm_env() -> Vec<(String, String)> {
    let mut env = vec![
        (
            "PATH".to_string(),
            "/usr/local/bin:/usr/bin:/bin".to_string(),
        ),
        ("LANG".to_string(), "C.UTF-8".to_string()),
        (
            "npm_config_update_notifier".to_string(),
            "false".to_string(),
        ),
    ];
    if let Some(home) = std::env::var_os("HOME") {
        env.push(("HOME".into(), home.to_string_lossy().into_owned()));
    }
    for name in NETWORK_ENV {
        if let Ok(v) = std::env::var(name) {
            env.push((name.to_string(), v));
        }
    }
    env
}

/// The default npm cache: `$AMIKA_NPM_CACHE`, else `$XDG_CACHE_HOME/amika-npm`, else
/// `~/.cache/amika-npm`.
pub fn default_npm_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("AMIKA_NPM_CACHE").filter(|d| !d.is_empty()) {
        return dir.into();
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("amika-npm");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    PathBuf::from(home).join(".cache/amika-npm")
}

fn unavailable(message: String) -> ServiceError {
    ServiceError::Unavailable(message)
}

/// Install `def`'s current version under `root` unless it is there.
pub(super) async fn install(
    def: &PresetDef,
    root: &Path,
    cache: &Path,
    progress: InstallProgress,
) -> Result<()> {
    let id = def.version_id();
    let target = root.join(&id);
    let _guard = lock().lock().await;
    if target.join(MANIFEST).is_file() {
        progress.step(STEPS, format!("{} {id} is already installed", def.name));
        return Ok(());
    }
    let node = node_version().await?;
    std::fs::create_dir_all(root).map_err(ServiceError::internal)?;
    sweep_stale(root);
    let tmp = root.join(format!(".tmp-{id}-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir(&tmp).map_err(ServiceError::internal)?;
    let built = build(def, &tmp, cache, &node, &progress).await;
    let placed = built.and_then(|()| {
        progress.step(4, format!("moving {} {id} into place", def.name));
        match std::fs::rename(&tmp, &target) {
            Ok(()) => Ok(()),
            // Another server installed it meanwhile: theirs is as good.
            Err(_) if target.join(MANIFEST).is_file() => {
                remove_layer(&tmp).map_err(ServiceError::internal)
            }
            Err(e) => Err(ServiceError::internal(e)),
        }
    });
    if placed.is_err() {
        let _ = remove_layer(&tmp);
    }
    placed?;
    tracing::info!(preset = %def.name, version = %id, "preset installed");
    Ok(())
}

/// Remove what installs that died (a server killed mid-install) left: `.tmp-*` directories
/// older than an install may take (a younger one may be another server's, still running).
fn sweep_stale(root: &Path) {
    let stale_after = NPM_TIMEOUT + Duration::from_secs(5 * 60);
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > stale_after));
        if entry.file_name().to_string_lossy().starts_with(".tmp-") && old {
            if let Err(e) = remove_layer(&entry.path()) {
                tracing::warn!(dir = %entry.path().display(), error = %e, "cannot remove an unfinished preset install");
            }
        }
    }
}

/// npm, the links, the manifest and the permissions, in `tmp`.
async fn build(
    def: &PresetDef,
    tmp: &Path,
    cache: &Path,
    node: &str,
    progress: &InstallProgress,
) -> Result<()> {
    let specs: Vec<String> = def
        .packages
        .iter()
        .map(|(p, v)| format!("{p}@{v}"))
        .collect();
    progress.step(1, format!("npm install {}", specs.join(" ")));
    run_npm(tmp, cache, &specs, progress).await?;
    progress.step(2, format!("linking {}", def.bin.join(", ")));
    let bin = tmp.join("bin");
    std::fs::create_dir(&bin).map_err(ServiceError::internal)?;
    for cmd in &def.bin {
        let installed = tmp.join("node_modules/.bin").join(cmd);
        if !installed.exists() {
            return Err(unavailable(format!(
                "npm installed no `{cmd}` command (node_modules/.bin/{cmd}) for preset {}",
                def.name
            )));
        }
        std::os::unix::fs::symlink(Path::new("../node_modules/.bin").join(cmd), bin.join(cmd))
            .map_err(ServiceError::internal)?;
    }
    let manifest = Manifest {
        name: def.name.clone(),
        id: def.version_id(),
        packages: def.packages.clone(),
        installed_at: crate::service::now(),
        node: node.to_string(),
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(ServiceError::internal)?;
    std::fs::write(tmp.join(MANIFEST), text).map_err(ServiceError::internal)?;
    progress.step(3, "making the layer read-only");
    set_writable(tmp, false).map_err(ServiceError::internal)
}

/// `/usr/bin/node --version` (else `/usr/local/bin/node`): the sandbox sees the host's `/usr`,
/// so its node is this one.
async fn node_version() -> Result<String> {
    let missing = || {
        unavailable(
            "Node.js is not installed (/usr/bin/node): presets run the host's; run `scripts/install-deps.sh` or `apt-get install -y nodejs npm`".into(),
        )
    };
    // Under /usr either way: the sandbox sees the host's /usr and nothing else of it.
    let node = ["/usr/bin/node", "/usr/local/bin/node"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .ok_or_else(missing)?;
    let out = Command::new(node)
        .arg("--version")
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|_| missing())?;
    if !out.status.success() {
        return Err(missing());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `npm install --prefix tmp ...`, its output lines as progress; the error keeps its last lines.
async fn run_npm(
    tmp: &Path,
    cache: &Path,
    specs: &[String],
    progress: &InstallProgress,
) -> Result<()> {
    let npm = ["/usr/bin/npm", "/usr/local/bin/npm"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .ok_or_else(|| {
            unavailable(
                "npm is not installed: run `scripts/install-deps.sh` or `apt-get install -y nodejs npm`"
                    .into(),
            )
        })?;
    let mut child = Command::new(npm)
        .arg("install")
        .arg("--prefix")
        .arg(tmp)
        .args([
            "--no-audit",
            "--no-fund",
            "--loglevel=http",
            "--progress=false",
        ])
        .arg("--cache")
        .arg(cache)
        .args(specs)
        .env_clear()
        .envs(npm_env())
        .current_dir(tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| unavailable(format!("cannot run {npm}: {e}")))?;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    forward_lines(child.stdout.take(), tx.clone());
    forward_lines(child.stderr.take(), tx);
    let mut tail: Vec<String> = Vec::new();
    let run = async {
        while let Some(line) = rx.recv().await {
            progress.step(1, line.clone());
            tail.push(line);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
        child.wait().await
    };
    let status = match tokio::time::timeout(NPM_TIMEOUT, run).await {
        Ok(status) => status.map_err(ServiceError::internal)?,
        Err(_) => {
            return Err(unavailable(format!(
                "npm install did not finish within {} minutes",
                NPM_TIMEOUT.as_secs() / 60
            )))
        }
    };
    if status.success() {
        return Ok(());
    }
    Err(unavailable(format!(
        "npm install {} failed ({status}):\n{}",
        specs.join(" "),
        tail.join("\n")
    )))
}

fn forward_lines<R: AsyncRead + Unpin + Send + 'static>(
    stream: Option<R>,
    tx: mpsc::UnboundedSender<String>,
) {
    let Some(stream) = stream else { return };
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let line = line.trim();
            if !line.is_empty() {
                let _ = tx.send(line.chars().take(300).collect());
            }
        }
    });
}

/// `chmod -R a-w` (or `u+w` again), without following symbolic links.
fn set_writable(path: &Path, writable: bool) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            set_writable(&entry?.path(), writable)?;
        }
    }
    let mode = meta.permissions().mode();
    let mode = if writable {
        mode | 0o200
    } else {
        mode & !0o222
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Remove a (read-only) layer.
pub(super) fn remove_layer(dir: &Path) -> std::io::Result<()> {
    match set_writable(dir, true) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    }
    std::fs::remove_dir_all(dir)
}
