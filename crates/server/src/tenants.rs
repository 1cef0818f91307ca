//! Tenants as Tempo has them: the `X-Scope-OrgID` header names the tenant a request
//! reads (the store's directory of that name); without it, the server's default
//! tenant. Each tenant's engine is opened on its first request and kept warm, and
//! moved to a new engine (sharing the old one's caches) when its blocks change. Every
//! tenant's engine shares the default tenant's session, so one memory limit covers the
//! queries of all tenants. A tenant without blocks answers empty, as Tempo does, not
//! with an error.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::HeaderValue;
use axum::http::request::Parts;
use tokio::sync::Mutex;
use traceql_exec::Engine;
use traceql_exec::store::Store;
use traceql_live::Live;

use crate::error::ApiError;

/// The header that names a request's tenant.
pub const TENANT_HEADER: &str = "x-scope-orgid";

/// The engines of a store's tenants, each kept current with its blocks.
pub struct Tenants {
    store: Store,
    /// The default tenant's first engine, whose session every tenant's engine shares.
    base: Arc<Engine>,
    /// How often each tenant's blocks are listed again.
    refresh_every: Duration,
    /// Per tenant, its current engine.
    engines: Mutex<HashMap<String, Arc<Current>>>,
    /// The heads served beside the stores' blocks, when the server takes spans.
    live: OnceLock<Arc<Live>>,
    /// Per tenant, held while its engine is published (see [`Tenants::publishing`]).
    publishing: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

/// A tenant's current engine, replaced when its blocks change; a query keeps the
/// engine it started on.
struct Current(std::sync::RwLock<Arc<Engine>>);

impl Current {
    fn get(&self) -> Arc<Engine> {
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn set(&self, engine: Engine) {
        self.set_arc(Arc::new(engine));
    }

    fn set_arc(&self, engine: Arc<Engine>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = engine;
    }
}

impl Tenants {
    /// The tenants of `store`, whose own tenant (`store.tenant()`) is served by
    /// `default`; other tenants' engines share its session (see [`Engine::sharing`]).
    /// Each tenant's blocks are listed again every `refresh_every` (see
    /// [`Tenants::keep_fresh`]).
    pub fn new(store: Store, default: Arc<Engine>, refresh_every: Duration) -> Tenants {
        let mut engines = HashMap::new();
        engines.insert(
            store.tenant().to_string(),
            Arc::new(Current(std::sync::RwLock::new(Arc::clone(&default)))),
        );
        Tenants {
            store,
            base: default,
            refresh_every,
            engines: Mutex::new(engines),
            live: OnceLock::new(),
            publishing: Mutex::new(HashMap::new()),
        }
    }

    /// The engine of `tenant` (the store's own tenant for `None`).
    pub async fn engine(&self, tenant: Option<&str>) -> Result<Arc<Engine>, ApiError> {
        let tenant = tenant.unwrap_or(self.store.tenant());
        check_tenant(tenant)?;
        // One engine per tenant, opened once even when its first requests race.
        let mut engines = self.engines.lock().await;
        if let Some(current) = engines.get(tenant) {
            return Ok(current.get());
        }
        let store = self
            .store
            .clone()
            .with_tenant(tenant)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let mut engine = self.base.sharing(store).await?;
        if let Some(live) = self.live.get() {
            engine = engine.with_live(live.sources(tenant));
        }
        let engine = Arc::new(engine);
        let current = Current(std::sync::RwLock::new(Arc::clone(&engine)));
        engines.insert(tenant.to_string(), Arc::new(current));
        Ok(engine)
    }

    /// Lists every open tenant's blocks again and moves it to a new engine where they
    /// changed: new blocks are searched, deleted or compacted ones are no longer read.
    pub async fn refresh(&self) {
        for tenant in self.open_tenants().await {
            self.publish(&tenant, true).await;
        }
    }

    /// The tenants whose engines are open.
    pub async fn open_tenants(&self) -> Vec<String> {
        self.engines.lock().await.keys().cloned().collect()
    }

    /// Serves the heads of `live` beside the stores' blocks, from each tenant's next
    /// engine on.
    pub fn set_live(&self, live: Arc<Live>) {
        let _ = self.live.set(live);
    }

    /// The store of `tenant`.
    pub fn store_of(&self, tenant: &str) -> Result<Store, ApiError> {
        check_tenant(tenant)?;
        self.store
            .clone()
            .with_tenant(tenant)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }

    /// Holds off every other publication of `tenant`'s engine while held: a flush
    /// commits its blocks and takes them out of the head under it.
    pub async fn publishing(&self, tenant: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.publishing.lock().await;
            Arc::clone(locks.entry(tenant.to_string()).or_default())
        };
        lock.lock_owned().await
    }

    /// Moves `tenant` to an engine over its head as it is now and, if `relist`, its
    /// store's blocks listed again.
    pub async fn publish(&self, tenant: &str, relist: bool) {
        let _publishing = self.publishing(tenant).await;
        self.publish_locked(tenant, relist).await;
    }

    /// [`Tenants::publish`], for a caller that holds [`Tenants::publishing`].
    pub async fn publish_locked(&self, tenant: &str, relist: bool) {
        let current = {
            let engines = self.engines.lock().await;
            engines.get(tenant).cloned()
        };
        let Some(current) = current else {
            // Opened on its first query, with its head.
            if let Err(e) = self.engine(Some(tenant)).await {
                eprintln!("traceql serve: cannot open tenant {tenant}: {}", e.message);
            }
            return;
        };
        let mut engine = current.get();
        if relist {
            match engine.refreshed().await {
                Ok(Some(fresh)) => engine = Arc::new(fresh),
                Ok(None) => {}
                Err(e) => {
                    eprintln!("traceql serve: cannot list tenant {tenant}'s blocks: {e}");
                }
            }
        }
        match self.live.get() {
            Some(live) => current.set(engine.with_live(live.sources(tenant))),
            None if relist => current.set_arc(engine),
            None => {}
        }
    }

    /// Refreshes the tenants every `refresh_every`, until the task is aborted.
    pub fn keep_fresh(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let tenants = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(tenants.refresh_every).await;
                tenants.refresh().await;
            }
        })
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
        let header = parts.headers.get(TENANT_HEADER);
        Ok(Tenant(tenants.engine_of(header).await?))
    }
}

impl Tenants {
    /// The engine of the tenant an `X-Scope-OrgID` header (HTTP) or metadata (gRPC)
    /// names; without one, or with an empty one, the store's own tenant.
    pub async fn engine_of(&self, header: Option<&HeaderValue>) -> Result<Arc<Engine>, ApiError> {
        let tenant = self.tenant_name(header)?;
        self.engine(Some(&tenant)).await
    }

    /// The tenant an `X-Scope-OrgID` header names: the store's own tenant without one,
    /// or with an empty one.
    pub fn tenant_name(&self, header: Option<&HeaderValue>) -> Result<String, ApiError> {
        let named =
            match header {
                None => None,
                Some(value) => Some(value.to_str().map_err(|_| {
                    ApiError::bad_request("invalid tenant in X-Scope-OrgID: not text")
                })?),
            };
        let tenant = named
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or(self.store.tenant());
        check_tenant(tenant)?;
        Ok(tenant.to_string())
    }
}

/// An error unless `tenant` is a valid tenant name.
fn check_tenant(tenant: &str) -> Result<(), ApiError> {
    let valid = tenant.len() <= 150
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && tenant != "."
        && tenant != "..";
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid tenant `{tenant}` in X-Scope-OrgID: at most 150 letters, digits, \
             `-`, `_` or `.`"
        )))
    }
}
