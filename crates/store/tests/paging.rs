//! Pages of the visible secrets, on both backends: walked page by page with secrets inserted
//! between pages (before and after the position reached, in both scopes), every secret that
//! existed throughout comes exactly once, in list order, and another user's never.
//!
//! `secret_pages_postgres` needs `scripts/with-postgres.sh` (see story.rs).

use std::sync::Arc;

use amika_store::{OrgRow, Sealed, SecretRow, Store, UserRow};
use amika_types::Scope;
use chrono::Utc;

fn secret(id: &str, owner: &UserRow, name: &str, scope: Scope) -> SecretRow {
    SecretRow {
        id: id.into(),
        org_id: owner.org_id.clone(),
        user_id: owner.id.clone(),
        name: name.into(),
        description: None,
        scope,
        version: 1,
        sealed: Sealed {
            kek_id: "kek-1".into(),
            wrapped_key: b"wrapped".to_vec(),
            ciphertext: b"cipher".to_vec(),
        },
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

async fn secret_pages(store: Arc<dyn Store>) {
    let o = OrgRow {
        id: "o_pages".into(),
        name: "pages".into(),
        created_at: Utc::now(),
    };
    store.create_org(&o).await.unwrap();
    let user = |id: &str| UserRow {
        id: id.into(),
        org_id: o.id.clone(),
        name: id.into(),
        is_admin: false,
        created_at: Utc::now(),
    };
    let (ann, bob) = (user("u_pann"), user("u_pbob"));
    for u in [&ann, &bob] {
        store.create_user(u).await.unwrap();
    }
    // Names with even numbers exist from the start, in both scopes for every third one (so a
    // page boundary can fall between the two scopes of one name); bob's own are never visible.
    let mut originals = Vec::new();
    for n in (0..60).step_by(2) {
        let name = format!("s{n:03}");
        store
            .insert_secret(&secret(&format!("sec_u{n}"), &ann, &name, Scope::User))
            .await
            .unwrap();
        originals.push((name.clone(), Scope::User));
        if n % 3 == 0 {
            store
                .insert_secret(&secret(&format!("sec_o{n}"), &ann, &name, Scope::Org))
                .await
                .unwrap();
            originals.push((name.clone(), Scope::Org));
        }
        store
            .insert_secret(&secret(&format!("sec_b{n}"), &bob, &name, Scope::User))
            .await
            .unwrap();
    }
    originals.sort_by(|a, b| (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())));
    let all = store
        .list_visible_secrets("o_pages", "u_pann")
        .await
        .unwrap();
    let all: Vec<(String, Scope)> = all.into_iter().map(|r| (r.name, r.scope)).collect();
    assert_eq!(all, originals, "the unpaged list is in (name, scope) order");

    let mut seen: Vec<(String, Scope)> = Vec::new();
    let mut after = (String::new(), String::new());
    for round in 0.. {
        assert!(round < 100, "paging did not end");
        let page = store
            .list_visible_secrets_after("o_pages", "u_pann", (&after.0, &after.1), 7)
            .await
            .unwrap();
        assert!(page.len() <= 7);
        assert!(page.iter().all(|r| r.user_id == ann.id), "only ann's rows");
        seen.extend(page.iter().map(|r| (r.name.clone(), r.scope)));
        let Some(last) = page.last() else { break };
        after = (last.name.clone(), last.scope.as_str().to_string());
        // Between the first pages: a name before the position reached, one right after it,
        // one at the end (a list that grows after the position forever never ends).
        if round >= 5 {
            continue;
        }
        for (i, name) in [
            format!("s{:03}", round * 2 + 1),
            format!("{}a", last.name),
            format!("z{round}"),
        ]
        .into_iter()
        .enumerate()
        {
            store
                .insert_secret(&secret(
                    &format!("sec_new{round}_{i}"),
                    &ann,
                    &name,
                    Scope::User,
                ))
                .await
                .unwrap();
        }
    }
    let originals_seen: Vec<(String, Scope)> = seen
        .iter()
        .filter(|s| originals.contains(s))
        .cloned()
        .collect();
    assert_eq!(
        originals_seen, originals,
        "every original secret once, in order"
    );
    let mut unique = seen.clone();
    unique.sort_by(|a, b| (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())));
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no secret twice");
    assert_eq!(unique, seen, "pages come in list order");
}

#[tokio::test]
async fn secret_pages_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("amika.db").display());
    secret_pages(amika_store::connect(&url).await.unwrap()).await;
}

#[tokio::test]
async fn secret_pages_postgres() {
    let Some(database) = amika_testkit::FreshDatabase::for_test("amika_pages") else {
        eprintln!("secret_pages_postgres skipped: AMIKA_SKIP_POSTGRES=1");
        return;
    };
    secret_pages(amika_store::connect(database.url()).await.unwrap()).await;
    database.drop_database().unwrap();
}
