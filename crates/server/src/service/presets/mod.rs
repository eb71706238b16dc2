//! Presets: named sets of tools, installed by the server into versioned, read-only layers and
//! mounted into the sandboxes created with them (see `amika_sandbox::local::PRESET_MOUNT`).
//!
//! The catalog is in the repository (`presets/*.json`, compiled in): each preset pins npm
//! packages at exact versions. A *version* of a preset is the set of pinned packages; its id is
//! a hash of that set, so a build that pins new versions installs a new layer beside the old
//! one (`update`), and a sandbox keeps the layer it was created with (its options store
//! `coder@<id>`).
//!
//! Layout: `<presets_dir>/<name>/<id>/` (default `presets_dir`: `<data>/presets`) holds
//! `node_modules/` as `npm install` left it, `bin/` with one link per command of the preset,
//! and `amika-preset.json` (what was installed, when, with which Node.js). Made read-only
//! (`chmod -R a-w`) once complete, then renamed into place: a layer that exists is whole.

mod install;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use amika_types as t;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::service::audit::Subject;
use crate::service::{Caller, Result, Service, ServiceError};

pub use install::{default_npm_cache, npm_env, InstallProgress, STEPS};

/// The manifest in every installed layer.
pub const MANIFEST: &str = "amika-preset.json";

/// A preset as the repository pins it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetDef {
    pub name: String,
    pub description: String,
    /// npm package → exact version.
    pub packages: BTreeMap<String, String>,
    /// Commands of `node_modules/.bin` linked into the layer's `bin`.
    pub bin: Vec<String>,
}

impl PresetDef {
    /// The version id of the pinned packages: 12 hex digits of a SHA-256 over the name and
    /// every `package@version`.
    pub fn version_id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"amika-preset-v1\n");
        h.update(self.name.as_bytes());
        for (pkg, ver) in &self.packages {
            h.update(format!("\n{pkg}@{ver}").as_bytes());
        }
        hex::encode(h.finalize())[..12].to_string()
    }
}

/// What `amika-preset.json` says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub name: String,
    pub id: String,
    pub packages: BTreeMap<String, String>,
    pub installed_at: chrono::DateTime<chrono::Utc>,
    pub node: String,
}

/// Every preset this server knows, from `presets/*.json`.
pub fn catalog() -> &'static [PresetDef] {
    static CATALOG: OnceLock<Vec<PresetDef>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        [include_str!("../../../../../presets/coder.json")]
            .iter()
            .map(|text| serde_json::from_str(text).expect("presets/*.json is valid"))
            .collect()
    })
}

/// The names of the presets, for error messages.
pub fn known_names() -> String {
    catalog()
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The preset named `name`; 400 listing the presets otherwise.
pub fn find(name: &str) -> Result<&'static PresetDef> {
    catalog().iter().find(|p| p.name == name).ok_or_else(|| {
        ServiceError::bad_request(format!(
            "unknown preset {name:?}: this server has {}",
            known_names()
        ))
        .at("preset")
    })
}

/// The preset a path names (`/presets/{name}`): 404 listing the presets otherwise (a create's
/// `preset` field that names none is a 400, see [`find`]).
pub fn find_named(name: &str) -> Result<&'static PresetDef> {
    catalog().iter().find(|p| p.name == name).ok_or_else(|| {
        ServiceError::NotFound(format!(
            "preset {name:?} (this server has {})",
            known_names()
        ))
    })
}

/// A version id as stored (`[0-9a-f]{12}`): never a path of its own.
fn is_version_id(id: &str) -> bool {
    id.len() == 12
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The layer a stored `name@id` names under `presets_dir`, whether or not it is still there (a
/// start then says it is missing).
pub(crate) fn stored_layer(presets_dir: &Path, stored: &str) -> Option<PathBuf> {
    let (name, id) = stored.split_once('@')?;
    (is_version_id(id) && catalog().iter().any(|p| p.name == name))
        .then(|| presets_dir.join(name).join(id))
}

impl Service {
    fn preset_root(&self, name: &str) -> PathBuf {
        self.config.presets_dir.join(name)
    }

    /// The host directory of an installed layer (`None` if not installed).
    pub(crate) fn preset_layer(&self, name: &str, id: &str) -> Option<PathBuf> {
        if !is_version_id(id) || catalog().iter().all(|p| p.name != name) {
            return None;
        }
        let dir = self.preset_root(name).join(id);
        dir.join(MANIFEST).is_file().then_some(dir)
    }

    /// Installed versions of a preset, newest first.
    fn installed_versions(&self, def: &PresetDef) -> Vec<t::PresetVersion> {
        let current = def.version_id();
        let mut versions: Vec<t::PresetVersion> = std::fs::read_dir(self.preset_root(&def.name))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let id = e.file_name().to_str()?.to_string();
                let dir = self.preset_layer(&def.name, &id)?;
                let text = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
                let m: Manifest = serde_json::from_str(&text).ok()?;
                Some(t::PresetVersion {
                    current: m.id == current,
                    id: m.id,
                    packages: m.packages,
                    installed_at: m.installed_at,
                    node: m.node,
                })
            })
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.installed_at));
        versions
    }

    /// One preset as `GET /presets` shows it.
    pub fn describe_preset(&self, def: &PresetDef) -> t::Preset {
        let current = def.version_id();
        let versions = self.installed_versions(def);
        t::Preset {
            name: def.name.clone(),
            description: def.description.clone(),
            packages: def.packages.clone(),
            bin: def.bin.clone(),
            installed: versions.iter().any(|v| v.id == current),
            current,
            default: self.config.default_preset.as_deref() == Some(def.name.as_str()),
            versions,
        }
    }

    /// `GET /presets`: every preset, installed or not (any signed-in user).
    pub fn list_presets(&self) -> t::PresetList {
        t::PresetList {
            presets: catalog().iter().map(|d| self.describe_preset(d)).collect(),
            agent_permissions: self.agent_permissions(),
        }
    }

    /// What a create's `preset` becomes: `name@id` of the current version if installed, else
    /// of the newest installed one; `Ok(None)` if none is installed. Unknown names are 400.
    pub(crate) fn resolve_preset(&self, name: &str) -> Result<Option<String>> {
        let def = find(name)?;
        let current = def.version_id();
        if self.preset_layer(name, &current).is_some() {
            return Ok(Some(format!("{name}@{current}")));
        }
        Ok(self
            .installed_versions(def)
            .first()
            .map(|v| format!("{name}@{}", v.id)))
    }

    /// `DELETE /presets/{name}` (admins): remove every installed version no sandbox uses (or
    /// only `version`); versions in use stay, listed with their sandboxes.
    pub async fn remove_preset(
        &self,
        caller: &Caller,
        name: &str,
        version: Option<&str>,
    ) -> Result<t::PresetRemoval> {
        require_admin(caller)?;
        let def = find_named(name)?;
        let mut ids: Vec<String> = self
            .installed_versions(def)
            .into_iter()
            .map(|v| v.id)
            .collect();
        if let Some(v) = version {
            if !ids.iter().any(|id| id == v) {
                return Err(ServiceError::NotFound(format!(
                    "version {v:?} of preset {name}"
                )));
            }
            ids.retain(|id| id == v);
        }
        let _guard = install::lock().lock().await;
        let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in self.store.list_all_sandboxes().await? {
            if let Some((n, id)) = row
                .options
                .preset
                .as_deref()
                .and_then(|p| p.split_once('@'))
            {
                if n == name {
                    users
                        .entry(id.to_string())
                        .or_default()
                        .push(row.name.clone());
                }
            }
        }
        let mut removal = t::PresetRemoval {
            removed: Vec::new(),
            kept: Vec::new(),
        };
        for id in ids {
            if let Some(sandboxes) = users.remove(&id) {
                removal.kept.push(t::PresetVersionInUse { id, sandboxes });
                continue;
            }
            let dir = self.preset_root(name).join(&id);
            install::remove_layer(&dir).map_err(ServiceError::internal)?;
            let subject = Subject {
                object_type: "preset",
                object_id: &id,
                object_name: name,
                version: None,
            };
            self.audit(
                caller,
                "preset.removed",
                subject,
                None,
                serde_json::json!({}),
            )
            .await?;
            removal.removed.push(id);
        }
        Ok(removal)
    }

    /// Whether `caller` may install preset `name` (`POST /presets/{name}/install`, admins):
    /// the preset, to hand to [`Self::install_preset_as_server`].
    pub fn check_preset_install(&self, caller: &Caller, name: &str) -> Result<&'static PresetDef> {
        require_admin(caller)?;
        find_named(name)
    }

    /// [`Self::install_preset_as_server`] for an admin (checked by
    /// [`Self::check_preset_install`]), audited as `preset.installed`.
    pub async fn install_preset(
        &self,
        caller: &Caller,
        def: &PresetDef,
        progress: InstallProgress,
    ) -> Result<t::Preset> {
        require_admin(caller)?;
        let preset = self.install_preset_as_server(def, progress).await?;
        let subject = Subject {
            object_type: "preset",
            object_id: &preset.current,
            object_name: &preset.name,
            version: None,
        };
        let detail = serde_json::json!({ "packages": preset.packages });
        self.audit(caller, "preset.installed", subject, None, detail)
            .await?;
        Ok(preset)
    }

    /// Install the pinned version of a preset unless it is there (`install` and `update`; the
    /// server's own `--install-preset` and config `install_presets`), reporting progress on
    /// `progress`. Whoever calls it checked the caller (see [`Self::check_preset_install`]).
    pub async fn install_preset_as_server(
        &self,
        def: &PresetDef,
        progress: InstallProgress,
    ) -> Result<t::Preset> {
        let root = self.preset_root(&def.name);
        install::install(def, &root, &self.config.npm_cache_dir, progress).await?;
        Ok(self.describe_preset(def))
    }
}

/// 403 unless `caller` is an admin (who alone install and remove presets).
pub fn require_admin(caller: &Caller) -> Result<()> {
    if caller.is_admin {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(
            "only admins may install or remove presets".into(),
        ))
    }
}

/// A preset layer's directory is never anything the sandbox can write: checked by tests.
pub fn is_read_only(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o222 == 0)
}
