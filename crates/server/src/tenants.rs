//! Tenants as Tempo has them: the `X-Scope-OrgID` header names the tenant a request
//! reads (the store's directory of that name); without it, the server's default
//! tenant. Each tenant's engine is opened on its first request and kept warm. A tenant
//! without blocks answers empty, as Tempo does, not with an error.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use tokio::sync::Mutex;
use traceql_exec::store::Store;
use traceql_exec::{Engine, EngineOptions};

use crate::error::ApiError;

/// The header that names a request's tenant.
pub const TENANT_HEADER: &str = "x-scope-orgid";

/// The engines of a store's tenants.
pub struct Tenants {
    store: Store,
    options: EngineOptions,
    default: Arc<Engine>,
    others: Mutex<HashMap<String, Arc<Engine>>>,
}

impl Tenants {
    /// The tenants of `store`, whose own tenant (`store.tenant()`) is served by
    /// `default`; other tenants' engines are opened with `options`.
    pub fn new(store: Store, options: EngineOptions, default: Arc<Engine>) -> Tenants {
        Tenants {
            store,
            options,
            default,
            others: Mutex::new(HashMap::new()),
        }
    }

    /// The engine of `tenant` (the default one for `None` or the store's own tenant).
    pub async fn engine(&self, tenant: Option<&str>) -> Result<Arc<Engine>, ApiError> {
        let Some(tenant) = tenant.filter(|t| *t != self.store.tenant()) else {
            return Ok(Arc::clone(&self.default));
        };
        let valid = tenant.len() <= 150
            && tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && tenant != "."
            && tenant != "..";
        if !valid {
            return Err(ApiError::bad_request(format!(
                "invalid tenant `{tenant}` in X-Scope-OrgID: at most 150 letters, digits, \
                 `-`, `_` or `.`"
            )));
        }
        // One engine per tenant, opened once even when its first requests race.
        let mut others = self.others.lock().await;
        if let Some(engine) = others.get(tenant) {
            return Ok(Arc::clone(engine));
        }
        let store = self
            .store
            .clone()
            .with_tenant(tenant)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let engine = Arc::new(Engine::with_options(store, self.options.clone()).await?);
        others.insert(tenant.to_string(), Arc::clone(&engine));
        Ok(engine)
    }
}

/// The engine of the tenant a request names.
pub struct Tenant(pub Arc<Engine>);

impl FromRequestParts<Arc<Tenants>> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        tenants: &Arc<Tenants>,
    ) -> Result<Self, Self::Rejection> {
        let header = match parts.headers.get(TENANT_HEADER) {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| ApiError {
                status: StatusCode::BAD_REQUEST,
                message: "invalid tenant in X-Scope-OrgID: not text".into(),
            })?),
        };
        let tenant = header.map(str::trim).filter(|t| !t.is_empty());
        Ok(Tenant(tenants.engine(tenant).await?))
    }
}
