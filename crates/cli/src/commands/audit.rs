//! `amika audit`: recent audit events (who did what to which object, never a value).

use amika_server::service::audit::AUDIT_LIMITS;

use super::Ctx;
use crate::output::{or_dash, print_json, time, Table};

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// How many events to show (newest first), 1 to 1000.
    // The server answers 400 for a limit outside 1..=1000; refusing here, with the server's
    // words, says so before any request.
    #[arg(long, default_value_t = 50, value_parser = parse_limit)]
    pub limit: u32,
}

/// `--limit`: a whole number in the server's [`AUDIT_LIMITS`], refused as the server would.
fn parse_limit(text: &str) -> Result<u32, String> {
    text.parse::<i64>()
        .ok()
        .filter(|n| AUDIT_LIMITS.contains(n))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            format!(
                "limit must be a whole number in {}..={}",
                AUDIT_LIMITS.start(),
                AUDIT_LIMITS.end()
            )
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_a_whole_number_in_the_servers_range() {
        assert_eq!(parse_limit("1"), Ok(1));
        assert_eq!(parse_limit("1000"), Ok(1000));
        for bad in ["0", "1001", "-1", "x", "2.5", ""] {
            assert_eq!(
                parse_limit(bad),
                Err("limit must be a whole number in 1..=1000".to_string()),
                "{bad:?}"
            );
        }
    }
}
