//! The write-ahead log: what a server acknowledges is first here, on local disk.
//!
//! The log is a directory of segments, `<first record>.wal` (the number of the first
//! record it holds, 20 digits), and `id`, the log's own id, which the blocks made of its
//! records carry ([`traceql_format::block::BlockMeta::wal_marks`]). A record is
//!
//! ```text
//! length u32 LE | crc32 u32 LE | number u64 LE | tenant length u16 LE | tenant | payload
//! ```
//!
//! where `length` counts the bytes after the checksum and the checksum covers them.
//! Records are numbered one after another across segments and never reused: the newest
//! segment is never deleted, and its name says where numbering goes on.
//!
//! Appends are committed in groups: one thread writes every record waiting, syncs the
//! file once (`fdatasync`), then hands each record's data on in order ([`Wal::start`]'s
//! `apply`) and answers its caller, so throughput does not collapse under many small
//! requests, and whatever reads the applied records sees a prefix of the log. A failed
//! write or sync fails the group and every later append: the log cannot say what is
//! durable after that.
//!
//! On start the log is read back ([`Wal::open`]): a record torn by a crash at the end of
//! the newest segment (never acknowledged) is cut off; a damaged record anywhere else is
//! an error naming the file and place, never silently skipped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::oneshot;

/// A segment is closed and a new one begun past this size.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// The most bytes of records written in one group.
const GROUP_BYTES: usize = 16 << 20;

/// Records waiting for the writer, at most: an append beyond waits its turn.
const QUEUE: usize = 4096;

/// Bytes before a record's payload other than the tenant: length, checksum, number,
/// tenant length.
const HEADER: usize = 4 + 4 + 8 + 2;

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its number.
    pub number: u64,
    /// The tenant it belongs to.
    pub tenant: String,
    /// What was appended.
    pub payload: Vec<u8>,
}

/// What an append failed of.
#[derive(Debug, Clone)]
pub struct WalError(pub String);

impl std::fmt::Display for WalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WalError {}

/// A log opened and read back, not yet written to.
pub struct Opened {
    /// The log's id.
    pub id: String,
    /// Its records, in order.
    pub records: Vec<Record>,
    /// What was cut off the end of the newest segment (a record torn by a crash), as a
    /// message for the operator.
    pub cut: Option<String>,
    dir: PathBuf,
    segments: Vec<u64>,
    next: u64,
}

/// The segments of a log and the number of its next record.
struct Segments {
    dir: PathBuf,
    /// First record of each segment, oldest first; the last is the one written.
    firsts: Vec<u64>,
}

/// An append waiting for the writer.
struct Append<T> {
    tenant: String,
    payload: Bytes,
    data: T,
    done: oneshot::Sender<Result<u64, WalError>>,
}

/// A log being written.
pub struct Wal<T> {
    id: String,
    tx: SyncSender<Append<T>>,
    segments: Arc<Mutex<Segments>>,
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.wal"))
}

fn io_error(what: impl std::fmt::Display, e: &io::Error) -> WalError {
    WalError(format!("{what}: {e}"))
}

impl Wal<()> {
    /// Opens the log in `dir` (made if missing) and reads its records back.
    pub fn open(dir: &Path) -> Result<Opened, WalError> {
        fs::create_dir_all(dir)
            .map_err(|e| io_error(format_args!("cannot make {}", dir.display()), &e))?;
        let id_path = dir.join("id");
        let id = match fs::read_to_string(&id_path) {
            Ok(id) => id.trim().to_string(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let id = traceql_exec::store::new_block_id();
                write_synced(&id_path, id.as_bytes()).map_err(|e| {
                    io_error(format_args!("cannot write {}", id_path.display()), &e)
                })?;
                sync_dir(dir)
                    .map_err(|e| io_error(format_args!("cannot sync {}", dir.display()), &e))?;
                id
            }
            Err(e) => {
                return Err(io_error(
                    format_args!("cannot read {}", id_path.display()),
                    &e,
                ));
            }
        };
        let mut segments: Vec<u64> = fs::read_dir(dir)
            .map_err(|e| io_error(format_args!("cannot read {}", dir.display()), &e))?
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".wal")?.parse().ok()
            })
            .collect();
        segments.sort_unstable();
        let mut records = Vec::new();
        let mut cut = None;
        let mut next = segments.last().copied().unwrap_or(0);
        for (i, &first) in segments.iter().enumerate() {
            let path = segment_path(dir, first);
            let newest = i + 1 == segments.len();
            let read = read_segment(&path, first)?;
            if let Some(end) = read.damaged_at {
                let place = format!("{} at byte {end}", path.display());
                if !newest {
                    return Err(WalError(format!(
                        "the write-ahead log is damaged: {place} does not hold a whole, \
                         intact record, and later segments follow it; move the segment \
                         away to start without the records from there on"
                    )));
                }
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(end).and_then(|()| f.sync_all()))
                    .map_err(|e| io_error(format_args!("cannot cut {place}"), &e));
                file?;
                cut = Some(format!(
                    "cut a record torn by a crash off the end of {place} (it was never \
                     acknowledged)"
                ));
            }
            if let Some(last) = read.records.last() {
                next = last.number + 1;
            }
            records.extend(read.records);
        }
        Ok(Opened {
            id,
            records,
            cut,
            dir: dir.to_path_buf(),
            segments,
            next,
        })
    }
}

/// The records of one segment, and where a damaged or torn record begins.
struct ReadSegment {
    records: Vec<Record>,
    damaged_at: Option<u64>,
}

fn read_segment(path: &Path, first: u64) -> Result<ReadSegment, WalError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| io_error(format_args!("cannot read {}", path.display()), &e))?;
    let mut records = Vec::new();
    let mut at = 0usize;
    let mut expected = first;
    while at < bytes.len() {
        match parse_record(&bytes[at..]) {
            Some((record, used)) if record.number == expected => {
                expected += 1;
                at += used;
                records.push(record);
            }
            _ => {
                return Ok(ReadSegment {
                    records,
                    damaged_at: Some(at as u64),
                });
            }
        }
    }
    Ok(ReadSegment {
        records,
        damaged_at: None,
    })
}

/// The record at the start of `bytes` and the bytes it takes, if whole and intact.
fn parse_record(bytes: &[u8]) -> Option<(Record, usize)> {
    let length = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    let body = bytes.get(8..8 + length)?;
    if crc32fast::hash(body) != crc || length < HEADER - 8 {
        return None;
    }
    let number = u64::from_le_bytes(body[0..8].try_into().ok()?);
    let tenant_len = u16::from_le_bytes(body[8..10].try_into().ok()?) as usize;
    let tenant = std::str::from_utf8(body.get(10..10 + tenant_len)?).ok()?;
    Some((
        Record {
            number,
            tenant: tenant.to_string(),
            payload: body[10 + tenant_len..].to_vec(),
        },
        8 + length,
    ))
}

/// Appends the record to `out`.
fn encode_record(out: &mut Vec<u8>, number: u64, tenant: &str, payload: &[u8]) {
    let start = out.len();
    let length = HEADER - 8 + tenant.len() + payload.len();
    out.extend_from_slice(&(length as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&number.to_le_bytes());
    out.extend_from_slice(&(tenant.len() as u16).to_le_bytes());
    out.extend_from_slice(tenant.as_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl<T: Send + 'static> Wal<T> {
    /// Starts writing the log `opened`: a thread takes appends in groups, writes and
    /// syncs each group, then calls `apply` with each record's number, tenant and data,
    /// in order, before its append is answered.
    pub fn start(
        opened: Opened,
        mut apply: impl FnMut(u64, &str, T) + Send + 'static,
    ) -> Result<Wal<T>, WalError> {
        let Opened {
            id,
            dir,
            mut segments,
            next,
            ..
        } = opened;
        if segments.is_empty() {
            segments.push(next);
        }
        let newest = *segments.last().expect("a segment");
        let path = segment_path(&dir, newest);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error(format_args!("cannot open {}", path.display()), &e))?;
        sync_dir(&dir).map_err(|e| io_error(format_args!("cannot sync {}", dir.display()), &e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let shared = Arc::new(Mutex::new(Segments {
            dir: dir.clone(),
            firsts: segments,
        }));
        let (tx, rx) = sync_channel(QUEUE);
        let writer = Writer {
            dir,
            file: BufWriter::with_capacity(1 << 20, file),
            size,
            next,
            segments: Arc::clone(&shared),
            broken: None,
        };
        std::thread::Builder::new()
            .name("traceql-wal".into())
            .spawn(move || writer.run(rx, &mut apply))
            .map_err(|e| io_error("cannot start the log's writer", &e))?;
        Ok(Wal {
            id,
            tx,
            segments: shared,
        })
    }

    /// The log's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Appends `payload` for `tenant`, with `data` to hand to `apply` once it is
    /// durable; answers the record's number then, or why it could not be written.
    pub async fn append(
        &self,
        tenant: &str,
        payload: impl Into<Bytes>,
        data: T,
    ) -> Result<u64, WalError> {
        if tenant.len() > u16::MAX as usize {
            return Err(WalError("the tenant's name is too long".into()));
        }
        let (done, answer) = oneshot::channel();
        let append = Append {
            tenant: tenant.to_string(),
            payload: payload.into(),
            data,
            done,
        };
        let tx = self.tx.clone();
        // The queue is bounded: waiting for room must not hold up the runtime.
        let sent = match tx.try_send(append) {
            Ok(()) => Ok(()),
            Err(std::sync::mpsc::TrySendError::Full(append)) => {
                tokio::task::spawn_blocking(move || tx.send(append).map_err(|_| ()))
                    .await
                    .unwrap_or(Err(()))
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => Err(()),
        };
        if sent.is_err() {
            return Err(WalError("the write-ahead log's writer has stopped".into()));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(WalError("the write-ahead log's writer has stopped".into())))
    }

    /// Deletes the segments that hold only records up to `through` (they are all in
    /// blocks of the store now); the segment being written stays.
    pub fn release(&self, through: u64) -> Result<usize, WalError> {
        let mut segments = self.segments.lock().unwrap_or_else(|e| e.into_inner());
        let mut deleted = 0;
        while segments.firsts.len() > 1 && segments.firsts[1] <= through + 1 {
            let path = segment_path(&segments.dir, segments.firsts[0]);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(io_error(
                        format_args!("cannot delete {}", path.display()),
                        &e,
                    ));
                }
            }
            segments.firsts.remove(0);
            deleted += 1;
        }
        Ok(deleted)
    }

    /// How many segments the log has.
    pub fn segments(&self) -> usize {
        self.segments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .firsts
            .len()
    }
}

/// The writer thread's state.
struct Writer {
    dir: PathBuf,
    file: BufWriter<File>,
    size: u64,
    next: u64,
    segments: Arc<Mutex<Segments>>,
    /// Why the log cannot be written any more.
    broken: Option<WalError>,
}

impl Writer {
    fn run<T>(mut self, rx: Receiver<Append<T>>, apply: &mut impl FnMut(u64, &str, T)) {
        let mut buffer = Vec::with_capacity(1 << 20);
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            let mut bytes = group[0].payload.len();
            while bytes < GROUP_BYTES {
                match rx.try_recv() {
                    Ok(append) => {
                        bytes += append.payload.len();
                        group.push(append);
                    }
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            if let Some(broken) = &self.broken {
                for append in group {
                    let _ = append.done.send(Err(broken.clone()));
                }
                continue;
            }
            buffer.clear();
            let first_number = self.next;
            for (i, append) in group.iter().enumerate() {
                encode_record(
                    &mut buffer,
                    first_number + i as u64,
                    &append.tenant,
                    &append.payload,
                );
            }
            let written = self
                .file
                .write_all(&buffer)
                .and_then(|()| self.file.flush())
                .and_then(|()| self.file.get_ref().sync_data());
            if let Err(e) = written {
                let broken = io_error("cannot write the write-ahead log", &e);
                self.broken = Some(broken.clone());
                for append in group {
                    let _ = append.done.send(Err(broken.clone()));
                }
                continue;
            }
            self.size += buffer.len() as u64;
            self.next += group.len() as u64;
            for (i, append) in group.into_iter().enumerate() {
                let number = first_number + i as u64;
                apply(number, &append.tenant, append.data);
                let _ = append.done.send(Ok(number));
            }
            if self.size >= SEGMENT_BYTES
                && let Err(e) = self.rotate()
            {
                self.broken = Some(e);
            }
        }
    }

    /// Begins a new segment.
    fn rotate(&mut self) -> Result<(), WalError> {
        let path = segment_path(&self.dir, self.next);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error(format_args!("cannot begin {}", path.display()), &e))?;
        sync_dir(&self.dir)
            .map_err(|e| io_error(format_args!("cannot sync {}", self.dir.display()), &e))?;
        self.file = BufWriter::with_capacity(1 << 20, file);
        self.size = 0;
        self.segments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .firsts
            .push(self.next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "traceql-wal-{name}-{}-{}",
            std::process::id(),
            traceql_exec::store::new_block_id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn records_come_back_in_order_after_a_restart() {
        let dir = temp_dir("order");
        let applied = Arc::new(Mutex::new(Vec::new()));
        {
            let opened = Wal::open(&dir).unwrap();
            assert!(opened.records.is_empty());
            let seen = Arc::clone(&applied);
            let wal = Wal::start(opened, move |n, tenant: &str, data: u32| {
                seen.lock().unwrap().push((n, tenant.to_string(), data));
            })
            .unwrap();
            for i in 0..10u32 {
                let tenant = if i % 2 == 0 { "a" } else { "b" };
                let n = wal
                    .append(tenant, vec![i as u8; i as usize], i)
                    .await
                    .unwrap();
                assert_eq!(n, u64::from(i));
            }
        }
        let applied = applied.lock().unwrap().clone();
        assert_eq!(applied.len(), 10);
        assert!(
            applied
                .iter()
                .enumerate()
                .all(|(i, (n, _, d))| *n == i as u64 && *d == i as u32)
        );
        let opened = Wal::open(&dir).unwrap();
        assert_eq!(opened.records.len(), 10);
        for (i, r) in opened.records.iter().enumerate() {
            assert_eq!(r.number, i as u64);
            assert_eq!(r.payload, vec![i as u8; i]);
            assert_eq!(r.tenant, if i % 2 == 0 { "a" } else { "b" });
        }
        // Numbering goes on after a restart.
        let wal = Wal::start(opened, |_, _: &str, ()| {}).unwrap();
        assert_eq!(wal.append("a", vec![1], ()).await.unwrap(), 10);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_and_damage_elsewhere_is_an_error() {
        let dir = temp_dir("torn");
        {
            let wal = Wal::start(Wal::open(&dir).unwrap(), |_, _: &str, ()| {}).unwrap();
            for i in 0..3u8 {
                wal.append("t", vec![i; 100], ()).await.unwrap();
            }
        }
        let path = segment_path(&dir, 0);
        let full = fs::read(&path).unwrap();
        // A crash in the middle of the last record's write.
        fs::write(&path, &full[..full.len() - 30]).unwrap();
        let opened = Wal::open(&dir).unwrap();
        assert_eq!(opened.records.len(), 2);
        assert!(
            opened.cut.as_deref().unwrap().contains("torn"),
            "{:?}",
            opened.cut
        );
        assert_eq!(fs::read(&path).unwrap().len(), (full.len() / 3) * 2);
        // Damage in an older segment than the newest is not cut silently.
        let mut damaged = fs::read(&path).unwrap();
        damaged[20] ^= 0xff;
        fs::write(&path, &damaged).unwrap();
        fs::write(segment_path(&dir, 2), b"").unwrap();
        let Err(e) = Wal::open(&dir) else {
            panic!("a damaged segment was read")
        };
        assert!(
            e.0.contains("damaged") && e.0.contains("00000000000000000000.wal"),
            "{e}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn released_segments_are_deleted_but_never_the_newest() {
        let dir = temp_dir("release");
        let wal = Wal::start(Wal::open(&dir).unwrap(), |_, _: &str, ()| {}).unwrap();
        wal.append("t", vec![0; 10], ()).await.unwrap();
        assert_eq!(wal.release(100).unwrap(), 0);
        assert_eq!(wal.segments(), 1);
        // Three segments: [0, 1], [2, 3], [4 …].
        fs::write(segment_path(&dir, 2), b"").unwrap();
        wal.segments.lock().unwrap().firsts.push(2);
        fs::write(segment_path(&dir, 4), b"").unwrap();
        wal.segments.lock().unwrap().firsts.push(4);
        assert_eq!(wal.release(0).unwrap(), 0);
        assert_eq!(wal.release(2).unwrap(), 1);
        assert_eq!(wal.release(3).unwrap(), 1);
        assert_eq!(wal.release(1000).unwrap(), 0);
        assert_eq!(wal.segments(), 1);
        assert!(segment_path(&dir, 4).exists() && !segment_path(&dir, 0).exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
