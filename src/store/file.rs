//! `FileStore`: persistent, crash-safe sessions in a directory (SPEC ST3, ST5, X2).
//!
//! # Layout
//!
//! One file per session, holding exactly [`Record::encode`]'s text (the stable, versioned
//! format of ST2), plus a `.lock` file:
//!
//! ```text
//! sessions/            mode 0700 when created by the store (unix)
//!   .lock              advisory lock: one FileStore per directory
//!   6162633132.rec     the record of session id "abc12", mode 0600 (unix)
//!   6162633132.7.tmp   a write in progress (removed on open if a crash left it)
//! ```
//!
//! # Design choices
//!
//! - **File names are the lowercase hex of the session id.** Hex is reversible, so
//!   [`list`](Store::list) reads the ids back from the directory without an index and without
//!   opening a file; it is injective, so two ids never share a file; its alphabet is `0-9a-f`,
//!   so no name can hold a separator, `.` or `..` and escape the directory, whatever the id
//!   holds (ids are validated upstream, but the store never trusts them); and it is safe on
//!   case-insensitive file systems, where base64url would let `aB` and `Ab` collide. A hash
//!   would hide the ids from a directory listing, but the directory is private (0700) and a
//!   hash would need the id inside each file for `list`. Ids over 100 bytes do not fit a file
//!   name: writes refuse them with a store error, reads find nothing under them.
//! - **Every write is atomic and durable:** the record goes to a temp file in the same
//!   directory (so the rename never crosses a file system), which is fsynced, renamed over
//!   the session's file, and the directory is fsynced (unix) so the rename itself survives a
//!   power loss. A crash at any instant leaves the old file or the new one, never a mix: a
//!   reader sees whole records only. A crash can leave a temp file behind; opening the store
//!   removes them.
//! - **One process per directory.** [`FileStore::open`] takes an OS advisory lock
//!   ([`File::try_lock`]) on `.lock` and keeps it for the store's life; a second opener, in this
//!   process or another, is refused with a clear [`Error::Store`]. The lock goes with the
//!   process, so a crash never leaves a stale lock. One caveat of OS locks: a child process
//!   forked while the store is open holds a copy of the lock file's handle until it execs (or
//!   for its life if it never does), so a store dropped and reopened at that instant is
//!   refused. With one process guaranteed, the atomic
//!   create and compare-and-set of ST5 are done under in-process locks: 64 striped mutexes
//!   keyed by a hash of the id. `create` checks under the id's lock that no record is there,
//!   then writes as above; `update` reads, compares the version and writes under the same lock,
//!   and refuses when the file is missing (never resurrects). The alternative (`hard_link`
//!   of the temp file, which fails when the target exists) needs hard links, which some file
//!   systems lack, and would still need the lock for `update`.
//! - **A file that does not decode is dropped** (X2): its bytes are not a record of a known
//!   format (truncated or edited by hand; the write protocol never leaves one), so no record
//!   can be given to the gateway honestly. Under the id's lock the store re-reads it, removes
//!   it, logs a `tracing` warning that names neither the id nor the bytes, and answers "no
//!   record" (`Ok(None)`): the browser starts a fresh session and the rest of the store keeps
//!   working. A file that decodes but whose session text is not a JSON object is returned, and
//!   the gateway drops and reports it (GW1). I/O failures are [`Error::Store`] errors, never a
//!   "missing".
//! - **Blocking I/O never runs on the caller's executor:** every operation runs on the
//!   [`blocking`] crate's thread pool (runtime-independent). Dropping a future does not stop a
//!   write already under way; it still completes or fails atomically.
//! - **Size limit:** a record whose encoded form is over
//!   [`max_file_bytes`](FileStoreBuilder::max_file_bytes) is refused with a store error before
//!   anything is written.
//!
//! Errors carry the operation and the OS error (never a path, an id or session data, L1).

use std::collections::hash_map::DefaultHasher;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::{Error, Result};
use crate::record::Record;
use crate::store::Store;

/// Default [`FileStoreBuilder::max_file_bytes`]: 4 MiB.
pub const DEFAULT_MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Longest session id (in bytes) that maps to a file name: its hex plus suffixes stays well
/// under the usual 255-byte limit.
const MAX_ID_BYTES: usize = 100;
const RECORD_SUFFIX: &str = ".rec";
const TEMP_SUFFIX: &str = ".tmp";
const LOCK_FILE: &str = ".lock";
const STRIPES: usize = 64;

/// Persistent store: one crash-safe file per session in a directory (SPEC ST3). See the
/// [module docs](self) for the layout and the guarantees.
///
/// ```
/// use session_bridge::{Record, Store, store::FileStore};
/// # let dir = std::env::temp_dir().join(format!("sb-doc-{}", std::process::id()));
/// # futures::executor::block_on(async {
/// let store = FileStore::open(&dir)?;
/// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
/// store.create("sid", record.clone()).await?;
/// drop(store); // a restart
/// let store = FileStore::open(&dir)?;
/// assert_eq!(store.get("sid").await?, Some(record));
/// # Ok::<_, session_bridge::Error>(())
/// # }).unwrap();
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

/// Options of a [`FileStore`], from [`FileStore::builder`].
///
/// ```
/// use session_bridge::store::FileStore;
/// # let dir = std::env::temp_dir().join(format!("sb-doc-b-{}", std::process::id()));
/// let store = FileStore::builder(&dir).max_file_bytes(64 * 1024).open()?;
/// # drop(store); std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<_, session_bridge::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct FileStoreBuilder {
    dir: PathBuf,
    max_file_bytes: usize,
}

impl FileStoreBuilder {
    /// Largest encoded record written (default [`DEFAULT_MAX_FILE_BYTES`]); a bigger one is
    /// refused with a store error and nothing is written.
    pub fn max_file_bytes(mut self, bytes: usize) -> Self {
        self.max_file_bytes = bytes;
        self
    }

    /// Opens the store: creates the directory (mode 0700 on unix) if needed, takes its lock,
    /// removes temp files a crash left behind.
    ///
    /// # Errors
    /// [`Error::Store`] (op `open`) when the directory cannot be created or read, or when
    /// another `FileStore` holds it.
    pub fn open(self) -> Result<FileStore> {
        let op = "open";
        let dir = self.dir;
        create_dir(&dir).map_err(|e| Error::store(op, e))?;
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(|e| Error::store(op, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::store(
                    op,
                    "the directory is already in use by another FileStore (its lock file is \
                     held, by this process or another)",
                ));
            }
            Err(TryLockError::Error(e)) => return Err(Error::store(op, e)),
        }
        remove_orphans(&dir).map_err(|e| Error::store(op, e))?;
        Ok(FileStore {
            inner: Arc::new(Inner {
                dir,
                max_file_bytes: self.max_file_bytes,
                stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
                temp_counter: AtomicU64::new(0),
                _lock: lock,
            }),
        })
    }
}

impl FileStore {
    /// Opens (or creates) a store in `dir` with default options; see
    /// [`FileStoreBuilder::open`].
    ///
    /// # Errors
    /// As [`FileStoreBuilder::open`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::builder(dir).open()
    }

    /// Options for a store in `dir`.
    pub fn builder(dir: impl AsRef<Path>) -> FileStoreBuilder {
        FileStoreBuilder {
            dir: dir.as_ref().to_path_buf(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> impl Future<Output = Result<T>> + Send + 'static {
        let inner = Arc::clone(&self.inner);
        blocking::unblock(move || f(&inner))
    }
}

/// The directory only: never an id or data.
impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.inner.dir)
            .field("max_file_bytes", &self.inner.max_file_bytes)
            .finish()
    }
}

impl Store for FileStore {
    fn get(&self, sid: &str) -> impl Future<Output = Result<Option<Record>>> + Send {
        let sid = sid.to_owned();
        self.run(move |inner| inner.get(&sid))
    }

    fn destroy(
        &self,
        sid: &str,
        expected_version: u64,
    ) -> impl Future<Output = Result<bool>> + Send {
        let sid = sid.to_owned();
        self.run(move |inner| inner.destroy(&sid, expected_version))
    }

    fn create(&self, sid: &str, record: Record) -> impl Future<Output = Result<bool>> + Send {
        let sid = sid.to_owned();
        self.run(move |inner| inner.create(&sid, &record))
    }

    fn update(
        &self,
        sid: &str,
        record: Record,
        expected_version: u64,
    ) -> impl Future<Output = Result<bool>> + Send {
        let sid = sid.to_owned();
        self.run(move |inner| inner.update(&sid, &record, expected_version))
    }

    fn list(&self) -> impl Future<Output = Result<Vec<String>>> + Send {
        self.run(Inner::list)
    }
}

struct Inner {
    dir: PathBuf,
    max_file_bytes: usize,
    stripes: Box<[Mutex<()>]>,
    temp_counter: AtomicU64,
    /// Holds the directory's advisory lock until the store is dropped.
    _lock: File,
}

/// What reading a session's file found.
enum Read {
    Missing,
    Record(Record),
    /// A record of a format newer than this version knows: missing to us, left in place
    /// (GW1: a newer node wrote it).
    Newer,
    Corrupt,
}

impl Inner {
    fn lock(&self, sid: &str) -> MutexGuard<'_, ()> {
        let mut h = DefaultHasher::new();
        sid.hash(&mut h);
        // Modulo first, so the cast cannot truncate.
        let i = (h.finish() % STRIPES as u64) as usize;
        // The guarded data is `()`: a panic elsewhere cannot have left it inconsistent.
        self.stripes[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn path(&self, hex: &str) -> PathBuf {
        self.dir.join(format!("{hex}{RECORD_SUFFIX}"))
    }

    fn read(&self, path: &Path) -> io::Result<Read> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Read::Missing),
            Err(e) => return Err(e),
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return Ok(Read::Corrupt);
        };
        Ok(match Record::decode(&text) {
            Ok(record) => Read::Record(record),
            Err(_) if Record::newer_format(&text).is_some() => Read::Newer,
            Err(_) => Read::Corrupt,
        })
    }

    /// Reads under the id's lock (held by the caller); a corrupt file is dropped (X2).
    fn load_locked(&self, op: &'static str, path: &Path) -> Result<Option<Record>> {
        match self.read(path).map_err(|e| Error::store(op, e))? {
            Read::Missing | Read::Newer => Ok(None),
            Read::Record(record) => Ok(Some(record)),
            Read::Corrupt => {
                self.remove(path).map_err(|e| Error::store(op, e))?;
                tracing::warn!(
                    "file store: dropped a session file that is not a record of a known format"
                );
                Ok(None)
            }
        }
    }

    fn get(&self, sid: &str) -> Result<Option<Record>> {
        let Some(hex) = file_stem(sid) else {
            return Ok(None);
        };
        let path = self.path(&hex);
        // Renames are atomic: a lock-free read sees a whole old or new file.
        match self.read(&path).map_err(|e| Error::store("get", e))? {
            Read::Missing | Read::Newer => Ok(None),
            Read::Record(record) => Ok(Some(record)),
            Read::Corrupt => {
                // Re-read under the lock: a writer may have replaced it meanwhile.
                let _guard = self.lock(sid);
                self.load_locked("get", &path)
            }
        }
    }

    fn create(&self, sid: &str, record: &Record) -> Result<bool> {
        let (hex, bytes) = self.prepare("create", sid, record)?;
        let _guard = self.lock(sid);
        if self.load_locked("create", &self.path(&hex))?.is_some() {
            return Ok(false);
        }
        self.write(&hex, &bytes)
            .map_err(|e| Error::store("create", e))?;
        Ok(true)
    }

    fn update(&self, sid: &str, record: &Record, expected_version: u64) -> Result<bool> {
        let Some(hex) = file_stem(sid) else {
            return Ok(false);
        };
        let (_, bytes) = self.prepare("update", sid, record)?;
        let _guard = self.lock(sid);
        match self.load_locked("update", &self.path(&hex))? {
            Some(current) if current.version == expected_version => {
                self.write(&hex, &bytes)
                    .map_err(|e| Error::store("update", e))?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Removes the record under the id's lock if its version is `expected_version` (ST5); a
    /// corrupt file goes whatever the version, a newer format's stays (GW1).
    fn destroy(&self, sid: &str, expected_version: u64) -> Result<bool> {
        let Some(hex) = file_stem(sid) else {
            return Ok(false);
        };
        let path = self.path(&hex);
        let _guard = self.lock(sid);
        let remove = match self.read(&path).map_err(|e| Error::store("destroy", e))? {
            Read::Missing | Read::Newer => false,
            Read::Corrupt => true,
            Read::Record(current) => current.version == expected_version,
        };
        if !remove {
            return Ok(false);
        }
        self.remove(&path).map_err(|e| Error::store("destroy", e))
    }

    fn list(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| Error::store("list", e))? {
            let entry = entry.map_err(|e| Error::store("list", e))?;
            let name = entry.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(RECORD_SUFFIX)) else {
                continue;
            };
            if let Some(id) = decode_hex(hex) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// The file stem and the bytes to write, or a store error (before anything is written).
    fn prepare(&self, op: &'static str, sid: &str, record: &Record) -> Result<(String, String)> {
        let Some(hex) = file_stem(sid) else {
            return Err(Error::store(
                op,
                format!(
                    "a session id must be 1 to {MAX_ID_BYTES} bytes to be stored in a file store"
                ),
            ));
        };
        let bytes = record.encode();
        if bytes.len() > self.max_file_bytes {
            return Err(Error::store(
                op,
                format!(
                    "the record is {} bytes, over the file store's limit of {} bytes",
                    bytes.len(),
                    self.max_file_bytes
                ),
            ));
        }
        Ok((hex, bytes))
    }

    /// Temp file in the directory, fsync, rename over the record, fsync the directory.
    fn write(&self, hex: &str, bytes: &str) -> io::Result<()> {
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        let temp = self.dir.join(format!("{hex}.{n}{TEMP_SUFFIX}"));
        let result = (|| {
            let mut file = new_file(&temp)?;
            file.write_all(bytes.as_bytes())?;
            file.sync_all()?;
            drop(file);
            fs::rename(&temp, self.path(hex))
        })();
        if let Err(e) = result {
            // Best effort: a leftover temp file is removed at the next open anyway.
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        sync_dir(&self.dir)
    }

    /// Removes a file and makes the removal durable; `false` when it was not there.
    fn remove(&self, path: &Path) -> io::Result<bool> {
        match fs::remove_file(path) {
            Ok(()) => {
                sync_dir(&self.dir)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Lowercase hex of the id, or `None` when it cannot name a file (empty or too long).
fn file_stem(sid: &str) -> Option<String> {
    if sid.is_empty() || sid.len() > MAX_ID_BYTES {
        return None;
    }
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(sid.len() * 2);
    for b in sid.bytes() {
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    Some(hex)
}

/// The id a file stem names, or `None` when it is not one of ours.
fn decode_hex(hex: &str) -> Option<String> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let raw = hex.as_bytes();
    if raw.is_empty() || !raw.len().is_multiple_of(2) || raw.len() > MAX_ID_BYTES * 2 {
        return None;
    }
    let bytes = raw
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn new_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Temp files left by a crash mid-write: never renamed, so never a committed record.
fn remove_orphans(dir: &Path) -> io::Result<()> {
    let mut removed = false;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| n.ends_with(TEMP_SUFFIX)) && entry.file_type()?.is_file() {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Makes renames and removals in `dir` durable (unix; elsewhere the OS offers no such call
/// on a directory handle).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn st3_file_names_are_hex_and_reversible() {
        for sid in ["a", "abc-_XYZ09", "../../etc/passwd", "a/b\\c\0d", "ünï"] {
            let hex = file_stem(sid).unwrap();
            assert!(
                hex.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert_eq!(decode_hex(&hex).as_deref(), Some(sid));
        }
        assert_eq!(file_stem(""), None);
        assert_eq!(file_stem(&"x".repeat(MAX_ID_BYTES + 1)), None);
        assert!(file_stem(&"x".repeat(MAX_ID_BYTES)).is_some());
        for bad in ["", "0", "zz", "6G", "ff", "4142A"] {
            assert_eq!(decode_hex(bad), None, "{bad}");
        }
    }
}
