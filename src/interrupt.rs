//! Ctrl-C for the commands that write files. Temporary files being written are removed either
//! way, so nothing half-written is left. Then, where a loop is checking the flag (it holds a
//! [`Cooperate`] guard: a video's frames, a photo's tiles), the first press asks it to stop at
//! the next step and a second quits at once; otherwise the process ends at once.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Temporary files being written ([`crate::image_io::write_temp`] adds them).
static TRACKED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// How many [`Cooperate`] guards are alive.
static COOPERATING: AtomicUsize = AtomicUsize::new(0);

/// Exit status after Ctrl-C: 128 + SIGINT, as a shell reports it.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Held by a loop that reads the [`on_ctrl_c`] flag between steps: while one is alive, the
/// first Ctrl-C only sets the flag.
pub struct Cooperate(());

impl Cooperate {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        COOPERATING.fetch_add(1, Ordering::AcqRel);
        Self(())
    }
}

impl Drop for Cooperate {
    fn drop(&mut self) {
        COOPERATING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Notes a temporary file for removal on Ctrl-C. Files already moved into place or removed are
/// forgotten here, so the list stays as short as the writes in flight.
pub fn track(path: &Path) {
    let mut tracked = TRACKED.lock().unwrap_or_else(|e| e.into_inner());
    tracked.retain(|p| p.exists());
    tracked.push(path.to_path_buf());
}

/// Removes the tracked temporary files that still exist; returns how many it removed.
pub fn remove_tracked() -> usize {
    remove_tracked_where(|_| true)
}

/// Removes (and forgets) the tracked files for which `pick` is true.
fn remove_tracked_where(pick: impl Fn(&Path) -> bool) -> usize {
    let mut tracked = TRACKED.lock().unwrap_or_else(|e| e.into_inner());
    let mut removed = 0;
    tracked.retain(|p| {
        if !pick(p) {
            return true;
        }
        removed += usize::from(std::fs::remove_file(p).is_ok());
        false
    });
    removed
}

/// Installs the Ctrl-C handler (once per process; SIGTERM and SIGHUP too) and returns the flag it
/// sets. Where it cannot be installed, Ctrl-C ends the process as usual and stale temporary
/// files are removed by the next run ([`crate::image_io::clean_stale`]).
pub fn on_ctrl_c() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let set = flag.clone();
        let installed = ctrlc::set_handler(move || {
            remove_tracked();
            let again = set.swap(true, Ordering::AcqRel);
            if again || COOPERATING.load(Ordering::Acquire) == 0 {
                eprintln!("interrupted (Ctrl-C or a stop signal): nothing half-written is left");
                std::process::exit(EXIT_INTERRUPTED);
            }
            eprintln!("stopping after this step (Ctrl-C or a stop signal): press Ctrl-C again to quit at once");
        });
        if let Err(e) = installed {
            tracing::warn!("Ctrl-C will end stylecam at once, without tidying up: {e}");
        }
        flag
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_files_are_removed_and_moved_ones_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            dir.path().join(".stylecam-a.part"),
            dir.path().join(".stylecam-b.part"),
        );
        std::fs::write(&a, b"half").unwrap();
        track(&a);
        std::fs::rename(&a, dir.path().join("done.png")).unwrap();
        std::fs::write(&b, b"half").unwrap();
        track(&b);
        assert_eq!(remove_tracked_where(|p| p.starts_with(dir.path())), 1);
        assert!(!b.exists());
        assert!(dir.path().join("done.png").exists());
    }
}
