//! `MemFs`: an in-memory, deterministic filesystem with no fault model (everything written
//! is durable at once). Tumbler's `SimFs` is the one that models crashes.

use crate::sync::{Arc, Mutex, RwLock};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{File, FileLock, Fs};
use crate::error::{Error, Result};

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<PathBuf, Arc<MemFile>>,
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
}

/// An in-memory filesystem. Cloning shares the same files.
#[derive(Debug, Default, Clone)]
pub struct MemFs {
    state: Arc<Mutex<State>>,
}

impl MemFs {
    /// An empty filesystem with only the root directory.
    pub fn new() -> MemFs {
        let fs = MemFs::default();
        fs.state.lock().expect("memfs poisoned").dirs.insert(PathBuf::from("/"));
        fs
    }

    fn lock_state(&self) -> crate::sync::MutexGuard<'_, State> {
        self.state.lock().expect("memfs mutex poisoned")
    }
}

#[derive(Debug, Default)]
struct MemFile {
    name: String,
    data: RwLock<Vec<u8>>,
}

impl File for MemFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let data = self.data.read().expect("memfile poisoned");
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(buf.len()) {
            Some(end) if end <= data.len() => {
                buf.copy_from_slice(&data[start..end]);
                Ok(())
            }
            _ => Err(Error::io(
                format!("read {} at {offset}", self.name),
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past end of file"),
            )),
        }
    }

    fn append(&self, bytes: &[u8]) -> Result<()> {
        self.data.write().expect("memfile poisoned").extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn len(&self) -> Result<u64> {
        Ok(self.data.read().expect("memfile poisoned").len() as u64)
    }

    fn truncate(&self, len: u64) -> Result<()> {
        let len = usize::try_from(len).map_err(|_| Error::InvalidArgument("length".into()))?;
        self.data.write().expect("memfile poisoned").resize(len, 0);
        Ok(())
    }
}

#[derive(Debug)]
struct MemLock {
    fs: MemFs,
    path: PathBuf,
}

impl FileLock for MemLock {}

impl Drop for MemLock {
    fn drop(&mut self) {
        self.fs.lock_state().locks.remove(&self.path);
    }
}

fn not_found(path: &Path) -> Error {
    Error::NotFound(path.display().to_string())
}

fn parent_exists(state: &State, path: &Path) -> Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() && !state.dirs.contains(p) => Err(Error::io(
            format!("create {}", path.display()),
            std::io::Error::new(std::io::ErrorKind::NotFound, "parent directory missing"),
        )),
        _ => Ok(()),
    }
}

impl Fs for MemFs {
    fn create(&self, path: &Path) -> Result<Arc<dyn File>> {
        let mut state = self.lock_state();
        parent_exists(&state, path)?;
        let file = Arc::new(MemFile { name: path.display().to_string(), data: RwLock::default() });
        state.files.insert(path.to_path_buf(), file.clone());
        Ok(file)
    }

    fn open(&self, path: &Path) -> Result<Arc<dyn File>> {
        let state = self.lock_state();
        let file = state.files.get(path).ok_or_else(|| not_found(path))?;
        Ok(file.clone())
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let mut state = self.lock_state();
        parent_exists(&state, to)?;
        if state.dirs.contains(from) {
            // A directory moves with everything under it; the target must not exist.
            if state.dirs.contains(to) || state.files.contains_key(to) {
                return Err(Error::io(
                    format!("rename {}", to.display()),
                    std::io::Error::new(std::io::ErrorKind::AlreadyExists, "target exists"),
                ));
            }
            let moved = |p: &Path| p.strip_prefix(from).ok().map(|rest| to.join(rest));
            let dirs: Vec<PathBuf> = state.dirs.iter().filter_map(|d| moved(d)).collect();
            state.dirs.retain(|d| !d.starts_with(from));
            state.dirs.extend(dirs);
            let files: Vec<PathBuf> =
                state.files.keys().filter(|p| p.starts_with(from)).cloned().collect();
            for f in files {
                let file = state.files.remove(&f).expect("listed above");
                state.files.insert(moved(&f).expect("under `from`"), file);
            }
            return Ok(());
        }
        let file = state.files.remove(from).ok_or_else(|| not_found(from))?;
        state.files.insert(to.to_path_buf(), file);
        Ok(())
    }

    fn remove(&self, path: &Path) -> Result<()> {
        let mut state = self.lock_state();
        state.files.remove(path).map(|_| ()).ok_or_else(|| not_found(path))
    }

    fn link(&self, from: &Path, to: &Path) -> Result<()> {
        let mut state = self.lock_state();
        parent_exists(&state, to)?;
        let file = state.files.get(from).ok_or_else(|| not_found(from))?.clone();
        if state.files.contains_key(to) {
            return Err(Error::io(
                format!("link {}", to.display()),
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "target exists"),
            ));
        }
        state.files.insert(to.to_path_buf(), file);
        Ok(())
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        let state = self.lock_state();
        if !state.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let mut names: Vec<String> = state
            .files
            .keys()
            .chain(state.dirs.iter())
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        let mut state = self.lock_state();
        for ancestor in dir.ancestors() {
            if !ancestor.as_os_str().is_empty() {
                state.dirs.insert(ancestor.to_path_buf());
            }
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        let state = self.lock_state();
        if state.dirs.contains(dir) {
            Ok(())
        } else {
            Err(not_found(dir))
        }
    }

    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        let mut state = self.lock_state();
        if !state.locks.insert(path.to_path_buf()) {
            return Err(Error::io(
                format!("lock {}", path.display()),
                std::io::Error::new(std::io::ErrorKind::WouldBlock, "lock held"),
            ));
        }
        if !state.files.contains_key(path) {
            let file =
                Arc::new(MemFile { name: path.display().to_string(), data: RwLock::default() });
            state.files.insert(path.to_path_buf(), file);
        }
        drop(state);
        Ok(Box::new(MemLock { fs: self.clone(), path: path.to_path_buf() }))
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        let state = self.lock_state();
        Ok(state.files.contains_key(path) || state.dirs.contains(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_rename_link_list_and_locks() {
        let fs = MemFs::new();
        let dir = Path::new("/db");
        fs.create_dir_all(dir).unwrap();
        let f = fs.create(&dir.join("a")).unwrap();
        f.append(b"hello").unwrap();
        let mut buf = [0u8; 3];
        f.read_at(1, &mut buf).unwrap();
        assert_eq!(&buf, b"ell");
        assert!(f.read_at(3, &mut buf).is_err());
        fs.rename(&dir.join("a"), &dir.join("b")).unwrap();
        fs.link(&dir.join("b"), &dir.join("c")).unwrap();
        assert_eq!(fs.list(dir).unwrap(), vec!["b", "c"]);
        assert!(matches!(fs.open(&dir.join("a")), Err(Error::NotFound(_))));
        let l = fs.lock(&dir.join("LOCK")).unwrap();
        assert!(fs.lock(&dir.join("LOCK")).is_err());
        drop(l);
        assert!(fs.lock(&dir.join("LOCK")).is_ok());
        assert!(fs.create(Path::new("/nope/x")).is_err());
    }
}
