//! The work behind the receivers, in one loop: pending spans are cut into head blocks
//! (searchable from then on) every `cut_every`; a head that is large or old enough is
//! written to the store; every `maintain_every` each tenant's store is compacted and
//! retention applied.
//!
//! Writing a head keeps every query exact: the blocks are written hidden, then, while
//! no other engine can be published for the tenant, committed, taken out of the head
//! and the tenant's engine moved to the store's new listing — a query sees each span
//! either in the head or in the store, never both, never neither.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;
use traceql_exec::compact::{CompactOptions, compact, expire};

use super::{Ingest, IngestOptions};

/// How often the loop looks at the heads.
const TICK: Duration = Duration::from_millis(100);

/// After a failed flush, the wait before the next try.
const RETRY: Duration = Duration::from_secs(5);

/// Runs the work until aborted.
pub(super) async fn run(ingest: Arc<Ingest>, options: IngestOptions) {
    let mut flushing: HashMap<String, JoinHandle<Result<(), String>>> = HashMap::new();
    let mut retry_at: HashMap<String, Instant> = HashMap::new();
    let mut maintaining: Option<JoinHandle<()>> = None;
    let mut maintained = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for tenant in ingest.live.tenants() {
            if ingest.live.cut_due(&tenant, options.cut_every) {
                let (live, name) = (Arc::clone(&ingest.live), tenant.clone());
                match tokio::task::spawn_blocking(move || live.cut(&name)).await {
                    Ok(Ok(true)) => ingest.tenants.publish(&tenant, false).await,
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => eprintln!("traceql serve: {e}"),
                    Err(e) => eprintln!("traceql serve: cutting the head failed: {e}"),
                }
            }
            if let Some(running) = flushing.get(&tenant) {
                if !running.is_finished() {
                    continue;
                }
                let running = flushing.remove(&tenant).expect("present");
                if let Ok(Err(e)) | Err(e) = running.await.map_err(|e| e.to_string()) {
                    ingest.live.flush_failed(&tenant);
                    ingest
                        .live
                        .counters
                        .flush_failures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    eprintln!(
                        "traceql serve: cannot write tenant {tenant}'s head to the store \
                         (retrying in {}s): {e}",
                        RETRY.as_secs()
                    );
                    retry_at.insert(tenant.clone(), Instant::now() + RETRY);
                }
            }
            let waiting = retry_at.get(&tenant).is_some_and(|t| Instant::now() < *t);
            if !waiting && ingest.live.due(&tenant) {
                retry_at.remove(&tenant);
                let ingest = Arc::clone(&ingest);
                let name = tenant.clone();
                flushing.insert(
                    tenant,
                    tokio::spawn(async move { flush(&ingest, &name).await }),
                );
            }
        }
        let idle = maintaining.as_ref().is_none_or(JoinHandle::is_finished);
        if idle && maintained.elapsed() >= options.maintain_every {
            maintained = Instant::now();
            let ingest = Arc::clone(&ingest);
            let retention = options.retention;
            maintaining = Some(tokio::spawn(
                async move { maintain(&ingest, retention).await },
            ));
        }
    }
}

/// Writes `tenant`'s head to the store.
async fn flush(ingest: &Ingest, tenant: &str) -> Result<(), String> {
    let live = &ingest.live;
    let blocks = {
        let (live, name) = (Arc::clone(live), tenant.to_string());
        tokio::task::spawn_blocking(move || live.to_flush(&name))
            .await
            .map_err(|e| format!("cutting the head failed: {e}"))??
    };
    if blocks.is_empty() {
        return Ok(());
    }
    // What was pending is searchable from now on, while it is written.
    ingest.tenants.publish(tenant, false).await;
    let store = ingest.tenants.store_of(tenant).map_err(|e| e.message)?;
    let (txn, flushed) =
        traceql_live::flush::write(&store, live.log_id(), &blocks, &live.options().block)
            .await
            .map_err(|e| e.to_string())?;
    let _publishing = ingest.tenants.publishing(tenant).await;
    if let Err(e) = store.commit(txn, &[]).await {
        return Err(e.to_string());
    }
    live.flushed(tenant, &blocks, &flushed);
    ingest.tenants.publish_locked(tenant, true).await;
    Ok(())
}

/// Applies retention to every tenant's store, then compacts it.
async fn maintain(ingest: &Ingest, retention: Option<Duration>) {
    let options = CompactOptions {
        write: traceql_exec::ingest::IngestOptions {
            block: ingest.live.options().block.clone(),
            ..traceql_exec::ingest::IngestOptions::default()
        },
        all: false,
    };
    for tenant in ingest.tenants.open_tenants().await {
        let store = match ingest.tenants.store_of(&tenant) {
            Ok(store) => store,
            Err(e) => {
                eprintln!("traceql serve: {}", e.message);
                continue;
            }
        };
        if let Some(retention) = retention {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64;
            let before = now.saturating_sub(retention.as_nanos() as u64);
            match expire(&store, before).await {
                Ok(0) => {}
                Ok(n) => {
                    eprintln!("traceql serve: retention removed {n} blocks of tenant {tenant}")
                }
                Err(e) => eprintln!("traceql serve: retention of tenant {tenant} failed: {e}"),
            }
        }
        // Compaction's progress callback is not `Send`: it runs on a thread of its own.
        let handle = tokio::runtime::Handle::current();
        let options = options.clone();
        let compacted = tokio::task::spawn_blocking(move || {
            handle.block_on(async { compact(&store, &options, &|_| {}).await.map(|_| ()) })
        })
        .await;
        if let Ok(Err(e)) = compacted {
            eprintln!("traceql serve: compacting tenant {tenant} failed: {e}");
        }
        ingest.tenants.publish(&tenant, true).await;
    }
}
