//! `/secrets/{kind}...` documented as one path per agent kind (`/secrets/claude`,
//! `/secrets/codex`, `/secrets/github`), as the public Amika API's own document has them. The router serves
//! `/secrets/{x}` for both a secret (PUT, DELETE by id or name) and a credential kind (GET,
//! POST): written as two templates that differ only in the parameter's name, the document was
//! ambiguous (OpenAPI linters reject it, and a client could not tell which operation a URL is).
//! Runs last, so the per-route errors added before carry over to each kind's copy.

use amika_types::AgentKind;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::OpenApi;

pub(super) struct KindPaths;

const TEMPLATE: &str = "{kind}";

fn for_kind(op: &mut Operation, kind: AgentKind) {
    if let Some(params) = op.parameters.as_mut() {
        params.retain(|p| p.name != "kind");
        if params.is_empty() {
            op.parameters = None;
        }
    }
    if let Some(id) = op.operation_id.as_mut() {
        id.push('_');
        id.push_str(kind.as_str());
    }
    if let Some(summary) = op.summary.as_mut() {
        summary.push_str(&format!(" ({kind})"));
    }
}

impl utoipa::Modify for KindPaths {
    fn modify(&self, openapi: &mut OpenApi) {
        let templated: Vec<String> = openapi
            .paths
            .paths
            .keys()
            .filter(|p| p.contains(TEMPLATE))
            .cloned()
            .collect();
        for path in templated {
            let Some(item) = openapi.paths.paths.remove(&path) else {
                continue;
            };
            for &kind in AgentKind::ALL {
                let mut copy: PathItem = item.clone();
                for op in [
                    copy.get.as_mut(),
                    copy.post.as_mut(),
                    copy.put.as_mut(),
                    copy.patch.as_mut(),
                    copy.delete.as_mut(),
                ]
                .into_iter()
                .flatten()
                {
                    for_kind(op, kind);
                }
                let concrete = path.replace(TEMPLATE, kind.as_str());
                openapi.paths.paths.insert(concrete, copy);
            }
        }
    }
}
