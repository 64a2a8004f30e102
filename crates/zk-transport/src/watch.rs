//! Reloading a TLS configuration from files when they change (feature `tls-watch`).
//!
//! Certificate managers (cert-manager, Vault agent, a cron job) rewrite the PEM files in place
//! or swap a directory behind a symlink (Kubernetes secret volumes). [`TlsReloadHandle::watch_files`]
//! watches the directories holding the files, waits for writes to settle, rebuilds the
//! configuration from all the files and installs it; a set of files that does not build (a
//! key written before its certificate, a truncated file) is refused like any rotation and
//! retried on the next change.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use crate::{TlsConfigError, TlsFiles, TlsReloadHandle};

/// Watches the files of a [`TlsFiles`] set and rotates a connector's configuration when they
/// change. Dropping it stops watching.
pub struct TlsFileWatcher {
    _watcher: RecommendedWatcher,
    state: Arc<Mutex<WatchState>>,
}

#[derive(Default)]
struct WatchState {
    last_error: Option<TlsConfigError>,
    reloads: u64,
}

impl std::fmt::Debug for TlsFileWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("TlsFileWatcher")
            .field("reloads", &state.reloads)
            .field("last_error", &state.last_error)
            .finish_non_exhaustive()
    }
}

impl TlsFileWatcher {
    /// Why the last reload was refused (`None` once a later one succeeded).
    #[must_use]
    pub fn last_error(&self) -> Option<TlsConfigError> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.last_error.clone()
    }

    /// Configurations installed by this watcher.
    #[must_use]
    pub fn reloads(&self) -> u64 {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.reloads
    }
}

impl TlsReloadHandle {
    /// Watches `files` and rotates this connector's configuration whenever their contents
    /// change: after a change, once no write happened for `settle` (a writer replacing the
    /// certificate and the key one after the other is seen as one change). Runs on a thread
    /// of its own until the returned watcher is dropped.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::Watch`] if a directory cannot be watched.
    pub fn watch_files(
        &self,
        files: TlsFiles,
        settle: Duration,
    ) -> Result<TlsFileWatcher, TlsConfigError> {
        let (tx, rx) = mpsc::channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok() {
                    let _ = tx.send(());
                }
            })
            .map_err(|err| watch_error(Path::new("."), &err))?;
        let mut dirs: Vec<PathBuf> = files
            .paths()
            .map(|p| match p.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                _ => PathBuf::from("."),
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        for dir in &dirs {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|err| watch_error(dir, &err))?;
        }
        let state = Arc::new(Mutex::new(WatchState::default()));
        let handle = self.clone();
        let shared = Arc::clone(&state);
        let mut applied = files.fingerprint();
        std::thread::Builder::new()
            .name("zk-tls-watch".into())
            .spawn(move || {
                // Ends when the watcher (and with it the sender) is dropped.
                while rx.recv().is_ok() {
                    loop {
                        match rx.recv_timeout(settle) {
                            Ok(()) => {}
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    let now = files.fingerprint();
                    if now == applied {
                        continue;
                    }
                    let result = handle.reload_files(&files);
                    let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    match result {
                        Ok(_) => {
                            applied = now;
                            state.reloads += 1;
                            state.last_error = None;
                        }
                        Err(err) => state.last_error = Some(err),
                    }
                }
            })
            .map_err(|err| TlsConfigError::Watch {
                path: String::new(),
                message: err.to_string(),
            })?;
        Ok(TlsFileWatcher {
            _watcher: watcher,
            state,
        })
    }
}

impl TlsFiles {
    /// A hash of the files' contents (unreadable files count as empty).
    fn fingerprint(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        for path in self.paths() {
            std::fs::read(path).unwrap_or_default().hash(&mut hasher);
        }
        hasher.finish()
    }
}

fn watch_error(path: &Path, err: &notify::Error) -> TlsConfigError {
    TlsConfigError::Watch {
        path: path.display().to_string(),
        message: err.to_string(),
    }
}
