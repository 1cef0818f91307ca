//! A query's share of an engine's memory: [`QueryPool`] lets one query's operators
//! hold at most its own limit, out of the engine's pool that every query draws from,
//! so that a server running several queries at once stops the one that asks too much
//! rather than the ones that happen to ask next.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};

use super::human_bytes;

/// The memory of one query: at most `limit` bytes, each also taken from `engine`, the
/// pool of the engine it runs on.
#[derive(Debug)]
pub(crate) struct QueryPool {
    engine: Arc<dyn MemoryPool>,
    limit: usize,
    used: AtomicUsize,
}

impl QueryPool {
    /// A query's pool of at most `limit` bytes out of `engine`.
    pub(crate) fn new(engine: Arc<dyn MemoryPool>, limit: usize) -> QueryPool {
        QueryPool {
            engine,
            limit,
            used: AtomicUsize::new(0),
        }
    }
}

impl std::fmt::Display for QueryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "query pool: {} of {} held",
            human_bytes(self.reserved()),
            human_bytes(self.limit)
        )
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "query"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.engine.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.engine.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.engine.grow(reservation, additional);
        self.used.fetch_add(additional, Ordering::Relaxed);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.engine.shrink(reservation, shrink);
        self.used.fetch_sub(shrink, Ordering::Relaxed);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        // Claim the bytes first, so that two operators of the query growing at once
        // cannot both pass the check.
        let before = self.used.fetch_add(additional, Ordering::Relaxed);
        if before + additional > self.limit {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{} asked for {} more while the query held {} of its own limit of {}",
                reservation.consumer().name(),
                human_bytes(additional),
                human_bytes(before),
                human_bytes(self.limit)
            )));
        }
        if let Err(e) = self.engine.try_grow(reservation, additional) {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(e);
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::GreedyMemoryPool;

    #[test]
    fn a_query_holds_at_most_its_limit_and_what_the_engine_has_left() {
        let engine: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1000));
        let a: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(Arc::clone(&engine), 600));
        let b: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(Arc::clone(&engine), 600));
        let ra = MemoryConsumer::new("a").register(&a);
        let rb = MemoryConsumer::new("b").register(&b);
        ra.try_grow(500).unwrap();
        let e = ra.try_grow(200).unwrap_err().to_string();
        assert!(e.contains("own limit of 600 B"), "{e}");
        assert_eq!((a.reserved(), engine.reserved()), (500, 500));
        // B is within its own limit, but the engine has only 500 left.
        let e = rb.try_grow(600).unwrap_err().to_string();
        assert!(!e.contains("own limit"), "{e}");
        rb.try_grow(400).unwrap();
        assert_eq!((b.reserved(), engine.reserved()), (400, 900));
        drop(ra);
        assert_eq!((a.reserved(), engine.reserved()), (0, 400));
        rb.try_grow(200).unwrap();
        assert_eq!(b.reserved(), 600);
    }
}
