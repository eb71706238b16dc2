//! Agent-credential resolution (DESIGN §4): which stored credential, if any, each agent kind
//! named in a sandbox create request gets, and the `resolved_agent_credentials` row that says why.
//!
//! A pure function over what the caller can see — no store, no vault, no clock (`now` is a
//! parameter) — so every rule is tested here on plain data, and the create, preview and UI paths
//! share one answer. Candidates carry metadata only, never a value: the caller decrypts the
//! picked credential afterwards.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet};

use amika_types::{
    AgentCredentialRef, AgentKind, CredentialType, ResolutionOutcome, ResolutionSource,
    ResolvedAgentCredential, Scope,
};
use chrono::{DateTime, SecondsFormat, Utc};

const REASON_FLAG: &str = "no-agent-credential flag";
/// The reason of a kind the repository's `.amika/config.toml` sets to `{ none = true }`.
pub(crate) const REASON_REPO_NONE: &str = "none in .amika/config.toml";
const REASON_NOTHING_STORED: &str = "no stored credential";

/// A credential visible to the caller: their own user-scoped ones and their org's org-scoped ones.
/// The caller must not pass anyone else's user-scoped credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub name: String,
    pub kind: AgentKind,
    pub credential_type: CredentialType,
    pub scope: Scope,
    pub is_default: bool,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
    /// The OAuth token's `expiresAt`; `None` for API keys and documents without one.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Candidate {
    /// Only OAuth tokens expire; the instant `expires_at == now` still counts as valid.
    fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.credential_type == CredentialType::Oauth && self.expires_at.is_some_and(|at| at < now)
    }

    /// The `reason` of a resolved entry: empty, or the expiry of a token injected anyway.
    fn reason(&self, now: DateTime<Utc>) -> String {
        match self.expires_at {
            Some(at) if self.is_expired(now) => format!(
                "oauth token expired at {}",
                at.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
            _ => String::new(),
        }
    }
}

/// The answer for one requested kind: its row, and the picked credential iff it was resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub entry: ResolvedAgentCredential,
    pub credential: Option<Candidate>,
}

/// Why a request's agent credentials cannot be resolved; nothing may be created then. Each
/// names the entry it concerns by its position in the request (`index`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// A second entry of a kind.
    #[error("agent_credentials lists {kind} twice: give at most one entry per kind")]
    DuplicateKind { index: usize, kind: AgentKind },
    #[error("agent credential for {kind}: none: true cannot be combined with name or type")]
    NoneWithSelector { index: usize, kind: AgentKind },
    #[error("agent_credentials names {kind}, which is not an agent: expected claude or codex (a github credential is named with git_credential)")]
    NotAnAgent { index: usize, kind: AgentKind },
    /// The repository's `.amika/config.toml` entry for a kind did not resolve.
    #[error("{path}: [agent_credentials] {inner}")]
    InRepoConfig {
        path: &'static str,
        inner: Box<ResolveError>,
    },
    #[error("agent credential for {kind}: {}", not_found_detail(.name.as_deref(), *.credential_type))]
    NotFound {
        index: usize,
        kind: AgentKind,
        name: Option<String>,
        credential_type: Option<CredentialType>,
    },
    #[error("agent credential for {kind}: {name:?} is an {actual} credential, but type {requested} was requested")]
    TypeMismatch {
        index: usize,
        kind: AgentKind,
        name: String,
        requested: CredentialType,
        actual: CredentialType,
    },
}

fn not_found_detail(name: Option<&str>, credential_type: Option<CredentialType>) -> String {
    let of_type = credential_type.map_or(String::new(), |t| format!(" {t}"));
    match name {
        Some(name) => format!("no{of_type} credential named {name:?}"),
        None => format!("no{of_type} credential"),
    }
}

impl ResolveError {
    /// The agent kind the error concerns.
    pub fn kind(&self) -> AgentKind {
        match self {
            ResolveError::InRepoConfig { inner, .. } => inner.kind(),
            ResolveError::DuplicateKind { kind, .. }
            | ResolveError::NoneWithSelector { kind, .. }
            | ResolveError::NotAnAgent { kind, .. }
            | ResolveError::NotFound { kind, .. }
            | ResolveError::TypeMismatch { kind, .. } => *kind,
        }
    }

    /// The field of the request the error is about, as a JSON path: the entry's `kind` when it
    /// repeats one, `none` when it contradicts its selector, else the selector that found
    /// nothing or the wrong type (`name` before `type`).
    pub fn field(&self) -> String {
        let (index, key) = match self {
            ResolveError::InRepoConfig { path, .. } => return path.to_string(),
            ResolveError::DuplicateKind { index, .. } | ResolveError::NotAnAgent { index, .. } => {
                (index, "kind")
            }
            ResolveError::NoneWithSelector { index, .. } => (index, "none"),
            ResolveError::NotFound {
                index,
                name: Some(_),
                ..
            } => (index, "name"),
            ResolveError::NotFound { index, .. } | ResolveError::TypeMismatch { index, .. } => {
                (index, "type")
            }
        };
        format!("agent_credentials[{index}].{key}")
    }
}

/// Resolves every requested kind against the caller's visible `candidates` (DESIGN §4).
///
/// The whole request is validated first, so a malformed request fails the same way whatever
/// is stored. The answer has exactly one entry per requested kind, sorted by kind.
///
/// `repo` is the repository's `.amika/config.toml` `[agent_credentials]`: a bare `{kind}` entry
/// takes the repository's entry for that kind when it has one (rule 4), reported with source
/// `repo_config`.
pub fn resolve_agent_credentials(
    requested: &[AgentCredentialRef],
    repo: &BTreeMap<AgentKind, AgentCredentialRef>,
    candidates: &[Candidate],
    now: DateTime<Utc>,
) -> Result<Vec<Resolution>, ResolveError> {
    resolve_each_agent_credential(requested, repo, candidates, now)
        .map_err(|mut errors| errors.swap_remove(0))
}

/// [`resolve_agent_credentials`] with every entry's error, in request order (a malformed
/// request: its first contradiction only, since nothing after it is resolved). Never an empty
/// list of errors.
pub fn resolve_each_agent_credential(
    requested: &[AgentCredentialRef],
    repo: &BTreeMap<AgentKind, AgentCredentialRef>,
    candidates: &[Candidate],
    now: DateTime<Utc>,
) -> Result<Vec<Resolution>, Vec<ResolveError>> {
    validate(requested).map_err(|e| vec![e])?;
    let (mut resolutions, mut errors) = (Vec::new(), Vec::new());
    for (index, request) in requested.iter().enumerate() {
        let bare = !request.none && request.name.is_none() && request.credential_type.is_none();
        let outcome = match repo.get(&request.kind).filter(|_| bare) {
            Some(from_repo) => from_repo_config(index, from_repo, candidates, now),
            None => resolve_one(index, request, candidates, now),
        };
        match outcome {
            Ok(r) => resolutions.push(r),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    resolutions.sort_by_key(|r| r.entry.kind);
    Ok(resolutions)
}

/// Rule 4's first half: the repository's entry, resolved by rules 1–3 and reported as
/// `repo_config`; its errors name the file.
fn from_repo_config(
    index: usize,
    entry: &AgentCredentialRef,
    candidates: &[Candidate],
    now: DateTime<Utc>,
) -> Result<Resolution, ResolveError> {
    let mut r =
        resolve_one(index, entry, candidates, now).map_err(|inner| ResolveError::InRepoConfig {
            path: crate::service::repo_config::PATH,
            inner: Box::new(inner),
        })?;
    match r.entry.outcome {
        ResolutionOutcome::Resolved => r.entry.source = ResolutionSource::RepoConfig,
        ResolutionOutcome::Skipped => r.entry.reason = REASON_REPO_NONE.to_string(),
    }
    Ok(r)
}

/// Rule 1 and the one-entry-per-kind rule, checked in request order.
fn validate(requested: &[AgentCredentialRef]) -> Result<(), ResolveError> {
    let mut seen = BTreeSet::new();
    for (index, request) in requested.iter().enumerate() {
        let kind = request.kind;
        if !kind.is_agent() {
            return Err(ResolveError::NotAnAgent { index, kind });
        }
        if !seen.insert(kind) {
            return Err(ResolveError::DuplicateKind { index, kind });
        }
        if request.none && (request.name.is_some() || request.credential_type.is_some()) {
            return Err(ResolveError::NoneWithSelector { index, kind });
        }
    }
    Ok(())
}

fn resolve_one(
    index: usize,
    request: &AgentCredentialRef,
    candidates: &[Candidate],
    now: DateTime<Utc>,
) -> Result<Resolution, ResolveError> {
    let kind = request.kind;
    let of_kind: Vec<&Candidate> = candidates.iter().filter(|c| c.kind == kind).collect();
    match (request.none, &request.name, request.credential_type) {
        (true, _, _) => Ok(skipped(kind, REASON_FLAG)),
        (false, Some(name), wanted) => pinned_by_name(index, kind, name, wanted, &of_kind, now),
        (false, None, Some(wanted)) => pinned_by_type(index, kind, wanted, &of_kind, now),
        (false, None, None) => Ok(by_default(kind, &of_kind, now)),
    }
}

/// Rule 2: the named credential, the caller's own before the org's. The name alone picks the
/// credential; a `type` beside it is a check on that credential, not a second filter, so a
/// user-scoped credential of the wrong type is a mismatch even if the org has one that fits.
/// It is injected even when expired (the caller asked for exactly this one), with the reason set.
fn pinned_by_name(
    index: usize,
    kind: AgentKind,
    name: &str,
    wanted: Option<CredentialType>,
    of_kind: &[&Candidate],
    now: DateTime<Utc>,
) -> Result<Resolution, ResolveError> {
    // The default order puts user scope first, and keeps the choice deterministic should the
    // store ever hold two of a name in one scope.
    let found = first_in_default_order(of_kind.iter().copied().filter(|c| c.name == name))
        .ok_or_else(|| ResolveError::NotFound {
            index,
            kind,
            name: Some(name.to_owned()),
            credential_type: wanted,
        })?;
    match wanted {
        Some(requested) if requested != found.credential_type => Err(ResolveError::TypeMismatch {
            index,
            kind,
            name: name.to_owned(),
            requested,
            actual: found.credential_type,
        }),
        _ => Ok(resolved(
            found,
            ResolutionSource::RequestName,
            found.reason(now),
        )),
    }
}

/// Rule 3: the first credential of that type in the default order. DESIGN §4 says only that
/// "pinned" credentials are injected when expired; we read a type pin as a pin too, so: a
/// non-expired one is preferred, and only when every match is expired is the first expired one
/// injected (with the expiry reason) rather than failing a request that named its type.
fn pinned_by_type(
    index: usize,
    kind: AgentKind,
    wanted: CredentialType,
    of_kind: &[&Candidate],
    now: DateTime<Utc>,
) -> Result<Resolution, ResolveError> {
    let matching = || {
        of_kind
            .iter()
            .copied()
            .filter(|c| c.credential_type == wanted)
    };
    let found = first_in_default_order(matching().filter(|c| !c.is_expired(now)))
        .or_else(|| first_in_default_order(matching()))
        .ok_or(ResolveError::NotFound {
            index,
            kind,
            name: None,
            credential_type: Some(wanted),
        })?;
    Ok(resolved(
        found,
        ResolutionSource::RequestType,
        found.reason(now),
    ))
}

/// Rule 4: the first non-expired credential in the default order, or skipped.
fn by_default(kind: AgentKind, of_kind: &[&Candidate], now: DateTime<Utc>) -> Resolution {
    match first_in_default_order(of_kind.iter().copied().filter(|c| !c.is_expired(now))) {
        Some(found) => {
            let source = match found.scope {
                Scope::User => ResolutionSource::UserDefault,
                Scope::Org => ResolutionSource::OrgDefault,
            };
            resolved(found, source, String::new())
        }
        None => skipped(kind, REASON_NOTHING_STORED),
    }
}

/// The credential the default order picks among `candidates` (expired ones passed over): how a
/// `github` token is chosen for a clone when none is named.
pub(crate) fn pick_default(candidates: &[Candidate], now: DateTime<Utc>) -> Option<&Candidate> {
    first_in_default_order(candidates.iter().filter(|c| !c.is_expired(now)))
}

fn first_in_default_order<'a>(
    candidates: impl Iterator<Item = &'a Candidate>,
) -> Option<&'a Candidate> {
    candidates.min_by(|a, b| default_order(a, b))
}

/// The default order: the caller's own credentials before the org's; within each, the one
/// marked default first, then OAuth before an API key, then most recently updated; name and id
/// break the remaining ties so the same inputs always give the same pick.
fn default_order(a: &Candidate, b: &Candidate) -> Ordering {
    fn key(c: &Candidate) -> (u8, bool, u8, Reverse<DateTime<Utc>>, &str, &str) {
        let tier = match c.scope {
            Scope::User => 0,
            Scope::Org => 1,
        };
        (
            tier,
            !c.is_default,
            c.credential_type.preference(),
            Reverse(c.updated_at),
            &c.name,
            &c.id,
        )
    }
    key(a).cmp(&key(b))
}

fn resolved(credential: &Candidate, source: ResolutionSource, reason: String) -> Resolution {
    Resolution {
        entry: ResolvedAgentCredential {
            kind: credential.kind,
            outcome: ResolutionOutcome::Resolved,
            name: credential.name.clone(),
            credential_type: credential.credential_type.as_str().to_owned(),
            source,
            reason,
        },
        credential: Some(credential.clone()),
    }
}

fn skipped(kind: AgentKind, reason: &str) -> Resolution {
    Resolution {
        entry: ResolvedAgentCredential {
            kind,
            outcome: ResolutionOutcome::Skipped,
            name: String::new(),
            credential_type: String::new(),
            source: ResolutionSource::NoCredential,
            reason: reason.to_owned(),
        },
        credential: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;
    use AgentKind::{Claude, Codex};
    use CredentialType::{ApiKey, Oauth};
    use ResolutionOutcome::{Resolved, Skipped};
    use Scope::{Org, User};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap()
    }

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, d, 0, 0, 0).unwrap()
    }

    /// A candidate of `kind` updated on January `updated`; its id spells scope, kind and name.
    fn cand(
        scope: Scope,
        kind: AgentKind,
        ty: CredentialType,
        name: &str,
        updated: u32,
    ) -> Candidate {
        Candidate {
            id: format!("{scope}-{kind}-{name}"),
            name: name.to_owned(),
            kind,
            credential_type: ty,
            scope,
            is_default: false,
            version: 1,
            updated_at: day(updated),
            expires_at: None,
        }
    }

    fn marked_default(c: Candidate) -> Candidate {
        Candidate {
            is_default: true,
            ..c
        }
    }

    fn expiring(c: Candidate, at: DateTime<Utc>) -> Candidate {
        Candidate {
            expires_at: Some(at),
            ..c
        }
    }

    fn expired(c: Candidate) -> Candidate {
        expiring(c, Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap())
    }

    fn req(kind: AgentKind) -> AgentCredentialRef {
        AgentCredentialRef {
            kind,
            name: None,
            credential_type: None,
            none: false,
        }
    }

    fn named(kind: AgentKind, name: &str) -> AgentCredentialRef {
        AgentCredentialRef {
            name: Some(name.to_owned()),
            ..req(kind)
        }
    }

    fn typed(kind: AgentKind, ty: CredentialType) -> AgentCredentialRef {
        AgentCredentialRef {
            credential_type: Some(ty),
            ..req(kind)
        }
    }

    fn named_typed(kind: AgentKind, name: &str, ty: CredentialType) -> AgentCredentialRef {
        AgentCredentialRef {
            credential_type: Some(ty),
            ..named(kind, name)
        }
    }

    fn none(kind: AgentKind) -> AgentCredentialRef {
        AgentCredentialRef {
            none: true,
            ..req(kind)
        }
    }

    fn entry(
        kind: AgentKind,
        outcome: ResolutionOutcome,
        name: &str,
        ty: &str,
        source: &str,
        reason: &str,
    ) -> ResolvedAgentCredential {
        ResolvedAgentCredential {
            kind,
            outcome,
            name: name.into(),
            credential_type: ty.into(),
            source: source.parse().unwrap(),
            reason: reason.into(),
        }
    }

    fn resolve_single(request: AgentCredentialRef, candidates: &[Candidate]) -> Resolution {
        let mut out =
            resolve_agent_credentials(&[request], &BTreeMap::new(), candidates, now()).unwrap();
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    /// Every row of the DESIGN §4 table and every ordering rule, for one claude request each.
    /// `want_id` names the picked candidate, so a pick of a same-named credential in the other
    /// scope fails too.
    #[test]
    fn resolves_each_rule_of_the_table() {
        struct Case {
            case: &'static str,
            candidates: Vec<Candidate>,
            request: AgentCredentialRef,
            want: (
                ResolutionOutcome,
                &'static str,
                &'static str,
                &'static str,
                &'static str,
            ),
            want_id: Option<&'static str>,
        }
        let cases =
            vec![
            Case {
                case: "pinned by name: the user's own beats the org's of that name",
                candidates: vec![
                    marked_default(cand(Org, Claude, Oauth, "shared", 9)),
                    cand(User, Claude, ApiKey, "shared", 1),
                    marked_default(cand(User, Claude, Oauth, "other", 5)),
                ],
                request: named(Claude, "shared"),
                want: (Resolved, "shared", "api_key", "request:name", ""),
                want_id: Some("user-claude-shared"),
            },
            Case {
                case: "pinned by name: falls back to the org scope",
                candidates: vec![
                    marked_default(cand(User, Claude, Oauth, "mine", 5)),
                    cand(Org, Claude, ApiKey, "team", 1),
                ],
                request: named(Claude, "team"),
                want: (Resolved, "team", "api_key", "request:name", ""),
                want_id: Some("org-claude-team"),
            },
            Case {
                case: "pinned by name and type (spelled api-key): type matches",
                candidates: vec![
                    cand(User, Claude, ApiKey, "work", 1),
                    marked_default(cand(User, Claude, Oauth, "tok", 5)),
                ],
                request: named_typed(Claude, "work", "api-key".parse().unwrap()),
                want: (Resolved, "work", "api_key", "request:name", ""),
                want_id: Some("user-claude-work"),
            },
            Case {
                case: "pinned by type: default order among that type only",
                candidates: vec![
                    marked_default(cand(User, Claude, Oauth, "tok", 9)),
                    cand(User, Claude, ApiKey, "k-old", 2),
                    cand(User, Claude, ApiKey, "k-new", 3),
                    marked_default(cand(Org, Claude, ApiKey, "team", 9)),
                ],
                request: typed(Claude, ApiKey),
                want: (Resolved, "k-new", "api_key", "request:type", ""),
                want_id: Some("user-claude-k-new"),
            },
            Case {
                case: "pinned by type: falls back to the org's",
                candidates: vec![
                    cand(User, Claude, ApiKey, "mine", 9),
                    cand(Org, Claude, Oauth, "team", 1),
                ],
                request: typed(Claude, Oauth),
                want: (Resolved, "team", "oauth", "request:type", ""),
                want_id: Some("org-claude-team"),
            },
            Case {
                case: "default: the user's marked default beats a newer unmarked oauth",
                candidates: vec![
                    cand(User, Claude, Oauth, "newer", 9),
                    marked_default(cand(User, Claude, ApiKey, "marked", 1)),
                ],
                request: req(Claude),
                want: (Resolved, "marked", "api_key", "user_default", ""),
                want_id: Some("user-claude-marked"),
            },
            Case {
                case: "default: the user's oauth before a newer api_key",
                candidates: vec![
                    cand(User, Claude, ApiKey, "key", 9),
                    cand(User, Claude, Oauth, "tok", 1),
                ],
                request: req(Claude),
                want: (Resolved, "tok", "oauth", "user_default", ""),
                want_id: Some("user-claude-tok"),
            },
            Case {
                case: "default: most recently updated first",
                candidates: vec![
                    cand(User, Claude, Oauth, "old", 1),
                    cand(User, Claude, Oauth, "new", 5),
                    cand(User, Claude, Oauth, "mid", 3),
                ],
                request: req(Claude),
                want: (Resolved, "new", "oauth", "user_default", ""),
                want_id: Some("user-claude-new"),
            },
            Case {
                case: "default: ties on updated_at break by name, before id",
                candidates: vec![
                    Candidate { id: "id-1".into(), ..cand(User, Claude, Oauth, "b", 4) },
                    Candidate { id: "id-2".into(), ..cand(User, Claude, Oauth, "a", 4) },
                ],
                request: req(Claude),
                want: (Resolved, "a", "oauth", "user_default", ""),
                want_id: Some("id-2"),
            },
            Case {
                case: "default: ties on updated_at and name break by id",
                candidates: vec![
                    Candidate {
                        id: "id-2".into(),
                        ..cand(User, Claude, Oauth, "same", 4)
                    },
                    Candidate {
                        id: "id-1".into(),
                        ..cand(User, Claude, Oauth, "same", 4)
                    },
                ],
                request: req(Claude),
                want: (Resolved, "same", "oauth", "user_default", ""),
                want_id: Some("id-1"),
            },
            Case {
                case: "default: the user's own api_key beats the org's newer marked oauth",
                candidates: vec![
                    marked_default(cand(Org, Claude, Oauth, "team", 9)),
                    cand(User, Claude, ApiKey, "mine", 1),
                ],
                request: req(Claude),
                want: (Resolved, "mine", "api_key", "user_default", ""),
                want_id: Some("user-claude-mine"),
            },
            Case {
                case: "default: org fallback, the org's marked default first",
                candidates: vec![
                    cand(Org, Claude, Oauth, "team-tok", 9),
                    marked_default(cand(Org, Claude, ApiKey, "team-default", 1)),
                ],
                request: req(Claude),
                want: (Resolved, "team-default", "api_key", "org_default", ""),
                want_id: Some("org-claude-team-default"),
            },
            Case {
                case: "default: org fallback, oauth before a newer api_key",
                candidates: vec![
                    cand(Org, Claude, ApiKey, "team-key", 9),
                    cand(Org, Claude, Oauth, "team-tok", 1),
                ],
                request: req(Claude),
                want: (Resolved, "team-tok", "oauth", "org_default", ""),
                want_id: Some("org-claude-team-tok"),
            },
            Case {
                case: "none: skipped even though credentials are stored",
                candidates: vec![marked_default(cand(User, Claude, Oauth, "tok", 1))],
                request: none(Claude),
                want: (Skipped, "", "", "no-credential", "no-agent-credential flag"),
                want_id: None,
            },
            Case {
                case: "nothing stored (of this kind): skipped",
                candidates: vec![marked_default(cand(User, Codex, Oauth, "codex-tok", 1))],
                request: req(Claude),
                want: (Skipped, "", "", "no-credential", "no stored credential"),
                want_id: None,
            },
            Case {
                case: "expiry: pinned by name, expired oauth injected with the reason",
                candidates: vec![
                    expired(cand(User, Claude, Oauth, "old-tok", 1)),
                    cand(User, Claude, ApiKey, "key", 5),
                ],
                request: named(Claude, "old-tok"),
                want: (
                    Resolved,
                    "old-tok",
                    "oauth",
                    "request:name",
                    "oauth token expired at 2026-01-02T03:04:05Z",
                ),
                want_id: Some("user-claude-old-tok"),
            },
            Case {
                case: "expiry: pinned by name, a token expiring later has no reason",
                candidates: vec![expiring(
                    cand(User, Claude, Oauth, "tok", 1),
                    now() + Duration::hours(1),
                )],
                request: named(Claude, "tok"),
                want: (Resolved, "tok", "oauth", "request:name", ""),
                want_id: Some("user-claude-tok"),
            },
            Case {
                case: "expiry: default skips an expired marked default, falls to the next",
                candidates: vec![
                    marked_default(expired(cand(User, Claude, Oauth, "stale", 9))),
                    cand(User, Claude, ApiKey, "key", 1),
                    cand(Org, Claude, Oauth, "team", 9),
                ],
                request: req(Claude),
                want: (Resolved, "key", "api_key", "user_default", ""),
                want_id: Some("user-claude-key"),
            },
            Case {
                case: "expiry: default, only expired ones stored: skipped",
                candidates: vec![
                    marked_default(expired(cand(User, Claude, Oauth, "stale", 9))),
                    expired(cand(Org, Claude, Oauth, "team-stale", 9)),
                ],
                request: req(Claude),
                want: (Skipped, "", "", "no-credential", "no stored credential"),
                want_id: None,
            },
            Case {
                case: "expiry: a token expiring exactly now is not expired",
                candidates: vec![expiring(cand(User, Claude, Oauth, "edge", 1), now())],
                request: req(Claude),
                want: (Resolved, "edge", "oauth", "user_default", ""),
                want_id: Some("user-claude-edge"),
            },
            Case {
                case: "expiry: pinned by type prefers an older non-expired one",
                candidates: vec![
                    marked_default(expired(cand(User, Claude, Oauth, "stale", 9))),
                    expiring(
                        cand(Org, Claude, Oauth, "fresh", 1),
                        now() + Duration::days(1),
                    ),
                ],
                request: typed(Claude, Oauth),
                want: (Resolved, "fresh", "oauth", "request:type", ""),
                want_id: Some("org-claude-fresh"),
            },
            Case {
                case:
                    "expiry: pinned by type, all expired: the first in default order, with reason",
                candidates: vec![
                    marked_default(expired(cand(Org, Claude, Oauth, "team-stale", 9))),
                    expired(cand(User, Claude, Oauth, "mine-stale", 1)),
                    cand(User, Claude, ApiKey, "key", 9),
                ],
                request: typed(Claude, Oauth),
                want: (
                    Resolved,
                    "mine-stale",
                    "oauth",
                    "request:type",
                    "oauth token expired at 2026-01-02T03:04:05Z",
                ),
                want_id: Some("user-claude-mine-stale"),
            },
        ];

        for Case {
            case,
            candidates,
            request,
            want,
            want_id,
        } in cases
        {
            let got = resolve_single(request, &candidates);
            let (outcome, name, ty, source, reason) = want;
            assert_eq!(
                got.entry,
                entry(Claude, outcome, name, ty, source, reason),
                "{case}"
            );
            assert_eq!(
                got.credential.as_ref().map(|c| c.id.as_str()),
                want_id,
                "{case}"
            );
        }
    }

    #[test]
    fn resolves_the_design_example_sorted_by_kind() {
        let candidates = [
            marked_default(cand(User, Claude, Oauth, "personal-oauth", 1)),
            cand(User, Codex, ApiKey, "work-key", 1),
        ];
        // Codex first in the request: the answer is still sorted claude, codex.
        let out = resolve_agent_credentials(
            &[none(Codex), req(Claude)],
            &BTreeMap::new(),
            &candidates,
            now(),
        )
        .unwrap();
        let entries: Vec<_> = out.iter().map(|r| r.entry.clone()).collect();
        assert_eq!(
            entries,
            [
                entry(
                    Claude,
                    Resolved,
                    "personal-oauth",
                    "oauth",
                    "user_default",
                    ""
                ),
                entry(
                    Codex,
                    Skipped,
                    "",
                    "",
                    "no-credential",
                    "no-agent-credential flag"
                ),
            ]
        );
        assert_eq!(out[0].credential.as_ref(), Some(&candidates[0]));
        assert_eq!(out[1].credential, None);
    }

    #[test]
    fn kinds_not_requested_get_no_entry() {
        let candidates = [
            cand(User, Claude, Oauth, "tok", 1),
            cand(User, Codex, Oauth, "tok", 1),
        ];
        let out =
            resolve_agent_credentials(&[req(Codex)], &BTreeMap::new(), &candidates, now()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].entry.kind, Codex);
        assert_eq!(
            out[0].credential.as_ref().map(|c| c.id.as_str()),
            Some("user-codex-tok")
        );
        assert!(
            resolve_agent_credentials(&[], &BTreeMap::new(), &candidates, now())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn another_kinds_credential_is_never_picked() {
        // Everything stored is codex, and attractive: marked default, fresh, matching the name.
        let candidates = [
            marked_default(cand(User, Codex, Oauth, "shared", 9)),
            marked_default(cand(Org, Codex, ApiKey, "team", 9)),
        ];
        let bare = resolve_single(req(Claude), &candidates);
        assert_eq!(bare.entry.outcome, Skipped);
        assert_eq!(bare.credential, None);
        for request in [
            named(Claude, "shared"),
            typed(Claude, Oauth),
            typed(Claude, ApiKey),
        ] {
            let err = resolve_agent_credentials(
                std::slice::from_ref(&request),
                &BTreeMap::new(),
                &candidates,
                now(),
            );
            assert!(
                matches!(err, Err(ResolveError::NotFound { kind: Claude, .. })),
                "{request:?}"
            );
        }
    }

    #[test]
    fn rejects_each_invalid_request() {
        let candidates = [
            cand(User, Claude, ApiKey, "work", 1),
            cand(User, Claude, ApiKey, "shared", 1),
            cand(Org, Claude, Oauth, "shared", 1),
            cand(User, Codex, Oauth, "ghost", 1),
        ];
        /// (case, request, error, field, code, status, message)
        type ErrorCase = (
            &'static str,
            Vec<AgentCredentialRef>,
            ResolveError,
            &'static str,
            &'static str,
            u16,
            &'static str,
        );
        let cases: Vec<ErrorCase> = vec![
            (
                "duplicate kind",
                vec![req(Claude), named(Claude, "work")],
                ResolveError::DuplicateKind {
                    index: 1,
                    kind: Claude,
                },
                "agent_credentials[1].kind",
                "invalid_agent_credentials",
                400,
                "agent_credentials lists claude twice: give at most one entry per kind",
            ),
            (
                "none with name",
                vec![AgentCredentialRef {
                    none: true,
                    ..named(Codex, "ghost")
                }],
                ResolveError::NoneWithSelector {
                    index: 0,
                    kind: Codex,
                },
                "agent_credentials[0].none",
                "invalid_agent_credentials",
                400,
                "agent credential for codex: none: true cannot be combined with name or type",
            ),
            (
                "none with type",
                vec![AgentCredentialRef {
                    none: true,
                    ..typed(Codex, Oauth)
                }],
                ResolveError::NoneWithSelector {
                    index: 0,
                    kind: Codex,
                },
                "agent_credentials[0].none",
                "invalid_agent_credentials",
                400,
                "agent credential for codex: none: true cannot be combined with name or type",
            ),
            (
                "name missing (a codex credential of that name does not count)",
                vec![named(Claude, "ghost")],
                ResolveError::NotFound {
                    index: 0,
                    kind: Claude,
                    name: Some("ghost".into()),
                    credential_type: None,
                },
                "agent_credentials[0].name",
                "agent_credential_not_found",
                422,
                r#"agent credential for claude: no credential named "ghost""#,
            ),
            (
                "name and type, name missing",
                vec![named_typed(Claude, "ghost", Oauth)],
                ResolveError::NotFound {
                    index: 0,
                    kind: Claude,
                    name: Some("ghost".into()),
                    credential_type: Some(Oauth),
                },
                "agent_credentials[0].name",
                "agent_credential_not_found",
                422,
                r#"agent credential for claude: no oauth credential named "ghost""#,
            ),
            (
                "type missing",
                vec![typed(Codex, ApiKey)],
                ResolveError::NotFound {
                    index: 0,
                    kind: Codex,
                    name: None,
                    credential_type: Some(ApiKey),
                },
                "agent_credentials[0].type",
                "agent_credential_not_found",
                422,
                "agent credential for codex: no api_key credential",
            ),
            (
                "the field names the entry's position in the request",
                vec![req(Claude), typed(Codex, ApiKey)],
                ResolveError::NotFound {
                    index: 1,
                    kind: Codex,
                    name: None,
                    credential_type: Some(ApiKey),
                },
                "agent_credentials[1].type",
                "agent_credential_not_found",
                422,
                "agent credential for codex: no api_key credential",
            ),
            (
                "type mismatch",
                vec![named_typed(Claude, "work", Oauth)],
                ResolveError::TypeMismatch {
                    index: 0,
                    kind: Claude,
                    name: "work".into(),
                    requested: Oauth,
                    actual: ApiKey,
                },
                "agent_credentials[0].type",
                "agent_credential_type_mismatch",
                422,
                r#"agent credential for claude: "work" is an api_key credential, but type oauth was requested"#,
            ),
            (
                "type mismatch on the user's own, even though the org's of that name fits",
                vec![named_typed(Claude, "shared", Oauth)],
                ResolveError::TypeMismatch {
                    index: 0,
                    kind: Claude,
                    name: "shared".into(),
                    requested: Oauth,
                    actual: ApiKey,
                },
                "agent_credentials[0].type",
                "agent_credential_type_mismatch",
                422,
                r#"agent credential for claude: "shared" is an api_key credential, but type oauth was requested"#,
            ),
            (
                "the whole request is validated before anything resolves",
                vec![named(Claude, "missing"), req(Codex), none(Codex)],
                ResolveError::DuplicateKind {
                    index: 2,
                    kind: Codex,
                },
                "agent_credentials[2].kind",
                "invalid_agent_credentials",
                400,
                "agent_credentials lists codex twice: give at most one entry per kind",
            ),
            (
                "the first invalid entry in request order wins",
                vec![
                    AgentCredentialRef {
                        none: true,
                        ..named(Codex, "x")
                    },
                    req(Claude),
                    req(Claude),
                ],
                ResolveError::NoneWithSelector {
                    index: 0,
                    kind: Codex,
                },
                "agent_credentials[0].none",
                "invalid_agent_credentials",
                400,
                "agent credential for codex: none: true cannot be combined with name or type",
            ),
        ];
        for (case, request, want, field, code, status, message) in cases {
            let err = resolve_agent_credentials(&request, &BTreeMap::new(), &candidates, now())
                .unwrap_err();
            assert_eq!(err, want, "{case}");
            assert_eq!(err.field(), field, "{case}");
            assert_eq!(err.to_string(), message, "{case}");
            // What the API answers: the service's one mapping, then the HTTP layer's.
            let service_error = crate::service::ServiceError::from(err);
            assert_eq!(service_error.field(), Some(field), "{case}");
            let answer = crate::http::error::ApiError::from(service_error);
            assert_eq!(answer.code.as_str(), code, "{case}");
            assert_eq!(answer.status.as_u16(), status, "{case}");
            assert_eq!(answer.message, message, "{case}");
        }
    }

    const NAMES: [&str; 3] = ["a", "b", "c"];

    fn any_kind() -> impl Strategy<Value = AgentKind> {
        prop::sample::select(AgentKind::AGENTS)
    }

    fn any_type() -> impl Strategy<Value = CredentialType> {
        prop::sample::select(CredentialType::ALL)
    }

    fn any_candidates() -> impl Strategy<Value = Vec<Candidate>> {
        let row = (
            any_kind(),
            any_type(),
            prop::sample::select(Scope::ALL),
            prop::sample::select(&NAMES[..]),
            any::<bool>(),
            1..4u32,
            prop::option::of(-2..3i64),
        );
        prop::collection::vec(row, 0..8).prop_map(|rows| {
            rows.into_iter()
                .enumerate()
                .map(
                    |(i, (kind, ty, scope, name, is_default, updated, expiry))| Candidate {
                        id: format!("id-{i}"),
                        name: name.to_owned(),
                        kind,
                        credential_type: ty,
                        scope,
                        is_default,
                        version: 1,
                        updated_at: day(updated),
                        expires_at: expiry
                            .filter(|_| ty == Oauth)
                            .map(|offset| now() + Duration::days(offset)),
                    },
                )
                .collect()
        })
    }

    /// Distinct kinds in random order, each with a random (possibly invalid) ref.
    fn any_request() -> impl Strategy<Value = Vec<AgentCredentialRef>> {
        let kinds = prop::sample::subsequence(AgentKind::AGENTS, 0..=AgentKind::AGENTS.len())
            .prop_shuffle();
        let shape = (
            prop::option::of(prop::sample::select(&NAMES[..])),
            prop::option::of(any_type()),
            prop::bool::weighted(0.25),
        );
        let shapes = prop::collection::vec(shape, AgentKind::AGENTS.len());
        (kinds, shapes).prop_map(|(kinds, shapes)| {
            kinds
                .into_iter()
                .zip(shapes)
                .map(|(kind, (name, credential_type, none))| AgentCredentialRef {
                    kind,
                    name: name.map(str::to_owned),
                    credential_type,
                    none,
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn one_entry_per_requested_kind_of_that_kind(
            request in any_request(),
            candidates in any_candidates(),
        ) {
            let invalid = request
                .iter()
                .enumerate()
                .find(|(_, r)| r.none && (r.name.is_some() || r.credential_type.is_some()));
            let out = match (resolve_agent_credentials(&request, &BTreeMap::new(), &candidates, now()), invalid) {
                (Ok(out), None) => out,
                (Err(ResolveError::NoneWithSelector { index, kind }), Some((at, first))) => {
                    prop_assert_eq!(kind, first.kind);
                    prop_assert_eq!(index, at);
                    return Ok(());
                }
                (Err(ResolveError::NotFound { .. } | ResolveError::TypeMismatch { .. }), None) => {
                    return Ok(());
                }
                (other, _) => {
                    prop_assert!(false, "unexpected {:?} for {:?}", other, request);
                    unreachable!()
                }
            };

            let mut kinds: Vec<AgentKind> = request.iter().map(|r| r.kind).collect();
            kinds.sort();
            let got: Vec<AgentKind> = out.iter().map(|r| r.entry.kind).collect();
            prop_assert_eq!(got, kinds);

            for resolution in &out {
                let entry = &resolution.entry;
                let asked = request.iter().find(|r| r.kind == entry.kind).unwrap();
                match (&resolution.credential, entry.outcome) {
                    (Some(c), Resolved) => {
                        prop_assert!(candidates.contains(c));
                        prop_assert_eq!(c.kind, entry.kind);
                        prop_assert_eq!(&entry.name, &c.name);
                        prop_assert_eq!(entry.credential_type.as_str(), c.credential_type.as_str());
                        if let Some(ty) = asked.credential_type {
                            prop_assert_eq!(c.credential_type, ty);
                        }
                        if let Some(name) = &asked.name {
                            prop_assert_eq!(&c.name, name);
                        }
                        if asked.name.is_none() && asked.credential_type.is_none() {
                            prop_assert!(!c.is_expired(now()));
                        }
                    }
                    (None, Skipped) => {
                        prop_assert_eq!(entry.name.as_str(), "");
                        prop_assert_eq!(entry.credential_type.as_str(), "");
                        prop_assert_eq!(entry.source.as_str(), "no-credential");
                    }
                    (credential, outcome) => {
                        prop_assert!(false, "{:?} with credential {:?}", outcome, credential);
                    }
                }
            }
        }
    }
}
