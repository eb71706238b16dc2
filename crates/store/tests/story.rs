//! The one story of amika's storage, told to both backends: orgs and users, API keys, secrets and
//! credentials in both scopes (who sees what, which name wins, which names collide), sandboxes,
//! audit events, the sealed material key rotation walks through, agent sessions and turns,
//! snapshots and SSH public keys.
//!
//! `story_postgres` needs a server: run it under `scripts/with-postgres.sh`, which exports
//! `AMIKA_TEST_DATABASE_URL`. It fails without one (so CI cannot silently skip it) unless
//! `AMIKA_SKIP_POSTGRES=1`.

use std::sync::Arc;

use amika_store::{
    AgentSessionRow, AgentTurnRow, ApiKeyRow, AuditRow, CredentialRow, InjectedCredentialRef,
    InjectedSecretRef, InjectionRecord, OrgRow, RepoRecord, SandboxOptions, SandboxRow, Sealed,
    SealedRef, SealedTable, SecretRow, SnapshotRow, SnapshotUsage, SshPublicKeyRow, Store,
    StoreError, UserRow,
};
use amika_types::{
    AgentCredentialRef, AgentJobState, AgentKind, AgentSessionStatus, CredentialType, NetworkMode,
    ResolutionOutcome, ResolutionSource, ResolvedAgentCredential, SandboxState, Scope,
    SnapshotMode, SnapshotState,
};
use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use serde_json::json;

/// A fixed clock, so rows compare equal after a round trip and ordering is deliberate.
fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap() + Duration::seconds(seconds)
}

fn sealed(kek: &str, tag: &str) -> Sealed {
    Sealed {
        kek_id: kek.into(),
        wrapped_key: format!("wrapped:{tag}").into_bytes(),
        ciphertext: format!("cipher:{tag}").into_bytes(),
    }
}

fn org(id: &str, name: &str) -> OrgRow {
    OrgRow {
        id: id.into(),
        name: name.into(),
        created_at: at(0),
    }
}

fn user(id: &str, org: &OrgRow, name: &str, is_admin: bool) -> UserRow {
    UserRow {
        id: id.into(),
        org_id: org.id.clone(),
        name: name.into(),
        is_admin,
        created_at: at(1),
    }
}

fn api_key(id: &str, user: &UserRow, hash: &str, created: i64) -> ApiKeyRow {
    ApiKeyRow {
        id: id.into(),
        user_id: user.id.clone(),
        name: format!("key {id}"),
        hash: hash.into(),
        obfuscated: "amk_ab…wxyz".into(),
        last_used_at: None,
        created_at: at(created),
        updated_at: at(created),
    }
}

fn secret(id: &str, owner: &UserRow, name: &str, scope: Scope) -> SecretRow {
    SecretRow {
        id: id.into(),
        org_id: owner.org_id.clone(),
        user_id: owner.id.clone(),
        name: name.into(),
        description: None,
        scope,
        version: 1,
        sealed: sealed("kek-1", id),
        created_at: at(10),
        updated_at: at(10),
    }
}

fn credential(
    id: &str,
    owner: &UserRow,
    kind: AgentKind,
    name: &str,
    scope: Scope,
) -> CredentialRow {
    CredentialRow {
        id: id.into(),
        org_id: owner.org_id.clone(),
        user_id: owner.id.clone(),
        kind,
        credential_type: CredentialType::Oauth,
        name: name.into(),
        scope,
        is_default: scope == Scope::User,
        version: 1,
        expires_at: Some(at(3600)),
        sealed: sealed("kek-2", id),
        created_at: at(20),
        updated_at: at(20),
    }
}

fn sandbox(id: &str, owner: &UserRow, name: &str, created: i64) -> SandboxRow {
    SandboxRow {
        id: id.into(),
        org_id: owner.org_id.clone(),
        user_id: owner.id.clone(),
        name: name.into(),
        provider: "local".into(),
        state: SandboxState::Initializing,
        error_message: None,
        secret_env_vars: [("GITHUB_TOKEN".to_string(), "TOKEN".to_string())].into(),
        agent_credentials: vec![AgentCredentialRef {
            kind: AgentKind::Claude,
            name: None,
            credential_type: None,
            none: false,
        }],
        resolved_agent_credentials: vec![],
        secret_names: vec!["TOKEN".into()],
        injection: InjectionRecord::default(),
        options: SandboxOptions::new(NetworkMode::Egress, Some(2048), None),
        workspace: None,
        created_at: at(created),
        updated_at: at(created),
    }
}

fn audit(id: &str, org: &OrgRow, seconds: i64) -> AuditRow {
    AuditRow {
        id: id.into(),
        org_id: org.id.clone(),
        user_id: "u-alice".into(),
        action: "secret.revealed".into(),
        object_type: "secret".into(),
        object_id: "s-org-token".into(),
        object_name: "TOKEN".into(),
        version: Some(seconds),
        sandbox_id: (seconds % 2 == 0).then(|| "sb-dev".to_string()),
        detail: json!({"hmac": format!("h{seconds}")}),
        created_at: at(seconds),
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound(w)) => assert_eq!(w, what),
        other => panic!("expected NotFound({what}), got {other:?}"),
    }
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, message: &str) {
    match result {
        Err(StoreError::Conflict(m)) => assert_eq!(m, message),
        other => panic!("expected Conflict({message:?}), got {other:?}"),
    }
}

/// (name, scope, id) — what the visibility rules are about.
fn secret_view(rows: &[SecretRow]) -> Vec<(&str, Scope, &str)> {
    rows.iter()
        .map(|r| (r.name.as_str(), r.scope, r.id.as_str()))
        .collect()
}

fn credential_view(rows: &[CredentialRow]) -> Vec<(&str, Scope, &str)> {
    rows.iter()
        .map(|r| (r.name.as_str(), r.scope, r.id.as_str()))
        .collect()
}

async fn story(store: Arc<dyn Store>) {
    // ---- a fresh database
    assert_eq!(store.count_users().await.unwrap(), 0);
    assert_eq!(store.vault_canary().await.unwrap(), None);
    assert!(store.kek_ids_in_use().await.unwrap().is_empty());
    assert!(store.all_sealed().await.unwrap().is_empty());

    // ---- orgs
    let acme = org("o-acme", "acme");
    let other = org("o-other", "other");
    store.create_org(&acme).await.unwrap();
    store.create_org(&other).await.unwrap();
    assert_eq!(store.get_org("o-acme").await.unwrap(), acme);
    assert_eq!(store.get_org_by_name("other").await.unwrap(), other);
    assert_not_found(store.get_org("o-missing").await, "org");
    assert_not_found(store.get_org_by_name("missing").await, "org");
    assert_conflict(
        store.create_org(&org("o-acme-2", "acme")).await,
        "an org named acme already exists",
    );

    // Both backends keep microseconds, and only microseconds.
    let now = Utc::now();
    let timed = OrgRow {
        id: "o-timed".into(),
        name: "timed".into(),
        created_at: now,
    };
    store.create_org(&timed).await.unwrap();
    assert_eq!(
        store.get_org("o-timed").await.unwrap().created_at,
        now.trunc_subsecs(6)
    );

    // ---- users
    let alice = user("u-alice", &acme, "alice", true);
    let bob = user("u-bob", &acme, "bob", false);
    let carol = user("u-carol", &other, "carol", false);
    for u in [&alice, &bob, &carol] {
        store.create_user(u).await.unwrap();
    }
    assert_eq!(store.get_user("u-bob").await.unwrap(), bob);
    assert_not_found(store.get_user("u-missing").await, "user");
    assert_conflict(
        store
            .create_user(&user("u-alice-2", &acme, "alice", false))
            .await,
        "a user named alice already exists in this org",
    );
    // Names are unique per org only.
    store
        .create_user(&user("u-alice-other", &other, "alice", false))
        .await
        .unwrap();
    assert_eq!(store.count_users().await.unwrap(), 4);
    assert_eq!(store.count_users_in_org(&acme.id).await.unwrap(), 2);
    assert_eq!(store.count_users_in_org(&other.id).await.unwrap(), 2);
    assert_eq!(store.count_users_in_org("o-none").await.unwrap(), 0);

    // ---- api keys
    let key1 = api_key("k-1", &alice, "hash-1", 2);
    let key2 = api_key("k-2", &alice, "hash-2", 3);
    let key3 = api_key("k-3", &bob, "hash-3", 4);
    for k in [&key1, &key2, &key3] {
        store.create_api_key(k).await.unwrap();
    }
    assert_eq!(store.get_api_key_by_hash("hash-1").await.unwrap(), key1);
    assert_not_found(store.get_api_key_by_hash("hash-missing").await, "api key");
    assert_conflict(
        store
            .create_api_key(&api_key("k-4", &bob, "hash-1", 5))
            .await,
        "this API key already exists",
    );
    assert_eq!(
        store.list_api_keys("u-alice").await.unwrap(),
        vec![key1.clone(), key2.clone()]
    );
    store.touch_api_key("k-1", at(100)).await.unwrap();
    assert_eq!(
        store
            .get_api_key_by_hash("hash-1")
            .await
            .unwrap()
            .last_used_at,
        Some(at(100))
    );
    assert_not_found(store.touch_api_key("k-missing", at(100)).await, "api key");
    // Authentication reads the key and its user in one go.
    let (key, owner) = store.get_api_key_and_user_by_hash("hash-1").await.unwrap();
    assert_eq!(key, store.get_api_key_by_hash("hash-1").await.unwrap());
    assert_eq!(owner, alice);
    assert_not_found(
        store.get_api_key_and_user_by_hash("hash-missing").await,
        "api key",
    );
    // Bob cannot delete Alice's key: to him it does not exist.
    assert_not_found(store.delete_api_key("u-bob", "k-1").await, "api key");
    assert!(store.get_api_key_by_hash("hash-1").await.is_ok());
    store.delete_api_key("u-alice", "k-1").await.unwrap();
    assert_eq!(store.list_api_keys("u-alice").await.unwrap(), vec![key2]);
    assert_not_found(store.delete_api_key("u-alice", "k-1").await, "api key");
    assert_eq!(store.list_api_keys("u-bob").await.unwrap(), vec![key3]);

    // ---- secrets: who sees what
    let org_token = secret("s-org-token", &alice, "TOKEN", Scope::Org);
    let mut alice_token = secret("s-alice-token", &alice, "TOKEN", Scope::User);
    alice_token.description = Some("alice's own".into());
    let alice_db = secret("s-alice-db", &alice, "DB_URL", Scope::User);
    let bob_only = secret("s-bob-only", &bob, "BOB_ONLY", Scope::User);
    let other_token = secret("s-other-token", &carol, "TOKEN", Scope::Org);
    for s in [&org_token, &alice_token, &alice_db, &bob_only, &other_token] {
        store.insert_secret(s).await.unwrap();
    }
    assert_eq!(
        store.get_secret("s-alice-token").await.unwrap(),
        alice_token
    );
    assert_not_found(store.get_secret("s-missing").await, "secret");

    // The user's own secret wins over the org's of the same name.
    assert_eq!(
        store
            .find_visible_secret("o-acme", "u-alice", "TOKEN")
            .await
            .unwrap(),
        alice_token
    );
    assert_eq!(
        store
            .find_visible_secret("o-acme", "u-bob", "TOKEN")
            .await
            .unwrap(),
        org_token
    );
    assert_eq!(
        store
            .find_visible_secret("o-other", "u-carol", "TOKEN")
            .await
            .unwrap(),
        other_token
    );
    // Never another user's private secret, never another org's.
    assert_not_found(
        store.find_visible_secret("o-acme", "u-bob", "DB_URL").await,
        "secret",
    );
    assert_not_found(
        store
            .find_visible_secret("o-acme", "u-alice", "BOB_ONLY")
            .await,
        "secret",
    );
    assert_not_found(
        store
            .find_visible_secret("o-other", "u-carol", "DB_URL")
            .await,
        "secret",
    );
    // The same rules for many names in one query; missing and repeated names are no error.
    let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let mut found = store
        .find_visible_secrets(
            "o-acme",
            "u-alice",
            &names(&["TOKEN", "DB_URL", "BOB_ONLY", "MISSING", "TOKEN"]),
        )
        .await
        .unwrap();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(found, vec![alice_db.clone(), alice_token.clone()]);
    assert_eq!(
        store
            .find_visible_secrets("o-acme", "u-bob", &names(&["TOKEN", "DB_URL"]))
            .await
            .unwrap(),
        vec![org_token.clone()]
    );
    assert_eq!(
        store
            .find_visible_secrets("o-other", "u-carol", &names(&["TOKEN", "DB_URL"]))
            .await
            .unwrap(),
        vec![other_token.clone()]
    );
    assert!(store
        .find_visible_secrets("o-acme", "u-alice", &[])
        .await
        .unwrap()
        .is_empty());

    let seen = store
        .list_visible_secrets("o-acme", "u-alice")
        .await
        .unwrap();
    assert_eq!(
        secret_view(&seen),
        [
            ("DB_URL", Scope::User, "s-alice-db"),
            ("TOKEN", Scope::Org, "s-org-token"),
            ("TOKEN", Scope::User, "s-alice-token"),
        ]
    );
    let seen = store.list_visible_secrets("o-acme", "u-bob").await.unwrap();
    assert_eq!(
        secret_view(&seen),
        [
            ("BOB_ONLY", Scope::User, "s-bob-only"),
            ("TOKEN", Scope::Org, "s-org-token")
        ]
    );
    let seen = store
        .list_visible_secrets("o-other", "u-carol")
        .await
        .unwrap();
    assert_eq!(secret_view(&seen), [("TOKEN", Scope::Org, "s-other-token")]);

    // ---- secrets: names that collide
    assert_conflict(
        store
            .insert_secret(&secret("s-dup-user", &alice, "TOKEN", Scope::User))
            .await,
        "a secret named TOKEN already exists in user scope",
    );
    assert_conflict(
        store
            .insert_secret(&secret("s-dup-org", &bob, "TOKEN", Scope::Org))
            .await,
        "a secret named TOKEN already exists in org scope",
    );
    // Bob may shadow the org's TOKEN with his own, which then wins for him.
    let bob_token = secret("s-bob-token", &bob, "TOKEN", Scope::User);
    store.insert_secret(&bob_token).await.unwrap();
    assert_eq!(
        store
            .find_visible_secret("o-acme", "u-bob", "TOKEN")
            .await
            .unwrap(),
        bob_token
    );

    // ---- secrets: update and delete
    let mut updated = alice_token.clone();
    updated.version = 2;
    updated.description = None;
    updated.sealed = sealed("kek-1", "alice-token-v2");
    updated.updated_at = at(50);
    assert!(store.update_secret(&updated, &alice_token).await.unwrap());
    assert_eq!(store.get_secret("s-alice-token").await.unwrap(), updated);
    // An update computed from the row as it was before is refused (a compare-and-set), and
    // changes nothing: two concurrent updates cannot both store version 2.
    let mut stale = alice_token.clone();
    stale.version = 2;
    stale.sealed = sealed("kek-1", "alice-token-lost");
    stale.updated_at = at(51);
    assert!(!store.update_secret(&stale, &alice_token).await.unwrap());
    assert_eq!(store.get_secret("s-alice-token").await.unwrap(), updated);
    let mut renamed = updated.clone();
    renamed.name = "DB_URL".into();
    assert_conflict(
        store.update_secret(&renamed, &updated).await,
        "a secret named DB_URL already exists in user scope",
    );
    let missing = secret("s-missing", &alice, "X", Scope::User);
    assert!(!store.update_secret(&missing, &missing).await.unwrap());

    store.delete_secret("s-alice-token").await.unwrap();
    assert_not_found(store.get_secret("s-alice-token").await, "secret");
    assert_not_found(store.delete_secret("s-alice-token").await, "secret");
    // With her own gone, Alice sees the org's TOKEN again.
    assert_eq!(
        store
            .find_visible_secret("o-acme", "u-alice", "TOKEN")
            .await
            .unwrap(),
        org_token
    );

    // ---- credentials: who sees what
    let cred_a = credential(
        "c-alice-personal",
        &alice,
        AgentKind::Claude,
        "personal",
        Scope::User,
    );
    let mut cred_b = credential(
        "c-alice-work",
        &alice,
        AgentKind::Claude,
        "work",
        Scope::User,
    );
    cred_b.credential_type = CredentialType::ApiKey;
    cred_b.expires_at = None;
    let cred_codex = credential(
        "c-alice-codex",
        &alice,
        AgentKind::Codex,
        "personal",
        Scope::User,
    );
    let cred_team = credential("c-acme-team", &alice, AgentKind::Claude, "team", Scope::Org);
    let cred_bob = credential(
        "c-bob-personal",
        &bob,
        AgentKind::Claude,
        "personal",
        Scope::User,
    );
    let cred_other = credential(
        "c-other-team",
        &carol,
        AgentKind::Claude,
        "team",
        Scope::Org,
    );
    for c in [
        &cred_a,
        &cred_b,
        &cred_codex,
        &cred_team,
        &cred_bob,
        &cred_other,
    ] {
        store.insert_credential(c).await.unwrap();
    }
    assert_eq!(store.get_credential("c-alice-work").await.unwrap(), cred_b);
    assert_not_found(store.get_credential("c-missing").await, "credential");

    let seen = store
        .list_visible_credentials("o-acme", "u-alice", AgentKind::Claude)
        .await
        .unwrap();
    assert_eq!(
        credential_view(&seen),
        [
            ("personal", Scope::User, "c-alice-personal"),
            ("team", Scope::Org, "c-acme-team"),
            ("work", Scope::User, "c-alice-work"),
        ]
    );
    assert_eq!(seen[0], cred_a);
    // Kinds are kept apart: the codex "personal" is not among Claude's, and vice versa.
    let seen = store
        .list_visible_credentials("o-acme", "u-alice", AgentKind::Codex)
        .await
        .unwrap();
    assert_eq!(seen, vec![cred_codex.clone()]);
    let seen = store
        .list_visible_credentials("o-acme", "u-bob", AgentKind::Claude)
        .await
        .unwrap();
    assert_eq!(
        credential_view(&seen),
        [
            ("personal", Scope::User, "c-bob-personal"),
            ("team", Scope::Org, "c-acme-team")
        ]
    );
    let seen = store
        .list_visible_credentials("o-other", "u-carol", AgentKind::Claude)
        .await
        .unwrap();
    assert_eq!(
        credential_view(&seen),
        [("team", Scope::Org, "c-other-team")]
    );
    assert!(store
        .list_visible_credentials("o-other", "u-carol", AgentKind::Codex)
        .await
        .unwrap()
        .is_empty());

    // ---- credentials: names that collide
    assert_conflict(
        store
            .insert_credential(&credential(
                "c-dup",
                &alice,
                AgentKind::Claude,
                "personal",
                Scope::User,
            ))
            .await,
        "a claude credential named personal already exists in user scope",
    );
    assert_conflict(
        store
            .insert_credential(&credential(
                "c-dup",
                &bob,
                AgentKind::Claude,
                "team",
                Scope::Org,
            ))
            .await,
        "a claude credential named team already exists in org scope",
    );
    // The same name under another kind is another credential.
    store
        .insert_credential(&credential(
            "c-acme-codex-team",
            &bob,
            AgentKind::Codex,
            "team",
            Scope::Org,
        ))
        .await
        .unwrap();

    // ---- credentials: one default per user and kind
    store
        .clear_default_credential("u-alice", AgentKind::Claude, "c-alice-personal")
        .await
        .unwrap();
    let is_default = |id: &'static str| {
        let store = store.clone();
        async move { store.get_credential(id).await.unwrap().is_default }
    };
    assert!(is_default("c-alice-personal").await);
    assert!(!is_default("c-alice-work").await);
    assert!(
        is_default("c-alice-codex").await,
        "another kind is untouched"
    );
    assert!(
        is_default("c-bob-personal").await,
        "another user is untouched"
    );
    // Clearing when there is nothing else to clear is not an error.
    store
        .clear_default_credential("u-carol", AgentKind::Codex, "c-none")
        .await
        .unwrap();

    // ---- credentials: update and delete
    let cred_b1 = store.get_credential("c-alice-work").await.unwrap();
    let mut cred_b2 = cred_b1.clone();
    cred_b2.is_default = true;
    cred_b2.version = 2;
    cred_b2.expires_at = Some(at(7200));
    cred_b2.sealed = sealed("kek-2", "work-v2");
    cred_b2.updated_at = at(60);
    assert!(store.update_credential(&cred_b2, &cred_b1).await.unwrap());
    assert_eq!(store.get_credential("c-alice-work").await.unwrap(), cred_b2);
    // Stale: computed from version 1, which is no longer stored.
    let mut stale = cred_b1.clone();
    stale.version = 2;
    stale.sealed = sealed("kek-2", "work-lost");
    stale.updated_at = at(61);
    assert!(!store.update_credential(&stale, &cred_b1).await.unwrap());
    assert_eq!(store.get_credential("c-alice-work").await.unwrap(), cred_b2);
    let mut clash = cred_b2.clone();
    clash.name = "personal".into();
    assert_conflict(
        store.update_credential(&clash, &cred_b2).await,
        "a claude credential named personal already exists in user scope",
    );
    let missing = credential("c-missing", &alice, AgentKind::Claude, "x", Scope::User);
    assert!(!store.update_credential(&missing, &missing).await.unwrap());
    store.delete_credential("c-bob-personal").await.unwrap();
    assert_not_found(store.get_credential("c-bob-personal").await, "credential");
    assert_not_found(
        store.delete_credential("c-bob-personal").await,
        "credential",
    );

    // ---- sandboxes
    let dev = sandbox("sb-dev", &alice, "dev", 30);
    let ci = sandbox("sb-ci", &alice, "ci", 31);
    let bob_dev = sandbox("sb-bob-dev", &bob, "dev", 32);
    for s in [&dev, &ci, &bob_dev] {
        store.insert_sandbox(s).await.unwrap();
    }
    assert_conflict(
        store
            .insert_sandbox(&sandbox("sb-dup", &alice, "dev", 33))
            .await,
        "a sandbox named dev already exists",
    );
    assert_eq!(store.get_sandbox("sb-dev").await.unwrap(), dev);
    assert_eq!(
        store.get_sandbox_by_name("u-bob", "dev").await.unwrap(),
        bob_dev
    );
    assert_not_found(
        store.get_sandbox_by_name("u-alice", "nope").await,
        "sandbox",
    );
    assert_not_found(store.get_sandbox("sb-missing").await, "sandbox");
    // Its identity and state, read without the JSON columns.
    assert_eq!(store.get_sandbox_head("sb-dev").await.unwrap(), dev.head());
    assert_eq!(
        store
            .get_sandbox_head_by_name("u-bob", "dev")
            .await
            .unwrap(),
        bob_dev.head()
    );
    assert_not_found(store.get_sandbox_head("sb-missing").await, "sandbox");
    assert_not_found(
        store.get_sandbox_head_by_name("u-alice", "nope").await,
        "sandbox",
    );
    let heads = store.list_all_sandbox_heads().await.unwrap();
    let ids: Vec<&str> = heads.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["sb-dev", "sb-ci", "sb-bob-dev"]);
    for (id, head) in &heads {
        let head = head.as_ref().unwrap();
        assert_eq!(*head, store.get_sandbox_head(id).await.unwrap());
    }
    // An error message is set only in the state it was read in, and changes nothing else.
    assert!(!store
        .set_sandbox_error("sb-ci", SandboxState::Running, Some("x"), at(34))
        .await
        .unwrap());
    assert_eq!(store.get_sandbox("sb-ci").await.unwrap(), ci);
    assert!(store
        .set_sandbox_error("sb-ci", ci.state, Some("delete: busy"), at(34))
        .await
        .unwrap());
    let with_error = SandboxRow {
        error_message: Some("delete: busy".into()),
        updated_at: at(34),
        ..ci.clone()
    };
    assert_eq!(store.get_sandbox("sb-ci").await.unwrap(), with_error);
    assert!(store
        .set_sandbox_error("sb-ci", ci.state, None, ci.updated_at)
        .await
        .unwrap());
    assert_eq!(store.get_sandbox("sb-ci").await.unwrap(), ci);

    let mut running = dev.clone();
    running.state = SandboxState::Running;
    running.resolved_agent_credentials = vec![ResolvedAgentCredential {
        kind: AgentKind::Claude,
        outcome: ResolutionOutcome::Resolved,
        name: "personal".into(),
        credential_type: "oauth".into(),
        source: ResolutionSource::UserDefault,
        reason: String::new(),
    }];
    running.injection = InjectionRecord {
        secrets: vec![InjectedSecretRef {
            env: "GITHUB_TOKEN".into(),
            secret_id: "s-org-token".into(),
            name: "TOKEN".into(),
            version: 1,
        }],
        credentials: vec![InjectedCredentialRef {
            kind: AgentKind::Claude,
            credential_id: "c-alice-personal".into(),
            name: "personal".into(),
            credential_type: CredentialType::Oauth,
            version: 1,
        }],
    };
    running.updated_at = at(40);
    // An update writes every column but the state: that changes only through a transition.
    store.update_sandbox(&running).await.unwrap();
    let still_initializing = SandboxRow {
        state: SandboxState::Initializing,
        ..running.clone()
    };
    assert_eq!(
        store.get_sandbox("sb-dev").await.unwrap(),
        still_initializing
    );
    // A start records what it injects in its transition's statement: only from the state it
    // was read in, and nothing at all otherwise.
    let started = |from, injection| {
        store.start_sandbox("sb-dev", from, SandboxState::Running, injection, at(40))
    };
    let nothing = InjectionRecord::default();
    assert!(!started(SandboxState::Stopped, &nothing).await.unwrap());
    assert_eq!(
        store.get_sandbox("sb-dev").await.unwrap(),
        still_initializing
    );
    store
        .set_sandbox_error("sb-dev", SandboxState::Initializing, Some("old"), at(39))
        .await
        .unwrap();
    assert!(started(SandboxState::Initializing, &running.injection)
        .await
        .unwrap());
    assert_eq!(store.get_sandbox("sb-dev").await.unwrap(), running);
    // A transition happens only from the expected state, and changes only state, message and
    // time.
    assert!(!store
        .transition_sandbox(
            "sb-dev",
            SandboxState::Initializing,
            SandboxState::Failed,
            Some("x"),
            at(41)
        )
        .await
        .unwrap());
    assert_eq!(store.get_sandbox("sb-dev").await.unwrap(), running);
    assert!(!store
        .transition_sandbox(
            "sb-missing",
            SandboxState::Running,
            SandboxState::Failed,
            None,
            at(41)
        )
        .await
        .unwrap());
    let mut failed = ci.clone();
    failed.state = SandboxState::Failed;
    failed.error_message = Some("bwrap exited with 1".into());
    failed.updated_at = at(42);
    assert!(store
        .transition_sandbox(
            "sb-ci",
            ci.state,
            SandboxState::Failed,
            Some("bwrap exited with 1"),
            at(42)
        )
        .await
        .unwrap());
    assert_eq!(store.get_sandbox("sb-ci").await.unwrap(), failed);
    store.update_sandbox(&failed).await.unwrap();
    assert_eq!(
        store.get_sandbox_by_name("u-alice", "ci").await.unwrap(),
        failed
    );
    assert_conflict(
        store
            .update_sandbox(&SandboxRow {
                name: "dev".into(),
                ..failed.clone()
            })
            .await,
        "a sandbox named dev already exists",
    );
    assert_not_found(
        store
            .update_sandbox(&sandbox("sb-missing", &alice, "x", 0))
            .await,
        "sandbox",
    );

    assert_eq!(
        store.list_sandboxes("u-alice").await.unwrap(),
        vec![failed.clone(), running.clone()]
    );
    assert_eq!(
        store.list_all_sandboxes().await.unwrap(),
        vec![running.clone(), failed.clone(), bob_dev.clone()]
    );
    // ---- ssh tokens: by hash; revoked only by their sandbox and user; gone with the sandbox
    let token = amika_store::SshTokenRow {
        id: "sst-1".into(),
        hash: "hash-ssh-1".into(),
        user_id: "u-alice".into(),
        sandbox_id: "sb-ci".into(),
        created_at: at(40),
        expires_at: at(40 + 3600),
        revoked_at: None,
    };
    store.insert_ssh_token(&token).await.unwrap();
    assert_conflict(
        store.insert_ssh_token(&token).await,
        "this SSH token already exists",
    );
    assert_eq!(
        store.get_ssh_token_by_hash("hash-ssh-1").await.unwrap(),
        token
    );
    assert_not_found(store.get_ssh_token_by_hash("hash-other").await, "ssh token");
    for (sandbox, user) in [("sb-dev", "u-alice"), ("sb-ci", "u-bob")] {
        let wrong = store
            .revoke_ssh_token("hash-ssh-1", sandbox, user, at(41))
            .await;
        assert_not_found(wrong, "ssh token");
    }
    store
        .revoke_ssh_token("hash-ssh-1", "sb-ci", "u-alice", at(42))
        .await
        .unwrap();
    let again = store
        .revoke_ssh_token("hash-ssh-1", "sb-ci", "u-alice", at(43))
        .await;
    assert_not_found(again, "ssh token");
    let revoked = store.get_ssh_token_by_hash("hash-ssh-1").await.unwrap();
    assert_eq!(revoked.revoked_at, Some(at(42)));

    store.delete_sandbox("sb-ci").await.unwrap();
    assert_eq!(
        store.list_sandboxes("u-alice").await.unwrap(),
        vec![running]
    );
    assert_not_found(store.delete_sandbox("sb-ci").await, "sandbox");
    // Its SSH tokens went with it.
    assert_not_found(store.get_ssh_token_by_hash("hash-ssh-1").await, "ssh token");
    assert!(store.list_sandboxes("u-carol").await.unwrap().is_empty());

    // ---- audit: newest first, limited, per org
    for (id, seconds) in [
        ("a-3", 203),
        ("a-1", 201),
        ("a-5", 205),
        ("a-2", 202),
        ("a-4", 204),
    ] {
        store
            .insert_audit_event(&audit(id, &acme, seconds))
            .await
            .unwrap();
    }
    store
        .insert_audit_event(&audit("a-other", &other, 206))
        .await
        .unwrap();
    let newest = store.list_audit_events("o-acme", None, 3).await.unwrap();
    assert_eq!(
        newest,
        vec![
            audit("a-5", &acme, 205),
            audit("a-4", &acme, 204),
            audit("a-3", &acme, 203)
        ]
    );
    assert_eq!(
        store
            .list_audit_events("o-acme", None, 100)
            .await
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        store.list_audit_events("o-other", None, 100).await.unwrap(),
        vec![audit("a-other", &other, 206)]
    );
    // Many at once, all or none: a batch with a duplicate id writes nothing, and a batch larger
    // than one statement's share of bound parameters still goes in whole.
    let clash = [audit("b-new", &other, 300), audit("a-other", &other, 301)];
    assert!(store.insert_audit_events(&clash).await.is_err());
    assert_eq!(
        store
            .list_audit_events("o-other", None, 100)
            .await
            .unwrap()
            .len(),
        1
    );
    let many: Vec<AuditRow> = (0..1001)
        .map(|i| audit(&format!("b-{i:04}"), &other, 400 + i))
        .collect();
    store.insert_audit_events(&many).await.unwrap();
    store.insert_audit_events(&[]).await.unwrap();
    let newest = store.list_audit_events("o-other", None, 2).await.unwrap();
    assert_eq!(newest, vec![many[1000].clone(), many[999].clone()]);
    assert_eq!(
        store
            .list_audit_events("o-other", None, 2000)
            .await
            .unwrap()
            .len(),
        1002
    );
    // One user's events are filtered before the limit: newer events of others do not crowd
    // them out of it.
    let bobs: Vec<AuditRow> = (0..5)
        .map(|i| AuditRow {
            user_id: "u-bob".into(),
            ..audit(&format!("c-bob-{i}"), &other, 2000 + i)
        })
        .collect();
    store.insert_audit_events(&bobs).await.unwrap();
    assert_eq!(
        store
            .list_audit_events("o-other", Some("u-alice"), 3)
            .await
            .unwrap(),
        vec![many[1000].clone(), many[999].clone(), many[998].clone()]
    );
    assert_eq!(
        store
            .list_audit_events("o-other", Some("u-bob"), 100)
            .await
            .unwrap(),
        bobs.iter().rev().cloned().collect::<Vec<_>>()
    );
    assert_eq!(
        store.list_audit_events("o-other", None, 2).await.unwrap(),
        vec![bobs[4].clone(), bobs[3].clone()]
    );
    assert!(store
        .list_audit_events("o-acme", Some("u-bob"), 100)
        .await
        .unwrap()
        .is_empty());

    // ---- vault: canary, KEKs in use, rotation
    store
        .set_vault_canary(&sealed("kek-0", "canary"))
        .await
        .unwrap();
    store
        .set_vault_canary(&sealed("kek-1", "canary"))
        .await
        .unwrap();
    assert_eq!(
        store.vault_canary().await.unwrap(),
        Some(sealed("kek-1", "canary"))
    );
    assert_eq!(store.kek_ids_in_use().await.unwrap(), ["kek-1", "kek-2"]);

    let all = store.all_sealed().await.unwrap();
    let count = |table| all.iter().filter(|r| r.table == table).count();
    // Secrets left: org TOKEN, alice DB_URL, BOB_ONLY, other TOKEN, bob TOKEN. Credentials: six.
    assert_eq!(
        (
            count(SealedTable::Secret),
            count(SealedTable::Credential),
            count(SealedTable::Canary)
        ),
        (5, 6, 1)
    );
    let canary = all.iter().find(|r| r.table == SealedTable::Canary).unwrap();
    assert_eq!(
        canary,
        &SealedRef {
            table: SealedTable::Canary,
            kind: None,
            id: "canary".into(),
            org_id: String::new(),
            user_id: String::new(),
            version: 0,
            sealed: sealed("kek-1", "canary"),
        }
    );
    let work = all.iter().find(|r| r.id == "c-alice-work").unwrap();
    assert_eq!(
        (
            work.table,
            work.org_id.as_str(),
            work.user_id.as_str(),
            work.version
        ),
        (SealedTable::Credential, "o-acme", "u-alice", 2)
    );
    assert_eq!(work.sealed, sealed("kek-2", "work-v2"));
    // A credential's kind comes along (it is part of its AAD); secrets have none.
    assert_eq!(work.kind, Some(amika_types::AgentKind::Claude));
    assert!(all
        .iter()
        .filter(|r| r.table == SealedTable::Secret)
        .all(|r| r.kind.is_none()));

    // A batch with one stale row (its version moved on) changes nothing at all.
    let rewrap = |r: &SealedRef| SealedRef {
        sealed: sealed("kek-3", &format!("{}-rewrapped", r.id)),
        ..r.clone()
    };
    let mut stale: Vec<SealedRef> = all.iter().map(rewrap).collect();
    stale
        .iter_mut()
        .find(|r| r.id == "c-alice-work")
        .unwrap()
        .version = 1;
    assert!(matches!(
        store.replace_sealed(&stale).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.kek_ids_in_use().await.unwrap(), ["kek-1", "kek-2"]);
    assert_eq!(store.all_sealed().await.unwrap(), all);

    let rotated: Vec<SealedRef> = all.iter().map(rewrap).collect();
    store.replace_sealed(&rotated).await.unwrap();
    assert_eq!(store.kek_ids_in_use().await.unwrap(), ["kek-3"]);
    let after = store.all_sealed().await.unwrap();
    assert_eq!(after.len(), rotated.len());
    for r in &rotated {
        assert!(after.contains(r), "{} was not replaced", r.id);
    }
    // Rotation touches the sealed material only.
    let org_secret = store.get_secret("s-org-token").await.unwrap();
    assert_eq!(org_secret.sealed, sealed("kek-3", "s-org-token-rewrapped"));
    assert_eq!(
        SecretRow {
            sealed: org_token.sealed.clone(),
            ..org_secret
        },
        org_token
    );
    assert_eq!(
        store.vault_canary().await.unwrap(),
        Some(sealed("kek-3", "canary-rewrapped"))
    );

    agent_sessions_story(store.as_ref()).await;
    snapshots_story(store.as_ref()).await;
    ssh_keys_story(store.as_ref()).await;
}

/// SSH public keys: a key (its fingerprint) once across the server, a name once per user; the
/// conflict says which; only the owner deletes.
async fn ssh_keys_story(store: &dyn Store) {
    let o = org("org_keys", "keys-org");
    store.create_org(&o).await.unwrap();
    let (ann, bob) = (
        user("u_kann", &o, "kann", false),
        user("u_kbob", &o, "kbob", false),
    );
    for u in [&ann, &bob] {
        store.create_user(u).await.unwrap();
    }
    let key = |id: &str, owner: &UserRow, name: &str, fingerprint: &str| SshPublicKeyRow {
        id: id.into(),
        user_id: owner.id.clone(),
        name: name.into(),
        key_type: "ssh-ed25519".into(),
        public_key: format!("ssh-ed25519 AAAA{fingerprint}"),
        fingerprint: fingerprint.into(),
        created_at: at(1),
    };
    let laptop = key("ssk_1", &ann, "laptop", "SHA256:one");
    store.insert_ssh_public_key(&laptop).await.unwrap();
    store
        .insert_ssh_public_key(&key("ssk_2", &ann, "desk", "SHA256:two"))
        .await
        .unwrap();
    assert_conflict(
        store
            .insert_ssh_public_key(&key("ssk_3", &bob, "mine", "SHA256:one"))
            .await,
        "this public key is already registered (keys are unique across the server)",
    );
    assert_conflict(
        store
            .insert_ssh_public_key(&key("ssk_4", &ann, "laptop", "SHA256:four"))
            .await,
        "you already have an SSH public key named \"laptop\"",
    );
    store
        .insert_ssh_public_key(&key("ssk_5", &bob, "laptop", "SHA256:five"))
        .await
        .unwrap();
    let names: Vec<String> = store
        .list_ssh_public_keys("u_kann")
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["desk", "laptop"]);
    assert_eq!(
        store
            .get_ssh_public_key_by_fingerprint("SHA256:one")
            .await
            .unwrap(),
        laptop
    );
    assert_not_found(
        store.delete_ssh_public_key("ssk_1", "u_kbob").await,
        "ssh public key",
    );
    store
        .delete_ssh_public_key("ssk_1", "u_kann")
        .await
        .unwrap();
    assert_not_found(
        store.get_ssh_public_key_by_fingerprint("SHA256:one").await,
        "ssh public key",
    );
}

/// Snapshots: a name per user, updates of state/size/key only, listing per user newest first.
async fn snapshots_story(store: &dyn Store) {
    let o = org("org_snap", "snap-org");
    store.create_org(&o).await.unwrap();
    let (ann, bob) = (
        user("u_ann", &o, "ann", false),
        user("u_bob", &o, "bob", false),
    );
    for u in [&ann, &bob] {
        store.create_user(u).await.unwrap();
    }
    let row = |id: &str, owner: &UserRow, name: &str, created: i64| SnapshotRow {
        id: id.into(),
        org_id: owner.org_id.clone(),
        user_id: owner.id.clone(),
        name: name.into(),
        description: Some("prepared".into()),
        scope: Scope::User,
        mode: SnapshotMode::ScrubAndDelete,
        state: SnapshotState::Capturing,
        error_message: None,
        provider: "local".into(),
        source_sandbox_id: Some("sbx_1".into()),
        source_sandbox_name: Some("dev".into()),
        repo: Some(RepoRecord {
            url: Some("https://example.com/r.git".into()),
            name: "r".into(),
            branch: Some("main".into()),
            commit: None,
        }),
        preset: None,
        size: Some("m".into()),
        size_bytes: None,
        sealed: Sealed {
            kek_id: "kek-1".into(),
            wrapped_key: b"wrapped".to_vec(),
            ciphertext: Vec::new(),
        },
        created_at: at(created),
        updated_at: at(created),
    };
    let first = row("snap_1", &ann, "base", 1);
    store.insert_snapshot(&first).await.unwrap();
    store
        .insert_snapshot(&row("snap_2", &ann, "later", 2))
        .await
        .unwrap();
    // Another user may use the same name; the same user may not.
    store
        .insert_snapshot(&row("snap_3", &bob, "base", 3))
        .await
        .unwrap();
    assert_conflict(
        store.insert_snapshot(&row("snap_4", &ann, "base", 4)).await,
        "a snapshot named \"base\" already exists",
    );
    assert_eq!(store.get_snapshot("snap_1").await.unwrap(), first);
    let mut active = first.clone();
    active.state = SnapshotState::Active;
    active.size_bytes = Some(12_345);
    active.updated_at = at(5);
    store.update_snapshot(&active).await.unwrap();
    assert_eq!(
        store
            .find_visible_snapshot("org_snap", "u_ann", "base")
            .await
            .unwrap(),
        active
    );
    // Org scope: bob's shared snapshot is seen by ann; her own of the same name shadows it.
    let mut shared = row("snap_5", &bob, "shared", 6);
    shared.scope = Scope::Org;
    shared.size_bytes = Some(1_000);
    store.insert_snapshot(&shared).await.unwrap();
    let mut clash = row("snap_6", &ann, "shared", 7);
    clash.scope = Scope::Org;
    assert_conflict(
        store.insert_snapshot(&clash).await,
        "a snapshot named \"shared\" already exists",
    );
    assert_eq!(
        store
            .find_visible_snapshot("org_snap", "u_ann", "shared")
            .await
            .unwrap(),
        shared
    );
    let own = row("snap_7", &ann, "shared", 8);
    store.insert_snapshot(&own).await.unwrap();
    assert_eq!(
        store
            .find_visible_snapshot("org_snap", "u_ann", "shared")
            .await
            .unwrap(),
        own
    );
    // Another org sees none of them.
    assert_not_found(
        store
            .find_visible_snapshot("org_other", "u_ann", "shared")
            .await,
        "snapshot",
    );
    let ids = |rows: Vec<SnapshotRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .list_visible_snapshots("org_snap", "u_ann")
            .await
            .unwrap()),
        ["snap_7", "snap_5", "snap_2", "snap_1"]
    );
    assert_eq!(
        ids(store
            .list_visible_snapshots("org_snap", "u_bob")
            .await
            .unwrap()),
        ["snap_5", "snap_3"]
    );
    assert_eq!(
        store.snapshot_usage("org_snap", "u_ann").await.unwrap(),
        SnapshotUsage {
            user_bytes: 12_345,
            org_bytes: 13_345
        }
    );
    assert_eq!(
        store.snapshot_usage("org_none", "u_ann").await.unwrap(),
        SnapshotUsage {
            user_bytes: 0,
            org_bytes: 0
        }
    );
    assert_eq!(store.list_all_snapshots().await.unwrap().len(), 5);
    store.delete_snapshot("snap_1").await.unwrap();
    assert_not_found(store.get_snapshot("snap_1").await, "snapshot");
    assert_not_found(store.delete_snapshot("snap_1").await, "snapshot");
}

fn agent_session(id: &str, sandbox: &str, agent: AgentKind, updated: i64) -> AgentSessionRow {
    AgentSessionRow {
        id: id.into(),
        sandbox_id: sandbox.into(),
        org_id: "o-acme".into(),
        user_id: "u-alice".into(),
        agent,
        agent_session_id: None,
        credential_name: "personal".into(),
        status: AgentSessionStatus::Idle,
        ended_at: None,
        metadata: serde_json::Map::new(),
        created_at: at(300),
        updated_at: at(updated),
    }
}

fn agent_turn(id: &str, session: &AgentSessionRow, created: i64) -> AgentTurnRow {
    AgentTurnRow {
        id: id.into(),
        session_id: session.id.clone(),
        sandbox_id: session.sandbox_id.clone(),
        state: AgentJobState::Running,
        message: "add tests for the parser ✓ [REDACTED:personal]".into(),
        response: None,
        is_error: false,
        error_code: None,
        exit_code: None,
        is_new_session: true,
        agent_session_id: None,
        cost_usd: None,
        duration_ms: None,
        deadline_at: at(created + 600),
        created_at: at(created),
        updated_at: at(created),
        finished_at: None,
    }
}

/// Sessions and turns of the agents in sandboxes: per sandbox, newest first; turns oldest
/// first; gone with their sandbox. Runs at the end of the story, on `sb-dev` (Alice) and
/// `sb-bob-dev`, the sandboxes left.
async fn agent_sessions_story(store: &dyn Store) {
    let claude = agent_session("as-1", "sb-dev", AgentKind::Claude, 301);
    let codex = agent_session("as-2", "sb-dev", AgentKind::Codex, 302);
    let bobs = agent_session("as-3", "sb-bob-dev", AgentKind::Claude, 303);
    for s in [&claude, &codex, &bobs] {
        store.insert_agent_session(s).await.unwrap();
    }
    assert_conflict(
        store.insert_agent_session(&claude).await,
        "an agent session with id as-1 already exists",
    );
    // A session needs its sandbox.
    assert!(store
        .insert_agent_session(&agent_session("as-x", "sb-missing", AgentKind::Claude, 0))
        .await
        .is_err());
    assert_eq!(store.get_agent_session("as-1").await.unwrap(), claude);
    assert_not_found(store.get_agent_session("as-missing").await, "agent session");
    assert_eq!(
        store.list_agent_sessions("sb-dev").await.unwrap(),
        vec![codex.clone(), claude.clone()]
    );

    // The agent gave its session id: the session moves to the front. Its status, end and
    // metadata (nested, non-ASCII) round-trip.
    let resumed = AgentSessionRow {
        agent_session_id: Some("8f0c2d6e-claude".into()),
        status: AgentSessionStatus::Completed,
        ended_at: Some(at(309)),
        metadata: serde_json::json!({"ticket": "ENG-1 ✓", "tags": ["a", 2], "n": {"x": null}})
            .as_object()
            .unwrap()
            .clone(),
        updated_at: at(310),
        ..claude.clone()
    };
    store.update_agent_session(&resumed).await.unwrap();
    assert_eq!(
        store.list_agent_sessions("sb-dev").await.unwrap(),
        vec![resumed.clone(), codex.clone()]
    );
    assert_eq!(
        store.list_agent_sessions("sb-bob-dev").await.unwrap(),
        vec![bobs.clone()]
    );
    assert_not_found(
        store
            .update_agent_session(&agent_session("as-missing", "sb-dev", AgentKind::Claude, 0))
            .await,
        "agent session",
    );

    // Turns: oldest first, every field round-trips.
    let first = AgentTurnRow {
        state: AgentJobState::Done,
        response: Some("Added 3 tests; token [REDACTED:personal]".into()),
        exit_code: Some(0),
        agent_session_id: Some("8f0c2d6e-claude".into()),
        cost_usd: Some(0.0123),
        duration_ms: Some(4321),
        finished_at: Some(at(305)),
        updated_at: at(305),
        ..agent_turn("at-1", &resumed, 304)
    };
    let second = AgentTurnRow {
        is_new_session: false,
        ..agent_turn("at-2", &resumed, 306)
    };
    // Inserted out of order on purpose.
    store.insert_agent_turn(&second).await.unwrap();
    store.insert_agent_turn(&first).await.unwrap();
    assert_conflict(
        store.insert_agent_turn(&first).await,
        "an agent turn with id at-1 already exists",
    );
    assert!(store
        .insert_agent_turn(&agent_turn(
            "at-x",
            &agent_session("as-missing", "sb-dev", AgentKind::Codex, 0),
            0
        ))
        .await
        .is_err());
    assert_eq!(store.get_agent_turn("at-1").await.unwrap(), first);
    assert_not_found(store.get_agent_turn("at-missing").await, "agent turn");
    assert_eq!(
        store.list_agent_turns("as-1").await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    assert!(store.list_agent_turns("as-2").await.unwrap().is_empty());

    // The second send crashed.
    let crashed = AgentTurnRow {
        state: AgentJobState::Failed,
        response: Some("the agent exited with status 3".into()),
        is_error: true,
        error_code: Some("agent_crashed".into()),
        exit_code: Some(3),
        duration_ms: Some(12),
        finished_at: Some(at(307)),
        updated_at: at(307),
        ..second.clone()
    };
    store.update_agent_turn(&crashed).await.unwrap();
    assert_eq!(store.get_agent_turn("at-2").await.unwrap(), crashed);
    assert_not_found(
        store
            .update_agent_turn(&agent_turn("at-missing", &resumed, 0))
            .await,
        "agent turn",
    );

    // Deleting a sandbox deletes its sessions and their turns, and nothing else.
    store.delete_sandbox("sb-dev").await.unwrap();
    assert!(store
        .list_agent_sessions("sb-dev")
        .await
        .unwrap()
        .is_empty());
    assert_not_found(store.get_agent_session("as-1").await, "agent session");
    assert_not_found(store.get_agent_turn("at-1").await, "agent turn");
    assert!(store.list_agent_turns("as-1").await.unwrap().is_empty());
    assert_eq!(store.get_agent_session("as-3").await.unwrap(), bobs);
}

/// SQL beside the store, on its database: how a column gets a value the store would never write.
enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Raw {
    async fn set(&mut self, table: &str, id: &str, column: &str, text: &str) {
        let sql = format!("UPDATE {table} SET {column} = $1 WHERE id = $2");
        let changed = match self {
            Raw::Sqlite(c) => sqlx::query(&sql)
                .bind(text)
                .bind(id)
                .execute(c)
                .await
                .map(|done| done.rows_affected()),
            Raw::Postgres(c) => sqlx::query(&sql)
                .bind(text)
                .bind(id)
                .execute(c)
                .await
                .map(|done| done.rows_affected()),
        }
        .unwrap();
        assert_eq!(changed, 1, "{sql}");
    }

    async fn get(&mut self, table: &str, id: &str, column: &str) -> String {
        let sql = format!("SELECT {column} FROM {table} WHERE id = $1");
        let text = match self {
            Raw::Sqlite(c) => sqlx::query_scalar(&sql).bind(id).fetch_one(c).await,
            Raw::Postgres(c) => sqlx::query_scalar(&sql).bind(id).fetch_one(c).await,
        };
        text.unwrap()
    }
}

/// `result` is `Corrupt`, naming the table, the row and the column, and not the value.
fn assert_corrupt<T: std::fmt::Debug>(result: Result<T, StoreError>, want: [&str; 3]) {
    match result {
        Err(StoreError::Corrupt(message)) => {
            let [table, id, column] = want;
            assert!(
                message.contains(&format!("{table} row {id:?}, column {column}:")),
                "{message}"
            );
            assert!(!message.contains("leak-marker"), "{message}");
        }
        other => panic!("expected Corrupt naming {want:?}, got {other:?}"),
    }
}

/// A JSON column that does not decode into its type — not JSON at all, or JSON of another
/// shape — makes every read of its row `Corrupt`, never a default; the other rows still read.
/// And what the store writes is byte for byte what it wrote before the columns were typed.
async fn corrupt_rows_story(store: Arc<dyn Store>, mut raw: Raw) {
    let org = org("o-corrupt", "corrupt");
    let owner = user("u-corrupt", &org, "owner", false);
    store.create_org(&org).await.unwrap();
    store.create_user(&owner).await.unwrap();
    let mut good = sandbox("sb-good", &owner, "good", 50);
    good.options = SandboxOptions::new(NetworkMode::None, Some(64), None);
    good.injection = InjectionRecord {
        secrets: vec![InjectedSecretRef {
            env: "DB".into(),
            secret_id: "s-1".into(),
            name: "DATABASE_URL".into(),
            version: 1,
        }],
        credentials: vec![InjectedCredentialRef {
            kind: AgentKind::Claude,
            credential_id: "c-1".into(),
            name: "c".into(),
            credential_type: CredentialType::Oauth,
            version: 2,
        }],
    };
    let victim = sandbox("sb-victim", &owner, "victim", 51);
    store.insert_sandbox(&good).await.unwrap();
    store.insert_sandbox(&victim).await.unwrap();

    // The text of each column as the untyped store wrote it (`json!(value).to_string()`).
    for (column, text) in [
        ("secret_env_vars", r#"{"GITHUB_TOKEN":"TOKEN"}"#),
        ("agent_credentials", r#"[{"kind":"claude"}]"#),
        ("resolved_agent_credentials", "[]"),
        ("secret_names", r#"["TOKEN"]"#),
        (
            "injection",
            r#"{"credentials":[{"credential_id":"c-1","kind":"claude","name":"c","type":"oauth","version":2}],"secrets":[{"env":"DB","name":"DATABASE_URL","secret_id":"s-1","version":1}]}"#,
        ),
        (
            "options",
            r#"{"memory_mib":64,"network":"none","pids":null}"#,
        ),
    ] {
        assert_eq!(
            raw.get("sandboxes", "sb-good", column).await,
            text,
            "{column}"
        );
    }

    let resolved = r#"[{"kind":"claude","outcome":"resolved","name":"n","type":"oauth","source":"leak-marker","reason":""}]"#;
    let cases = [
        ("secret_env_vars", r#"{"ENV": ["leak-marker"]}"#),
        ("agent_credentials", r#"[{"kind": "leak-marker"}]"#),
        ("resolved_agent_credentials", resolved),
        ("secret_names", r#"{"leak-marker": 1}"#),
        (
            "injection",
            r#"{"secrets": [], "credentials": [{"name": "leak-marker"}]}"#,
        ),
        ("options", r#"{"network": "leak-marker"}"#),
        // A missing network mode must not become `egress`.
        ("options", r#"{"memory_mib": 64}"#),
    ];
    let not_json = [
        "secret_env_vars",
        "agent_credentials",
        "resolved_agent_credentials",
    ]
    .into_iter()
    .chain(["secret_names", "injection", "options"])
    .map(|column| (column, "{leak-marker"));
    for (column, text) in cases.into_iter().chain(not_json) {
        let before = raw.get("sandboxes", "sb-victim", column).await;
        raw.set("sandboxes", "sb-victim", column, text).await;
        let want = ["sandboxes", "sb-victim", column];
        assert_corrupt(store.get_sandbox("sb-victim").await, want);
        assert_corrupt(store.get_sandbox_by_name("u-corrupt", "victim").await, want);
        assert_corrupt(store.list_sandboxes("u-corrupt").await, want);
        assert_corrupt(store.list_all_sandboxes().await, want);
        // Its identity and state still read: enough to reconcile and delete it.
        assert_eq!(
            store.get_sandbox_head("sb-victim").await.unwrap(),
            victim.head()
        );
        assert_eq!(store.get_sandbox("sb-good").await.unwrap(), good);
        raw.set("sandboxes", "sb-victim", column, &before).await;
        assert_eq!(store.get_sandbox("sb-victim").await.unwrap(), victim);
    }

    // An audit event's detail is free-form JSON, but JSON.
    let event = AuditRow {
        user_id: owner.id.clone(),
        ..audit("e-corrupt", &org, 60)
    };
    store.insert_audit_event(&event).await.unwrap();
    raw.set("audit_events", "e-corrupt", "detail", "{leak-marker")
        .await;
    assert_corrupt(
        store.list_audit_events("o-corrupt", None, 10).await,
        ["audit_events", "e-corrupt", "detail"],
    );
}

#[tokio::test]
async fn story_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("amika.db").display());
    story(amika_store::connect(&url).await.unwrap()).await;

    // Reopening migrates nothing twice and finds everything where it was left.
    let reopened = amika_store::connect(&url).await.unwrap();
    // 4 users of the main story, 2 of the snapshots', 2 of the SSH keys'.
    assert_eq!(reopened.count_users().await.unwrap(), 8);

    use sqlx::Connection;
    let raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    corrupt_rows_story(reopened, Raw::Sqlite(raw)).await;

    // The in-memory spelling works too, and keeps its data across queries.
    let memory = amika_store::connect("sqlite::memory:").await.unwrap();
    memory.create_org(&org("o-mem", "mem")).await.unwrap();
    assert_eq!(memory.get_org_by_name("mem").await.unwrap().id, "o-mem");

    assert!(matches!(
        amika_store::connect("mysql://localhost/amika").await,
        Err(StoreError::BadUrl(_))
    ));
}

#[tokio::test]
async fn story_postgres() {
    // A fresh database per run, so reruns and parallel runs never see each other's rows.
    let Some(database) = amika_testkit::FreshDatabase::for_test("amika_story") else {
        eprintln!("story_postgres skipped: AMIKA_SKIP_POSTGRES=1");
        return;
    };

    let started = std::time::Instant::now();
    let store = amika_store::connect(database.url()).await.unwrap();
    story(store.clone()).await;
    eprintln!("story_postgres: story took {:?}", started.elapsed());
    let raw = <sqlx::PgConnection as sqlx::Connection>::connect(database.url())
        .await
        .unwrap();
    corrupt_rows_story(store, Raw::Postgres(raw)).await;

    // FORCE (inside): the story's pool may still be closing its connections.
    database.drop_database().unwrap();
}
