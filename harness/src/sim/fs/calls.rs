//! The calls: `SimFs`'s `Fs` implementation and its open files and locks, each call numbered,
//! exposed to the fault stream and applied to the state as the fault model (in `fs.rs`) says.

use super::*;

/// An open file of a `SimFs`: refers to its inode, so it outlives renames and removes.
pub(super) struct SimFile {
    pub(super) shared: Arc<Shared>,
    pub(super) ino: u64,
    pub(super) name: String,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile").field("name", &self.name).field("ino", &self.ino).finish()
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut state = lock(&self.shared);
        state.inode_mut(self.ino).handles -= 1;
        state.refresh(self.ino);
    }
}

impl File for SimFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut state = lock(&self.shared);
        let roll = state.begin_call("read", &self.name, Exposure::Read)?;
        let Node::File(f) = &state.inode(self.ino).node else { unreachable!("handles are files") };
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = match start.checked_add(buf.len()) {
            Some(end) if end <= f.data.len() => end,
            _ => {
                return Err(Error::io(
                    format!("read {} at {offset}", self.name),
                    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past end of file"),
                ))
            }
        };
        buf.copy_from_slice(&f.data[start..end]);
        state.stats.bytes_read += buf.len() as u64;
        // Persistent rot: the bad bytes come back on every read of the sector.
        let mut rotted = false;
        if let Some(sectors) = state.rot.get(&self.ino) {
            for &(lo, hi) in sectors {
                let (a, b) = (lo.max(start), hi.min(end));
                for i in a..b {
                    buf[i - start] ^= rot_pattern(i);
                    rotted = true;
                }
            }
        }
        if rotted {
            state.stats.rot_reads += 1;
            state.record(FaultKind::RotRead, "read", &self.name);
        }
        // Transient corruption: one flipped bit, this read only. Its own draw from the roll,
        // independent of the error decision.
        let p = state.faults.corrupt_read_prob;
        let second = remix(roll ^ 0x0063_6f72_7275_7074);
        if !buf.is_empty() && p > 0.0 && unit(second) < p {
            let bit = remix(second) % (buf.len() as u64 * 8);
            buf[(bit / 8) as usize] ^= 1 << (bit % 8);
            state.stats.corrupt_reads += 1;
            state.record(FaultKind::CorruptRead, "read", &self.name);
        }
        Ok(())
    }

    fn append(&self, data: &[u8]) -> Result<()> {
        let mut state = lock(&self.shared);
        let roll = state.begin("append", &self.name)?;
        let fail = state.injects(roll, Exposure::Write);
        let len = if fail && state.faults.short_writes {
            (remix(roll) % data.len().max(1) as u64) as usize
        } else if fail {
            0
        } else {
            data.len()
        };
        state.check_capacity("append", &self.name, len)?;
        let file = state.file_mut(self.ino);
        let old_len = file.data.len();
        file.data.extend_from_slice(&data[..len]);
        state.resize_accounting(self.ino, old_len, old_len + len);
        state.stats.bytes_written += len as u64;
        if fail && len > 0 {
            state.stats.short_writes += 1;
            return Err(state.injected_kind("append", &self.name, FaultKind::ShortWrite));
        }
        if fail {
            return Err(state.injected("append", &self.name, Exposure::Write));
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        let mut state = lock(&self.shared);
        let roll = state.begin("sync", &self.name)?;
        if state.injects(roll, Exposure::Sync) {
            let torn = state.faults.torn_failed_syncs;
            let file = state.file_mut(self.ino);
            let persisted = match FailedSync::from_roll(roll) {
                FailedSync::Nothing => "nothing",
                FailedSync::Whole => {
                    file.sync();
                    state.stats.failed_syncs_whole += 1;
                    "all"
                }
                FailedSync::Part(r) if torn && file.sync_part(r) => {
                    state.stats.failed_syncs_partial += 1;
                    "part"
                }
                FailedSync::Part(_) => "nothing",
            };
            let e = state.injected("sync", &self.name, Exposure::Sync);
            state.note_persisted(persisted);
            return Err(e);
        }
        state.file_mut(self.ino).sync();
        state.stats.syncs += 1;
        Ok(())
    }

    fn len(&self) -> Result<u64> {
        let mut state = lock(&self.shared);
        state.begin_call("len", &self.name, Exposure::Never)?;
        Ok(state.inode(self.ino).len() as u64)
    }

    fn truncate(&self, len: u64) -> Result<()> {
        let mut state = lock(&self.shared);
        state.begin_call("truncate", &self.name, Exposure::Write)?;
        let len = usize::try_from(len).map_err(|_| Error::InvalidArgument("length".into()))?;
        let old_len = state.inode(self.ino).len();
        state.check_capacity("truncate", &self.name, len.saturating_sub(old_len))?;
        state.file_mut(self.ino).truncate(len);
        state.resize_accounting(self.ino, old_len, len);
        Ok(())
    }
}

/// A held lock on a path of a `SimFs`; dropping it releases the lock.
struct SimLock {
    shared: Arc<Shared>,
    path: PathBuf,
}

impl fmt::Debug for SimLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimLock").field("path", &self.path).finish()
    }
}

impl FileLock for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        lock(&self.shared).locks.remove(&self.path);
    }
}

impl Fs for SimFs {
    fn create(&self, path: &Path) -> Result<Arc<dyn File>> {
        let mut state = self.lock_state();
        state.begin_call("create", &path.display(), Exposure::Metadata)?;
        let (dir, name) = state.parent_of("create", path)?;
        let ino = match state.lookup(dir, name) {
            Some(ino) if state.is_dir(ino) => {
                return Err(io_err("create", path, std::io::ErrorKind::IsADirectory, "a directory"))
            }
            Some(ino) => {
                let old_len = state.inode(ino).len();
                state.file_mut(ino).truncate(0);
                state.resize_accounting(ino, old_len, 0);
                ino
            }
            None => {
                let ino = state.new_inode(Node::File(FileData::default()));
                state.insert_entry(dir, name, ino);
                ino
            }
        };
        Ok(self.open_handle(&mut state, ino, path))
    }

    fn open(&self, path: &Path) -> Result<Arc<dyn File>> {
        let mut state = self.lock_state();
        state.begin_call("open", &path.display(), Exposure::Metadata)?;
        let ino = state.resolve(&names(path)?).ok_or_else(|| not_found(path))?;
        if state.is_dir(ino) {
            return Err(io_err("open", path, std::io::ErrorKind::IsADirectory, "a directory"));
        }
        Ok(self.open_handle(&mut state, ino, path))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let mut state = self.lock_state();
        state.begin_call("rename", &from.display(), Exposure::Metadata)?;
        let (from_dir, from_name) = state.parent_of("rename", from)?;
        let ino = state.lookup(from_dir, from_name).ok_or_else(|| not_found(from))?;
        let (to_dir, to_name) = state.parent_of("rename", to)?;
        match state.lookup(to_dir, to_name) {
            // Two names of one inode (or one name twice): POSIX rename does nothing.
            Some(target) if target == ino => return Ok(()),
            Some(target) if state.is_dir(target) => {
                return Err(io_err("rename", to, std::io::ErrorKind::IsADirectory, "a directory"))
            }
            _ => {}
        }
        if state.is_dir(ino) && names(to)?.starts_with(&names(from)?) {
            return Err(io_err("rename", to, std::io::ErrorKind::InvalidInput, "into itself"));
        }
        // The moved inode keeps a reference throughout, so it is never freed in between.
        state.inode_mut(ino).vlinks += 1;
        let old = state.dir_mut(to_dir).entries.insert(to_name.to_string(), ino);
        if let Some(old) = old {
            state.inode_mut(old).vlinks -= 1;
            state.refresh(old);
        }
        state.dir_mut(from_dir).entries.remove(from_name);
        state.inode_mut(ino).vlinks -= 1;
        state.push_op(DirOp::Rename {
            from_dir,
            from_name: from_name.to_string(),
            to_dir,
            to_name: to_name.to_string(),
            ino,
        });
        Ok(())
    }

    fn remove(&self, path: &Path) -> Result<()> {
        let mut state = self.lock_state();
        state.begin_call("remove", &path.display(), Exposure::Metadata)?;
        let (dir, name) = state.parent_of("remove", path)?;
        let ino = state.lookup(dir, name).ok_or_else(|| not_found(path))?;
        if state.is_dir(ino) {
            return Err(io_err("remove", path, std::io::ErrorKind::IsADirectory, "a directory"));
        }
        state.dir_mut(dir).entries.remove(name);
        state.inode_mut(ino).vlinks -= 1;
        state.refresh(ino);
        state.push_op(DirOp::Remove { dir, name: name.to_string() });
        Ok(())
    }

    fn link(&self, from: &Path, to: &Path) -> Result<()> {
        let mut state = self.lock_state();
        state.begin_call("link", &from.display(), Exposure::Metadata)?;
        let ino = state.resolve(&names(from)?).ok_or_else(|| not_found(from))?;
        if state.is_dir(ino) {
            return Err(io_err("link", from, std::io::ErrorKind::IsADirectory, "a directory"));
        }
        let (dir, name) = state.parent_of("link", to)?;
        if state.lookup(dir, name).is_some() {
            return Err(io_err("link", to, std::io::ErrorKind::AlreadyExists, "target exists"));
        }
        state.insert_entry(dir, name, ino);
        Ok(())
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        let mut state = self.lock_state();
        state.begin_call("list", &dir.display(), Exposure::Metadata)?;
        let ino = state.resolve(&names(dir)?).ok_or_else(|| not_found(dir))?;
        match &state.inode(ino).node {
            Node::Dir(d) => Ok(d.entries.keys().cloned().collect()),
            Node::File(_) => Err(io_err("list", dir, std::io::ErrorKind::NotADirectory, "a file")),
        }
    }

    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        let mut state = self.lock_state();
        state.begin_call("mkdir", &dir.display(), Exposure::Metadata)?;
        let mut cur = ROOT;
        for name in names(dir)? {
            cur = match state.lookup(cur, name) {
                Some(ino) if state.is_dir(ino) => ino,
                Some(_) => {
                    return Err(io_err("mkdir", dir, std::io::ErrorKind::NotADirectory, "a file"))
                }
                None => {
                    let ino = state.new_inode(Node::Dir(DirData::default()));
                    state.insert_entry(cur, name, ino);
                    ino
                }
            };
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        let mut state = self.lock_state();
        let roll = state.begin("sync dir", &dir.display())?;
        if state.injects(roll, Exposure::Sync) {
            // Rule 12: a failed directory sync may have made some or all of its work durable.
            let mut persisted = "nothing";
            if let Some(ino) = names(dir).ok().and_then(|n| state.resolve(&n)) {
                if state.is_dir(ino) {
                    match FailedSync::from_roll(roll) {
                        FailedSync::Nothing => {}
                        FailedSync::Whole => {
                            if state.commit_dir_part(ino, None).0 > 0 {
                                state.stats.failed_syncs_whole += 1;
                                persisted = "all";
                            }
                        }
                        FailedSync::Part(r) => {
                            let total = state.pending.iter().filter(|op| op.touches(ino)).count();
                            // A strict prefix of at least one operation, when there are two.
                            if total >= 2 {
                                let limit = 1 + (r % (total as u64 - 1)) as usize;
                                if state.commit_dir_part(ino, Some(limit)).0 > 0 {
                                    state.stats.failed_syncs_partial += 1;
                                    persisted = "part";
                                }
                            }
                        }
                    }
                }
            }
            let e = state.injected("sync dir", &dir.display(), Exposure::Sync);
            state.note_persisted(persisted);
            return Err(e);
        }
        let ino = state.resolve(&names(dir)?).ok_or_else(|| not_found(dir))?;
        if !state.is_dir(ino) {
            return Err(io_err("sync dir", dir, std::io::ErrorKind::NotADirectory, "a file"));
        }
        state.commit_dir(ino);
        state.stats.dir_syncs += 1;
        Ok(())
    }

    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        let mut state = self.lock_state();
        state.begin_call("lock", &path.display(), Exposure::Metadata)?;
        let (dir, name) = state.parent_of("lock", path)?;
        // Locks are keyed by the normalised path, so "db/LOCK" and "/db/LOCK" are one lock.
        let key: PathBuf = std::iter::once("/").chain(names(path)?).collect();
        if state.locks.contains(&key) {
            return Err(io_err("lock", path, std::io::ErrorKind::WouldBlock, "lock held"));
        }
        match state.lookup(dir, name) {
            Some(ino) if state.is_dir(ino) => {
                return Err(io_err("lock", path, std::io::ErrorKind::IsADirectory, "a directory"))
            }
            Some(_) => {}
            None => {
                let ino = state.new_inode(Node::File(FileData::default()));
                state.insert_entry(dir, name, ino);
            }
        }
        state.locks.insert(key.clone());
        Ok(Box::new(SimLock { shared: self.shared.clone(), path: key }))
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        let mut state = self.lock_state();
        state.begin_call("stat", &path.display(), Exposure::Never)?;
        Ok(state.resolve(&names(path)?).is_some())
    }
}
