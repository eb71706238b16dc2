//! The server's ceilings on what a create may ask for (see [`crate::config::Ceilings`]): memory,
//! processes, network mode per role, and sandboxes per user. Whoever creates a sandbox chooses
//! its limits; these bound that choice, so that one tenant cannot ask for the whole host. A
//! request over a ceiling is refused before anything is cloned or written (`422 over_limit`,
//! naming the ceiling and the field).

use amika_store::{SandboxRow, StoreError};
use amika_types::{self as t, ErrorCode, NetworkMode};

use super::count::Reservation;
use crate::service::{Caller, Result, Service, ServiceError};

/// The memory limits a create may ask for, in MiB (above the range its bytes would not fit
/// the cgroup's counter; the server's ceiling usually bounds it much lower).
pub(crate) const MEMORY_MIB_RANGE: std::ops::RangeInclusive<u64> = 32..=(1 << 24);

/// The process limits a create may ask for (above: more than the kernel can ever have).
pub(crate) const PIDS_RANGE: std::ops::RangeInclusive<u64> = 8..=4_194_304;

/// The memory and process limits a create asks for, within what the kernel can take.
pub(super) fn check_limits(req: &t::CreateSandboxRequest) -> Result<()> {
    let mut errors = Vec::new();
    for (field, value, range, unit) in [
        (
            "memory_mib",
            req.memory_mib,
            MEMORY_MIB_RANGE,
            " MiB (16 TiB)",
        ),
        (
            "pids",
            req.pids,
            PIDS_RANGE,
            " (the kernel's largest pid_max)",
        ),
    ] {
        if value.is_some_and(|v| !range.contains(&v)) {
            errors.push(
                ServiceError::bad_request(format!(
                    "{field} must be from {} to {}{unit}",
                    range.start(),
                    range.end()
                ))
                .at(field),
            );
        }
    }
    ServiceError::all(errors)
}

/// A refusal naming the ceiling.
fn over(field: &str, message: String) -> ServiceError {
    ServiceError::unprocessable(ErrorCode::OverLimit, message).at(field)
}

impl Service {
    /// Refuse a create whose network, memory or process limit is over this server's ceilings
    /// for `caller` (the sandbox count is `reserve_sandbox`'s).
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn check_ceilings(
        &self,
        caller: &Caller,
        req: &t::CreateSandboxRequest,
    ) -> Result<()> {
        let ceilings = &self.config.ceilings;
        let network = req.network.unwrap_or(NetworkMode::Egress);
        let (allowed, role) = ceilings.allowed_networks.for_role(caller.is_admin);
        if !allowed.contains(&network) {
            let names: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
            let why = if network == NetworkMode::Host {
                " (the host's network reaches every service on the host's loopback; an admin may allow it in the server config)"
            } else {
                ""
            };
            return Err(over(
                "network",
                format!(
                    "network \"{}\" is not allowed for {role}s on this server: the ceiling allowed_networks.{role} is [{}]{why}",
                    network.as_str(),
                    names.join(", ")
                ),
            ));
        }
        let (size_memory, size_pids) = req.size.map(|s| s.limits()).unzip();
        for (asked, from_size, max, field, ceiling) in [
            (
                req.memory_mib,
                size_memory,
                ceilings.max_memory_mib,
                "memory_mib",
                "max_memory_mib",
            ),
            (req.pids, size_pids, ceilings.max_pids, "pids", "max_pids"),
        ] {
            let (value, field) = match (asked, from_size) {
                (Some(v), _) => (v, field),
                (None, Some(v)) => (v, "size"),
                (None, None) => continue,
            };
            if let Some(max) = max.filter(|max| value > *max) {
                return Err(over(
                    field,
                    format!(
                        "{field} asks for {value} {}, over this server's ceiling {ceiling} = {max}",
                        unit(ceiling)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Insert a new sandbox's row, counted against its user's `max_sandboxes_per_user` by
    /// `reservation` until it is in (see `count`).
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn insert_within_ceiling(
        &self,
        caller: &Caller,
        row: &SandboxRow,
        reservation: Reservation,
    ) -> Result<()> {
        // A same-named sandbox's teardown holds up this create only.
        self.wait_for_teardown(&caller.user_id, &row.name).await;
        reservation.set_id(&row.id);
        self.store.insert_sandbox(row).await.map_err(|e| match e {
            StoreError::Conflict(_) => super::create::name_taken(&row.name),
            e => e.into(),
        })
    }
}

/// What a ceiling counts.
fn unit(ceiling: &str) -> &'static str {
    if ceiling == "max_memory_mib" {
        "MiB"
    } else {
        "processes"
    }
}
