//! What a sandbox prints while its start fails reaches the caller in the provider's error,
//! redacted under the same rule as everything else amika relays: a token inside an injected
//! OAuth document is redacted on its own, not only the document as a whole.
//!
//! The sandbox here is a stand-in for bubblewrap (`with_bwrap_path`): it reports itself as the
//! sandbox's init, reads its injection script, prints one of the injected tokens and exits, as a
//! broken setup could. Real bubblewrap never prints a value, so only a stand-in can show that
//! one would be redacted.

use std::os::unix::fs::PermissionsExt;

use amika_sandbox::local::LocalProvider;
use amika_sandbox::{InjectedFile, Injection, Provider, ProviderError, SandboxSpec, SecretBytes};
use amika_types::NetworkMode;

const ACCESS_TOKEN: &str = "sk-ant-oat01-PROVIDER-PATH-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_an_oauth_file_printed_during_a_failed_start_is_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let fake_bwrap = dir.path().join("bwrap");
    std::fs::write(
        &fake_bwrap,
        format!(
            "#!/bin/sh\n\
             printf '{{\"child-pid\": %d}}\\n' $$\n\
             echo amika-started >&2\n\
             cat >/dev/null\n\
             echo \"setup failed: cannot refresh {ACCESS_TOKEN}\" >&2\n\
             exit 1\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake_bwrap, std::fs::Permissions::from_mode(0o755)).unwrap();
    let provider = LocalProvider::new(dir.path().join("sandboxes"))
        .with_warm_sandboxes(0)
        .with_bwrap_path(fake_bwrap);

    let document = format!(
        r#"{{"claudeAiOauth":{{"accessToken":"{ACCESS_TOKEN}","refreshToken":"sk-ant-ort01-r","expiresAt":1767225600000}}}}"#
    );
    let injection = Injection {
        env: vec![],
        files: vec![InjectedFile {
            relative_path: ".claude/.credentials.json".into(),
            contents: SecretBytes::new(document.into_bytes()),
            label: "personal".into(),
        }],
    };
    let spec = SandboxSpec {
        id: "oauth-start".into(),
        network: NetworkMode::None,
        memory_mib: None,
        pids: None,
        preset: None,
    };
    let err = provider.start(&spec, injection).await.unwrap_err();
    let _ = provider.remove("oauth-start").await;
    let msg = err.to_string();
    assert!(matches!(err, ProviderError::StartFailed { .. }), "{msg}");
    assert!(
        msg.contains("setup failed: cannot refresh [REDACTED:personal]"),
        "the sandbox's words are in the error: {msg}"
    );
    assert!(!msg.contains(ACCESS_TOKEN), "the token leaked: {msg}");
}
