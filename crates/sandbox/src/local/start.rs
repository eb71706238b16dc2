//! Starting a sandbox: check what is asked, build the injection script, launch bubblewrap (or
//! claim a warm sandbox of the same shape), then hand the script to the waiting init and wait
//! until it reports ready. On any failure nothing of the start is left running.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use amika_types::NetworkMode;
use tokio::io::AsyncWriteExt;
use tokio::process::Child;
use zeroize::Zeroizing;

use super::error::StartError;
use super::launch::{explain, wait_line, Launched, READY_LINE};
use super::pool::Shape;
use super::record::RunRecord;
use super::script;
use super::{cgroup, check_id, is_executable, LocalProvider, START_TIMEOUT};
use crate::redact::RedactionSet;
use crate::{Injection, Provider, ProviderError, Result, SandboxSpec};

impl LocalProvider {
    pub(super) async fn start_sandbox(
        &self,
        spec: &SandboxSpec,
        injection: Injection,
    ) -> Result<()> {
        let failed = |reason: StartError| ProviderError::start_failed(&spec.id, reason);
        check_id(&spec.id).map_err(failed)?;
        self.check()?;
        for env in &injection.env {
            if !script::is_valid_env_name(&env.name) {
                return Err(failed(StartError::InvalidEnvName(env.name.clone())));
            }
            if env.value.expose_secret().contains(&0) {
                return Err(failed(StartError::NulInValue(env.name.clone())));
            }
        }
        for file in &injection.files {
            script::check_file_path(&file.relative_path).map_err(failed)?;
        }
        let lock = self.lock_for(&spec.id);
        let _guard = lock.lock().await;
        self.start_locked(spec, injection).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn start_locked(
        &self,
        spec: &SandboxSpec,
        injection: Injection,
    ) -> Result<()> {
        let id = spec.id.as_str();
        let failed = |reason: StartError| ProviderError::start_failed(id, reason);

        // A previous run: refuse if alive, clean up what is left of it otherwise.
        let dir = self.sandbox_dir(id);
        if let Some(record) = self.read_record(id)? {
            if record.init.is_alive() {
                return Err(failed(StartError::AlreadyRunning));
            }
            self.teardown(&dir, &record).await?;
        }
        // A sandbox that never ran here: a warm one can serve it.
        let fresh = !dir.exists();

        if spec.network == NetworkMode::Egress && !is_executable(&self.tools.slirp4netns) {
            return Err(ProviderError::Unavailable(
                "slirp4netns is not installed: run `apt-get install -y slirp4netns`".into(),
            ));
        }
        let limited = spec.memory_mib.is_some() || spec.pids.is_some();
        if let (true, cgroup::Layout::Unavailable(reason)) = (limited, self.cgroup_layout()) {
            return Err(ProviderError::Unavailable(
                cgroup::CgroupError::Unavailable(reason.clone()).to_string(),
            ));
        }
        let shape = Shape {
            network: spec.network,
            tmpfs_dirs: script::tmpfs_dirs(
                injection.files.iter().map(|f| f.relative_path.as_str()),
            ),
            limited,
            preset: spec.preset.clone(),
            preset_identity: match &spec.preset {
                Some(layer) => match std::fs::metadata(layer) {
                    Ok(m) if m.is_dir() => Some((m.dev(), m.ino(), m.ctime(), m.ctime_nsec())),
                    _ => return Err(failed(StartError::PresetMissing(layer.clone()))),
                },
                None => None,
            },
        };

        // The injection script: exports, files, then the commit line. Zeroized when dropped.
        let init_script = script::injection_script(&injection);
        let redactions = RedactionSet::from_injection(&injection);
        drop(injection);

        let warm = if fresh { self.pool.take(&shape) } else { None };
        let launched = match warm {
            Some(parked) => self.claim(parked, &dir, spec, &shape).await,
            None => self.cold_start(&dir, spec, &shape).await,
        };
        if fresh {
            self.refill(shape);
        }
        let launched = match launched {
            Ok(launched) => launched,
            Err(reason) => {
                let _ = cgroup::remove(&self.cgroup_layout().dirs(id)).await;
                return Err(failed(reason));
            }
        };
        // The repository staged for its first start, before the sandbox runs anything.
        if let Err(e) = self.move_staged(id, &dir) {
            self.abandon(&dir, launched).await;
            return Err(failed(StartError::Io(e)));
        }
        self.commit(&dir, launched, init_script, &redactions)
            .await
            .map_err(failed)
    }

    /// Start sandbox `dir` from nothing: its cgroups, then [`Self::launch_in`].
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn cold_start(
        &self,
        dir: &Path,
        spec: &SandboxSpec,
        shape: &Shape,
    ) -> Result<Launched, StartError> {
        let cgroups = if shape.limited {
            self.cgroup_layout()
                .create(&spec.id, spec.memory_mib, spec.pids)?
        } else {
            Vec::new()
        };
        self.launch_in(dir, shape, cgroups).await
    }

    /// Send the injection script (ending in the commit line) and wait until the sandbox is
    /// ready. On failure the sandbox is torn down.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn commit(
        &self,
        dir: &Path,
        launched: Launched,
        script: Zeroizing<Vec<u8>>,
        redactions: &RedactionSet,
    ) -> Result<(), StartError> {
        let Launched {
            mut child,
            mut stdin,
            stdout,
            mut stderr,
            record,
        } = launched;
        // Written concurrently with the sandbox reading it: a pipe holds 64 KiB, the script can
        // be larger (credential files).
        tokio::spawn(async move {
            let _ = stdin.write_all(&script).await;
        });
        let mut setup_output = Vec::new();
        let ready = tokio::time::timeout(
            START_TIMEOUT,
            wait_line(&mut stderr, &mut setup_output, READY_LINE),
        )
        .await
        .unwrap_or(Err(StartError::NotReady(START_TIMEOUT)));
        if let Err(reason) = ready {
            self.end(dir, &record, child).await;
            return Err(explain(reason, setup_output, &mut stderr, redactions).await);
        }
        // Reap bwrap whenever it exits; the sandbox does not depend on this task (or on this
        // server process) staying around.
        tokio::spawn(async move {
            let _ = child.wait().await;
            drop(stdout);
            drop(stderr);
        });
        Ok(())
    }

    /// Tear down a launched sandbox that will not be committed.
    pub(super) async fn abandon(&self, dir: &Path, launched: Launched) {
        let Launched {
            child,
            stdin,
            record,
            ..
        } = launched;
        drop(stdin);
        self.end(dir, &record, child).await;
    }

    /// Kill a started sandbox's processes (see [`Self::teardown`]) and reap its bwrap.
    pub(super) async fn end(&self, dir: &Path, record: &RunRecord, mut bwrap: Child) {
        let _ = self.teardown(dir, record).await;
        let _ = bwrap.start_kill();
        let _ = bwrap.wait().await;
    }
}
