//! `amika audit`: recent audit events (who did what to which object, never a value).

use super::Ctx;
use crate::output::{or_dash, print_json, time, Table};

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// How many events to show (newest first), 1 to 1000.
    // The server clamps to 1..=1000; refusing here says so instead of silently showing fewer
    // (or, for 0, one).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
}

pub async fn run(ctx: &Ctx, args: AuditArgs) -> anyhow::Result<()> {
    let events = ctx.client()?.list_audit_events(Some(args.limit)).await?;
    if ctx.json() {
        return print_json(&events);
    }
    let mut table = Table::new(&["TIME", "USER", "ACTION", "OBJECT", "VERSION", "SANDBOX"]);
    for e in &events {
        let object = if e.object_name.is_empty() {
            format!("{} {}", e.object_type, e.object_id)
        } else {
            format!("{} {}", e.object_type, e.object_name)
        };
        table.row(vec![
            time(&e.created_at),
            e.user_id.clone(),
            e.action.clone(),
            object,
            or_dash(e.version),
            or_dash(e.sandbox_id.as_ref()),
        ]);
    }
    table.print()?;
    Ok(())
}
