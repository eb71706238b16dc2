//! The sandbox page's SSH access through the real router: the card only when the server has an
//! SSH endpoint, the command minted on request (CSRF-checked) with its expiry, a token that
//! logs in until revoked from the page, the token-free command once a key is registered, and a
//! stopped sandbox told to start first.

use axum::http::StatusCode;

use super::flow_tests::{Answer, Ui};
use amika_types as t;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host";

async fn ssh_ui() -> Ui {
    let ui = Ui::with(|c| c.warm_sandboxes = 0).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    crate::ssh::prepare_ssh(&ui.service, &listener).unwrap();
    ui
}

async fn running_sandbox(ui: &Ui, name: &str) {
    let caller = ui.caller().await;
    let req = t::CreateSandboxRequest {
        name: name.into(),
        ..Default::default()
    };
    let s = ui.service.create_sandbox(&caller, req).await.unwrap();
    assert_eq!(s.state, t::SandboxState::Running);
}

/// Submit the page's "Get an SSH command" form with `csrf`.
async fn mint(ui: &Ui, cookie: &str, csrf: &str) -> Answer {
    ui.post("/sandboxes/ssh-web/ssh", Some(cookie), &[("_csrf", csrf)])
        .await
}

/// The token in the page's `ssh -p PORT TOKEN@HOST`.
fn token_on(page: &str) -> String {
    let at = page.find("amkssh_").expect("a token on the page");
    page[at..].split('@').next().unwrap().to_string()
}

#[tokio::test]
async fn the_sandbox_page_mints_an_ssh_command_with_its_expiry_and_revokes_it() {
    let ui = ssh_ui().await;
    running_sandbox(&ui, "ssh-web").await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    let page = ui.get("/sandboxes/ssh-web", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("SSH access"), "{}", page.body);
    assert!(page.body.contains("Get an SSH command"));
    assert!(page.body.contains("amika secret ssh-key push"));
    assert!(
        !page.body.contains("amkssh_"),
        "no token before one is asked for"
    );

    // Without the session's CSRF token nothing is minted.
    let refused = ui.post("/sandboxes/ssh-web/ssh", Some(&cookie), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let minted = mint(&ui, &cookie, &page.csrf()).await;
    assert_eq!(minted.status, StatusCode::OK, "{}", minted.body);
    let port = ui.service.ssh().endpoint().unwrap().addr.port();
    let token = token_on(&minted.body);
    assert!(
        minted
            .body
            .contains(&format!("ssh -p {port} {token}@127.0.0.1")),
        "{}",
        minted.body
    );
    assert!(
        minted.body.contains("Valid until <time datetime="),
        "{}",
        minted.body
    );
    assert!(minted.body.contains("(in 59 minutes)") || minted.body.contains("(in 60 minutes)"));
    let login = ui.service.ssh_login(&token).await.unwrap();
    assert_eq!(login.sandbox_name, "ssh-web");

    // Revoked from the page: the token logs in no more.
    let revoked = ui
        .post(
            "/sandboxes/ssh-web/ssh/revoke",
            Some(&cookie),
            &[("_csrf", &minted.csrf()), ("token", &token)],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    assert_eq!(revoked.location(), "/sandboxes/ssh-web");
    let why = ui.service.ssh_login(&token).await.unwrap_err();
    assert!(why.to_string().contains("revoked"), "{why}");
    let back = ui.get("/sandboxes/ssh-web", Some(&cookie)).await;
    assert!(back.body.contains("was revoked"), "{}", back.body);

    // A registered key: the token-free command.
    let caller = ui.caller().await;
    ui.service
        .create_ssh_public_key(
            &caller,
            t::SshPublicKeyRequest {
                name: "laptop".into(),
                public_key: KEY.into(),
            },
        )
        .await
        .unwrap();
    let page = ui.get("/sandboxes/ssh-web", Some(&cookie)).await;
    assert!(
        page.body
            .contains(&format!("ssh -p {port} ssh-web@127.0.0.1")),
        "{}",
        page.body
    );
    assert!(page.body.contains("laptop"));

    // Stopped: no command, and the page says why.
    ui.service.stop_sandbox(&caller, "ssh-web").await.unwrap();
    let page = ui.get("/sandboxes/ssh-web", Some(&cookie)).await;
    assert!(!page.body.contains("Get an SSH command"));
    assert!(page.body.contains("SSH needs the sandbox running"));
    let minted = mint(&ui, &cookie, &page.csrf()).await;
    assert_eq!(minted.status, StatusCode::CONFLICT, "{}", minted.body);
    assert!(minted.body.contains("amika sandbox start ssh-web"));
}

#[tokio::test]
async fn without_an_ssh_endpoint_the_page_has_no_ssh_card() {
    let ui = Ui::with(|c| c.warm_sandboxes = 0).await;
    running_sandbox(&ui, "no-ssh").await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    let page = ui.get("/sandboxes/no-ssh", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("SSH access"));
}
