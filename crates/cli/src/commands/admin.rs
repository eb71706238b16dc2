//! `amika admin`: orgs and users, for admins. A new user's first API key is printed once.

use amika_types::{CreateOrgRequest, CreateUserRequest};
use clap::Subcommand;

use super::Ctx;
use crate::output::{print_json, time, Table};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage orgs.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an org.
    Create { name: String },
    /// Show your org (orgs are isolated tenants: an admin sees only their own).
    List,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user in an org; prints the user's first API key (shown once).
    Create {
        name: String,
        /// The org's name or id.
        #[arg(long)]
        org: String,
        /// Make the user an admin.
        #[arg(long)]
        admin: bool,
    },
}

pub async fn run(ctx: &Ctx, cmd: AdminCommand) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match cmd {
        AdminCommand::Org(OrgCommand::Create { name }) => {
            let org = client.create_org(&CreateOrgRequest { name }).await?;
            if ctx.json() {
                return print_json(&org);
            }
            crate::outln!("Created org {} ({})", org.name, org.id);
        }
        AdminCommand::Org(OrgCommand::List) => {
            let orgs = client.list_orgs().await?;
            if ctx.json() {
                return print_json(&orgs);
            }
            let mut table = Table::new(&["ID", "NAME", "CREATED"]);
            for org in &orgs {
                table.row(vec![
                    org.id.clone(),
                    org.name.clone(),
                    time(&org.created_at),
                ]);
            }
            table.print()?;
        }
        AdminCommand::User(UserCommand::Create { name, org, admin }) => {
            let created = client
                .create_user(&CreateUserRequest {
                    name,
                    org,
                    is_admin: admin,
                })
                .await?;
            if ctx.json() {
                return print_json(&created);
            }
            eprintln!(
                "Created {}user {} ({}). Their API key is shown only this once:",
                if created.user.is_admin { "admin " } else { "" },
                created.user.name,
                created.user.id
            );
            crate::outln!("{}", created.api_key);
        }
    }
    Ok(())
}
