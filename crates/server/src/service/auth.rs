//! Users, orgs and API keys. Keys are random (`amk_` + 256 bits), so a SHA-256 hash is the
//! right storage form: it is fast for every request and the plaintext is unrecoverable.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use amika_store::{ApiKeyRow, OrgRow, StoreError, UserRow};
use amika_types::{self as t, ErrorCode};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{new_id, now, validate, Caller, Result, Service, ServiceError};

/// A new API key: the plaintext (shown once) and its stored row.
pub struct NewApiKey {
    pub plaintext: Zeroizing<String>,
    pub row: ApiKeyRow,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("plaintext", &"[REDACTED]")
            .field("row", &self.row)
            .finish()
    }
}

/// How long a key that authenticated is taken at its word without asking the database again.
/// A key deleted through this server stops at once; one deleted through another server
/// sharing the PostgreSQL database stops within this.
pub const AUTH_CACHE_TTL: Duration = Duration::from_millis(500);

/// Keys kept at most; the cache starts over when full (only keys that authenticated get in).
const AUTH_CACHE_MAX: usize = 10_000;

/// Recently authenticated keys, by hash: the caller each stands for and when it was read.
#[derive(Debug, Default)]
pub(crate) struct AuthCache(Mutex<HashMap<String, (Caller, Instant)>>);

impl AuthCache {
    fn get(&self, hash: &str) -> Option<Caller> {
        let cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (caller, at) = cache.get(hash)?;
        (at.elapsed() < AUTH_CACHE_TTL).then(|| caller.clone())
    }

    fn put(&self, hash: String, caller: &Caller) {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= AUTH_CACHE_MAX {
            cache.clear();
        }
        cache.insert(hash, (caller.clone(), Instant::now()));
    }

    /// Forget key `key_id` (deleted).
    fn forget(&self, key_id: &str) {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, (caller, _)| caller.api_key_id != key_id);
    }
}

pub fn hash_api_key(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

fn generate_api_key(user_id: &str, name: &str) -> NewApiKey {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::thread_rng().fill_bytes(bytes.as_mut());
    let plaintext = Zeroizing::new(format!(
        "amk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())
    ));
    let obfuscated = format!(
        "amk_{}…{}",
        &plaintext[4..8],
        &plaintext[plaintext.len() - 4..]
    );
    let at = now();
    let row = ApiKeyRow {
        id: new_id("key"),
        user_id: user_id.to_string(),
        name: name.to_string(),
        hash: hash_api_key(&plaintext),
        obfuscated,
        last_used_at: None,
        created_at: at,
        updated_at: at,
    };
    NewApiKey { plaintext, row }
}

pub fn org_to_wire(o: OrgRow) -> t::Org {
    t::Org {
        id: o.id,
        name: o.name,
        created_at: o.created_at,
    }
}

pub fn user_to_wire(u: UserRow) -> t::User {
    t::User {
        id: u.id,
        name: u.name,
        org_id: u.org_id,
        is_admin: u.is_admin,
        created_at: u.created_at,
    }
}

fn key_to_wire(k: ApiKeyRow) -> t::ApiKeySummary {
    t::ApiKeySummary {
        id: k.id,
        name: k.name,
        obfuscated_value: k.obfuscated,
        last_used_at: k.last_used_at,
        created_at: k.created_at,
        updated_at: k.updated_at,
    }
}

impl Service {
    /// The caller behind a bearer token, or `Unauthorized`.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn authenticate(&self, token: &str) -> Result<Caller> {
        if !token.starts_with("amk_") {
            return Err(ServiceError::Unauthorized);
        }
        let hash = hash_api_key(token);
        if let Some(caller) = self.auth_cache.get(&hash) {
            return Ok(caller);
        }
        // Key and user in one query: this runs before every request the cache does not answer.
        let (key, user) = match self.store.get_api_key_and_user_by_hash(&hash).await {
            Ok(found) => found,
            Err(StoreError::NotFound(_)) => return Err(ServiceError::Unauthorized),
            Err(e) => return Err(e.into()),
        };
        // Recording use costs a write: do it at most once a minute per key.
        let at = now();
        if key
            .last_used_at
            .is_none_or(|t| (at - t).num_seconds() >= 60)
        {
            self.store.touch_api_key(&key.id, at).await?;
        }
        let caller = Caller {
            user_id: user.id,
            user_name: user.name,
            org_id: user.org_id,
            is_admin: user.is_admin,
            api_key_id: key.id,
        };
        self.auth_cache.put(hash, &caller);
        Ok(caller)
    }

    /// On a database with no user: create org `default`, admin user `admin` and its first key.
    /// Returns the key's plaintext, or `None` when users already exist.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn bootstrap_first_admin(&self) -> Result<Option<Zeroizing<String>>> {
        if self.store.count_users().await? > 0 {
            return Ok(None);
        }
        let at = now();
        let org = OrgRow {
            id: new_id("org"),
            name: "default".into(),
            created_at: at,
        };
        self.store.create_org(&org).await?;
        let user = UserRow {
            id: new_id("usr"),
            org_id: org.id.clone(),
            name: "admin".into(),
            is_admin: true,
            created_at: at,
        };
        self.store.create_user(&user).await?;
        let key = generate_api_key(&user.id, "bootstrap");
        self.store.create_api_key(&key.row).await?;
        Ok(Some(key.plaintext))
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id))]
    pub async fn me(&self, caller: &Caller) -> Result<t::Me> {
        let org = self.store.get_org(&caller.org_id).await?;
        Ok(t::Me {
            user_id: caller.user_id.clone(),
            user_name: caller.user_name.clone(),
            org_id: org.id,
            org_name: org.name,
            is_admin: caller.is_admin,
        })
    }

    fn require_admin(caller: &Caller) -> Result<()> {
        if caller.is_admin {
            Ok(())
        } else {
            Err(ServiceError::Forbidden("this needs an org admin".into()))
        }
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id))]
    pub async fn create_org(&self, caller: &Caller, req: t::CreateOrgRequest) -> Result<t::Org> {
        Self::require_admin(caller)?;
        validate::label("org name", &req.name)?;
        let org = OrgRow {
            id: new_id("org"),
            name: req.name.trim().to_string(),
            created_at: now(),
        };
        self.store.create_org(&org).await?;
        Ok(org_to_wire(org))
    }

    /// An admin sees only their own org: orgs are tenants, and no org learns of another
    /// (not even its name), the same isolation every other endpoint keeps.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id))]
    pub async fn list_orgs(&self, caller: &Caller) -> Result<Vec<t::Org>> {
        Self::require_admin(caller)?;
        let own = self.store.get_org(&caller.org_id).await?;
        Ok(vec![org_to_wire(own)])
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id))]
    pub async fn create_user(
        &self,
        caller: &Caller,
        req: t::CreateUserRequest,
    ) -> Result<(t::User, Zeroizing<String>)> {
        Self::require_admin(caller)?;
        validate::label("user name", &req.name)?;
        let org = match self.store.get_org(&req.org).await {
            Ok(o) => o,
            Err(StoreError::NotFound(_)) => {
                self.store
                    .get_org_by_name(&req.org)
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound(_) => ServiceError::unprocessable(
                            ErrorCode::OrgNotFound,
                            format!("org {:?} not found", req.org),
                        )
                        .at("org"),
                        e => e.into(),
                    })?
            }
            Err(e) => return Err(e.into()),
        };
        // An admin may seed an org that has no member yet (its first admin), but never join
        // someone into another org's populated membership: that would open its org secrets.
        if org.id != caller.org_id && self.store.count_users_in_org(&org.id).await? > 0 {
            return Err(ServiceError::Forbidden(format!(
                "org {:?} already has members: ask one of its admins to add users",
                org.name
            )));
        }
        let user = UserRow {
            id: new_id("usr"),
            org_id: org.id,
            name: req.name.trim().to_string(),
            is_admin: req.is_admin,
            created_at: now(),
        };
        self.store.create_user(&user).await?;
        let key = generate_api_key(&user.id, "first key");
        self.store.create_api_key(&key.row).await?;
        Ok((user_to_wire(user), key.plaintext))
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id))]
    pub async fn create_api_key(
        &self,
        caller: &Caller,
        req: t::CreateApiKeyRequest,
    ) -> Result<(t::ApiKeySummary, Zeroizing<String>)> {
        validate::label("API key name", &req.name)?;
        let key = generate_api_key(&caller.user_id, req.name.trim());
        self.store.create_api_key(&key.row).await?;
        Ok((key_to_wire(key.row), key.plaintext))
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id))]
    pub async fn list_api_keys(&self, caller: &Caller) -> Result<t::ListApiKeysResponse> {
        let data = self
            .store
            .list_api_keys(&caller.user_id)
            .await?
            .into_iter()
            .map(key_to_wire)
            .collect();
        Ok(t::ListApiKeysResponse {
            data,
            page_info: t::PageInfo {
                after: None,
                has_next_page: false,
            },
        })
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, api_key = %id))]
    pub async fn delete_api_key(&self, caller: &Caller, id: &str) -> Result<()> {
        self.store.delete_api_key(&caller.user_id, id).await?;
        self.auth_cache.forget(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_random_prefixed_and_stored_only_as_hashes() {
        let a = generate_api_key("u", "k");
        let b = generate_api_key("u", "k");
        assert!(a.plaintext.starts_with("amk_") && a.plaintext.len() > 40);
        assert_ne!(*a.plaintext, *b.plaintext);
        assert_eq!(a.row.hash, hash_api_key(&a.plaintext));
        assert!(!format!("{:?}", a.row).contains(&a.plaintext[4..]));
        assert!(!format!("{a:?}").contains(&a.plaintext[4..]));
    }
}
