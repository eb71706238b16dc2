//! Where the CLI finds its server and API key.
//!
//! The login is kept in `$AMIKA_CONFIG`, else `$XDG_CONFIG_HOME/amika/config.json`, else
//! `~/.config/amika/config.json`, as `{"url": .., "api_key": ..}`. The file holds a credential,
//! so it is created `0600` in a `0700` directory and replaced atomically (a new file renamed over
//! the old one, so a looser mode on an old file never survives). `AMIKA_API_URL` and
//! `AMIKA_API_KEY` override the file, for scripts and CI.

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// The server a fresh `amika up` listens on.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7070";

pub const ENV_CONFIG: &str = "AMIKA_CONFIG";
pub const ENV_URL: &str = "AMIKA_API_URL";
pub const ENV_KEY: &str = "AMIKA_API_KEY";

/// The config file's contents.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

impl fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigFile")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Where a setting came from, for `amika auth status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Env,
    File,
    Default,
}

impl Source {
    pub fn describe(self, env_var: &str, path: &Path) -> String {
        match self {
            Source::Env => format!("${env_var}"),
            Source::File => path.display().to_string(),
            Source::Default => "default".to_string(),
        }
    }
}

/// The effective settings: environment over file over defaults.
#[derive(Clone)]
pub struct Settings {
    pub path: PathBuf,
    pub url: String,
    pub url_source: Source,
    pub api_key: Option<String>,
    pub key_source: Source,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("path", &self.path)
            .field("url", &self.url)
            .field("url_source", &self.url_source)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("key_source", &self.key_source)
            .finish()
    }
}

/// A non-empty environment variable.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The config file path from the environment (see the module doc).
pub fn config_path() -> anyhow::Result<PathBuf> {
    config_path_from(env_var)
}

/// [`config_path`] over an injected environment, for tests.
pub fn config_path_from(env: impl Fn(&str) -> Option<String>) -> anyhow::Result<PathBuf> {
    if let Some(path) = env(ENV_CONFIG) {
        return Ok(PathBuf::from(path));
    }
    if let Some(xdg) = env("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(xdg).join("amika").join("config.json"));
    }
    if let Some(home) = env("HOME") {
        return Ok(PathBuf::from(home)
            .join(".config")
            .join("amika")
            .join("config.json"));
    }
    bail!("cannot find a place for the config file: set {ENV_CONFIG}, XDG_CONFIG_HOME or HOME")
}

/// Reads the config file; a missing file is an empty config.
pub fn load_file(path: &Path) -> anyhow::Result<ConfigFile> {
    match fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("config file {} is not valid JSON", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read config file {}", path.display())),
    }
}

/// The effective settings (environment over file over defaults).
pub fn load() -> anyhow::Result<Settings> {
    let path = config_path()?;
    let file = load_file(&path)?;
    let (url, url_source) = match (env_var(ENV_URL), file.url.filter(|u| !u.is_empty())) {
        (Some(url), _) => (url, Source::Env),
        (None, Some(url)) => (url, Source::File),
        (None, None) => (DEFAULT_URL.to_string(), Source::Default),
    };
    let (api_key, key_source) = match (env_var(ENV_KEY), file.api_key.filter(|k| !k.is_empty())) {
        (Some(key), _) => (Some(key), Source::Env),
        (None, Some(key)) => (Some(key), Source::File),
        (None, None) => (None, Source::Default),
    };
    Ok(Settings {
        path,
        url,
        url_source,
        api_key,
        key_source,
    })
}

/// Saves a login (server URL and API key) to the config file, creating it `0600`. Returns the
/// file's path. Called by `amika auth login` and by `amika up` after it creates the first admin.
pub fn save_login(url: &str, api_key: &str) -> anyhow::Result<PathBuf> {
    let path = config_path()?;
    save_login_at(&path, url, api_key)?;
    Ok(path)
}

/// [`save_login`] to an explicit path.
pub fn save_login_at(path: &Path, url: &str, api_key: &str) -> anyhow::Result<()> {
    let config = ConfigFile {
        url: Some(url.trim_end_matches('/').to_string()),
        api_key: Some(api_key.to_string()),
    };
    write_private(path, &config)
}

fn write_private(path: &Path, config: &ConfigFile) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create config directory {}", dir.display()))?;
    }
    let file_name = path
        .file_name()
        .with_context(|| format!("config path {} has no file name", path.display()))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let mut text = serde_json::to_string_pretty(config)?;
    text.push('\n');
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        anyhow::Error::new(e).context(format!("cannot write config file {}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn saved_login_is_private_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("amika").join("config.json");
        save_login_at(&path, "http://127.0.0.1:7070/", "amk_secret").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let file = load_file(&path).unwrap();
        assert_eq!(file.url.as_deref(), Some("http://127.0.0.1:7070"));
        assert_eq!(file.api_key.as_deref(), Some("amk_secret"));
        // No temporary file is left behind.
        let entries: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn saving_over_a_loose_file_makes_it_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, "{}").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        save_login_at(&path, "http://h:1", "amk_x").unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn missing_file_is_empty_config_and_bad_json_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.json");
        assert_eq!(load_file(&path).unwrap(), ConfigFile::default());
        fs::write(&path, "not json").unwrap();
        let err = format!("{:#}", load_file(&path).unwrap_err());
        assert!(err.contains("none.json"), "{err}");
    }

    #[test]
    fn config_path_precedence() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            config_path_from(env(&[("AMIKA_CONFIG", "/a/c.json"), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/a/c.json")
        );
        assert_eq!(
            config_path_from(env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/x/amika/config.json")
        );
        assert_eq!(
            config_path_from(env(&[("HOME", "/h")])).unwrap(),
            PathBuf::from("/h/.config/amika/config.json")
        );
        assert!(config_path_from(env(&[])).is_err());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let file = ConfigFile {
            url: Some("u".into()),
            api_key: Some("amk_topsecret".into()),
        };
        assert!(!format!("{file:?}").contains("topsecret"));
    }
}
