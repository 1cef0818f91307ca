//! Transactions: the blocks an ingest or a compaction writes become visible, and the
//! blocks a compaction replaces invisible, in one step.
//!
//! A transaction first writes an open record, `<tenant>/_txn/<id>.open`, then its
//! blocks, each carrying the transaction id in its `meta.json` ([`BlockMeta::txn`]),
//! which hides it. Committing is one atomic put of `<tenant>/_txn/<id>.json`, the
//! commit record, naming the blocks written and the blocks replaced: from then on
//! listings show the new blocks and not the replaced ones. A transaction that dies
//! before committing leaves only hidden blocks and its open record, which the next
//! [`Store::tidy`] deletes.
//!
//! Tidying also folds committed transactions away, in an order that keeps every
//! listing right at every step: replaced blocks are deleted (`meta.json` first), then
//! the new blocks' `meta.json` are rewritten without the transaction id, then the
//! commit record is deleted.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use traceql_format::block::{BlockMeta, EncodedBlock};
use traceql_format::block::{DATA_FILE, META_FILE};

use super::{Store, StoreError, StoreErrorKind, failed};

/// The directory under the tenant that holds transaction records.
const TXN_DIR: &str = "_txn";

/// How long after a transaction commits [`Store::tidy`] may delete the blocks it
/// replaced and fold it away: longer than any listing or query that began before the
/// commit can take.
pub const TIDY_GRACE: Duration = Duration::from_secs(600);

/// An open transaction whose process cannot be checked (another host) is taken for
/// dead after this long.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// `<id>.open`: a transaction under way, and who runs it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct OpenRecord {
    /// The transaction id.
    pub id: String,
    /// What it does: `ingest`, `gen`, `compact`.
    pub kind: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id on that host.
    pub pid: u32,
    /// When it began, unix nanoseconds.
    pub started_unix_nano: u64,
}

/// `<id>.json`: a committed transaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CommitRecord {
    /// The transaction id.
    pub id: String,
    /// What it did: `ingest`, `gen`, `compact`.
    pub kind: String,
    /// The blocks it wrote, visible from the commit on.
    pub blocks: Vec<String>,
    /// The blocks it replaced, invisible from the commit on.
    #[serde(default)]
    pub replaces: Vec<String>,
    /// When it committed, unix nanoseconds.
    #[serde(default)]
    pub committed_unix_nano: u64,
}

/// A transaction under way: the blocks it has written so far.
#[derive(Debug)]
pub struct Txn {
    id: String,
    kind: String,
    blocks: Vec<String>,
    wal_marks: BTreeMap<String, u64>,
}

impl Txn {
    /// Marks every block the transaction writes from now on as holding the records of
    /// write-ahead logs up to `marks` ([`BlockMeta::wal_marks`]), keeping the higher
    /// mark of a log marked already.
    pub fn mark(&mut self, marks: &BTreeMap<String, u64>) {
        for (log, &last) in marks {
            let mark = self.wal_marks.entry(log.clone()).or_insert(last);
            *mark = (*mark).max(last);
        }
    }
}

/// What decides which blocks a listing shows.
#[derive(Debug, Default)]
pub(crate) struct Visibility {
    committed: HashSet<String>,
    replaced: HashSet<String>,
}

impl Visibility {
    /// Whether block `meta` is visible.
    pub(crate) fn shows(&self, meta: &BlockMeta) -> bool {
        meta.txn.as_ref().is_none_or(|t| self.committed.contains(t))
            && !self.replaced.contains(&meta.id)
    }
}

/// The transaction records among the objects under a tenant.
#[derive(Debug, Default)]
pub(crate) struct Records {
    /// Paths of commit records.
    pub(crate) commits: Vec<Path>,
    /// Paths of open records.
    pub(crate) open: Vec<Path>,
}

impl Records {
    /// Sorts `parts` (an object's path below the tenant) into the records; false if it
    /// is not one.
    pub(crate) fn add(&mut self, parts: &[&str], location: &Path) -> bool {
        if parts.len() != 2 || parts[0] != TXN_DIR {
            return false;
        }
        if parts[1].ends_with(".json") {
            self.commits.push(location.clone());
        } else if parts[1].ends_with(".open") {
            self.open.push(location.clone());
        }
        true
    }
}

/// What [`Store::tidy`] did.
#[derive(Debug, Default)]
pub struct TidyReport {
    /// Transactions found dead and rolled back.
    pub rolled_back: usize,
    /// Blocks deleted: of dead transactions, or replaced by committed ones.
    pub deleted_blocks: usize,
    /// Committed transactions folded into plain blocks.
    pub folded: usize,
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

/// Whether the transaction of `record` may still be running: on this host, whether
/// its process is (where `/proc` tells); elsewhere, whether it began within
/// [`STALE_AFTER`].
fn alive(record: &OpenRecord) -> bool {
    let here = host_name();
    if !here.is_empty()
        && record.host == here
        && let Some(running) = process_running(record.pid)
    {
        return running;
    }
    now_nanos().saturating_sub(record.started_unix_nano) < STALE_AFTER.as_nanos() as u64
}

/// Whether process `pid` of this host runs; `None` where `/proc` does not tell.
pub(crate) fn process_running(pid: u32) -> Option<bool> {
    std::path::Path::new("/proc/self").exists().then(|| {
        pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists()
    })
}

/// The transaction id a record at `path` is named by (`<id>.open`, `<id>.json`).
fn record_id(path: &Path) -> &str {
    let name = path.filename().unwrap_or_default();
    name.rsplit_once('.').map_or(name, |(id, _)| id)
}

fn encode_error(e: serde_json::Error) -> StoreError {
    StoreError::new(StoreErrorKind::Other, e.to_string())
}

impl Store {
    fn txn_path(&self, id: &str, ext: &str) -> Path {
        self.tenant_dir()
            .join(TXN_DIR)
            .join(format!("{id}.{ext}").as_str())
    }

    async fn put_json(&self, path: &Path, value: &impl Serialize) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(encode_error)?;
        self.object_store
            .put(path, PutPayload::from(bytes))
            .await
            .map_err(|e| self.write_failed(path, &e))?;
        Ok(())
    }

    async fn delete(&self, path: &Path) -> Result<(), StoreError> {
        match self.object_store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(failed(&e, |c| {
                format!("cannot delete {path} from {}: {c}", self.display)
            })),
        }
    }

    /// Deletes block `id`: `meta.json` first, so it is never half visible.
    pub(crate) async fn delete_block(&self, id: &str) -> Result<(), StoreError> {
        self.delete(&self.block_path(id, META_FILE)).await?;
        self.delete(&self.block_path(id, DATA_FILE)).await
    }

    /// Begins a transaction of kind `kind` (`ingest`, `gen`, `compact`).
    pub async fn begin(&self, kind: &str) -> Result<Txn, StoreError> {
        let id = super::new_block_id();
        let record = OpenRecord {
            id: id.clone(),
            kind: kind.into(),
            host: host_name(),
            pid: std::process::id(),
            started_unix_nano: now_nanos(),
        };
        self.put_json(&self.txn_path(&id, "open"), &record).await?;
        Ok(Txn {
            id,
            kind: kind.into(),
            blocks: Vec::new(),
            wal_marks: BTreeMap::new(),
        })
    }

    /// Writes `block` as part of `txn`: hidden until `txn` commits.
    pub async fn write_txn_block(
        &self,
        txn: &mut Txn,
        block: &mut EncodedBlock,
    ) -> Result<(), StoreError> {
        block.meta.txn = Some(txn.id.clone());
        block.meta.wal_marks.clone_from(&txn.wal_marks);
        txn.blocks.push(block.meta.id.clone());
        self.write_block(block).await
    }

    /// Commits `txn`: its blocks become visible, and the blocks `replaces` names
    /// invisible, in one step.
    pub async fn commit(&self, txn: Txn, replaces: &[String]) -> Result<(), StoreError> {
        let record = CommitRecord {
            id: txn.id.clone(),
            kind: txn.kind,
            blocks: txn.blocks,
            replaces: replaces.to_vec(),
            committed_unix_nano: now_nanos(),
        };
        self.put_json(&self.txn_path(&txn.id, "json"), &record)
            .await?;
        self.delete(&self.txn_path(&txn.id, "open")).await
    }

    /// Abandons `txn`: deletes the blocks it wrote and its open record. (A transaction
    /// that cannot do this, killed say, is rolled back by the next [`Store::tidy`].)
    pub async fn abort(&self, txn: Txn) -> Result<(), StoreError> {
        for id in &txn.blocks {
            self.delete_block(id).await?;
        }
        self.delete(&self.txn_path(&txn.id, "open")).await
    }

    /// The object at `path`, `None` if it is not there (deleted since it was listed).
    async fn get_if_present(&self, path: &Path) -> Result<Option<Bytes>, StoreError> {
        let bytes = match self.object_store.get(path).await {
            Ok(got) => got.bytes().await,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => Err(e),
        };
        bytes.map(Some).map_err(|e| {
            failed(&e, |c| {
                format!("cannot read {path} from {}: {c}", self.display)
            })
        })
    }

    /// Reads the commit records at `paths`.
    async fn commit_records(&self, paths: &[Path]) -> Result<Vec<CommitRecord>, StoreError> {
        let mut records = Vec::new();
        for path in paths {
            let Some(bytes) = self.get_if_present(path).await? else {
                continue;
            };
            records.push(serde_json::from_slice(&bytes).map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Corrupt,
                    format!("{}: {path}: invalid commit record: {e}", self.display),
                )
            })?);
        }
        Ok(records)
    }

    /// What listings show, from the commit records at `paths`.
    pub(crate) async fn visibility(&self, paths: &[Path]) -> Result<Visibility, StoreError> {
        let mut v = Visibility::default();
        for record in self.commit_records(paths).await? {
            v.committed.insert(record.id);
            v.replaced.extend(record.replaces);
        }
        Ok(v)
    }

    /// Whether a live transaction of kind `kind` is under way (another compaction,
    /// say).
    pub async fn running(&self, kind: &str) -> Result<bool, StoreError> {
        let prefix = self.tenant_dir().join(TXN_DIR);
        for object in self.list_under(&prefix).await? {
            if !object.location.as_ref().ends_with(".open") {
                continue;
            }
            if let Some(record) = self.open_record(&object.location).await?
                && record.kind == kind
                && alive(&record)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn open_record(&self, path: &Path) -> Result<Option<OpenRecord>, StoreError> {
        let Some(bytes) = self.get_if_present(path).await? else {
            return Ok(None);
        };
        // A record cut short by a crash is as good as a dead transaction's.
        Ok(Some(serde_json::from_slice(&bytes).unwrap_or(OpenRecord {
            id: record_id(path).into(),
            kind: String::new(),
            host: String::new(),
            pid: 0,
            started_unix_nano: 0,
        })))
    }

    /// Cleans up after transactions: rolls back dead ones (their hidden blocks and open
    /// records are deleted, at once), and, for transactions committed more than `grace`
    /// ago (so no listing or query still under way can be using what goes), deletes
    /// the blocks they replaced and folds them into plain blocks. Safe to run at any
    /// time and to kill at any moment; live transactions are left alone.
    pub async fn tidy(&self, grace: Duration) -> Result<TidyReport, StoreError> {
        let scan = self.scan().await?;
        let mut report = TidyReport::default();
        let commits = self.commit_records(&scan.records.commits).await?;
        let committed: HashSet<&str> = commits.iter().map(|c| c.id.as_str()).collect();
        for path in &scan.records.open {
            let Some(record) = self.open_record(path).await? else {
                continue;
            };
            if committed.contains(record.id.as_str()) {
                // Killed between committing and deleting its open record.
                self.delete(path).await?;
                continue;
            }
            if alive(&record) {
                continue;
            }
            for meta in scan.metas() {
                if meta.txn.as_deref() == Some(record.id.as_str()) {
                    self.delete_block(&meta.id).await?;
                    report.deleted_blocks += 1;
                }
            }
            self.delete(path).await?;
            report.rolled_back += 1;
        }
        // Blocks of transactions neither open nor committed: left by a roll-back that
        // was cut short. (Those of dead transactions with open records went above.)
        let opened: HashSet<&str> = scan.records.open.iter().map(record_id).collect();
        for meta in scan.metas() {
            if let Some(t) = &meta.txn
                && !committed.contains(t.as_str())
                && !opened.contains(t.as_str())
            {
                self.delete_block(&meta.id).await?;
                report.deleted_blocks += 1;
            }
        }
        let cutoff = now_nanos().saturating_sub(grace.as_nanos() as u64);
        let due: Vec<&CommitRecord> = commits
            .iter()
            .filter(|c| c.committed_unix_nano <= cutoff)
            .collect();
        // In this order, every listing is right at every step: what the commits
        // replaced goes first; then their blocks stand on their own; then the records.
        let replaced: HashSet<&str> = due
            .iter()
            .flat_map(|c| c.replaces.iter().map(String::as_str))
            .collect();
        for meta in scan.metas() {
            if replaced.contains(meta.id.as_str()) {
                self.delete_block(&meta.id).await?;
                report.deleted_blocks += 1;
            }
        }
        for record in &due {
            for meta in scan.metas() {
                if meta.txn.as_deref() == Some(record.id.as_str())
                    && !replaced.contains(meta.id.as_str())
                {
                    let mut plain = meta.clone();
                    plain.txn = None;
                    let path = self.block_path(&meta.id, META_FILE);
                    self.put_json(&path, &plain).await?;
                }
            }
        }
        for record in &due {
            self.delete(&self.txn_path(&record.id, "json")).await?;
            report.folded += 1;
        }
        Ok(report)
    }
}
