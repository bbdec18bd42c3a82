//! One run per app at a time: an exclusive advisory lock (fs2) on
//! `<home>/apps/<app>/lock`. The lock file is never deleted (deleting it
//! would let two processes lock two different files); while held it names
//! its holder (pid, host, start time, command) so that a second process can
//! say who holds it. Every lock call lives here.
//!
//! The file is opened without following a symbolic link, and refused if it
//! is not a plain file of the user's with one link. The lock remembers the
//! file it holds (device and inode): [`AppLock::check_held`] says when the
//! path no longer names it (the file or its directory removed, or replaced),
//! because then a second process can lock the new file and both would run.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use crate::error::Error;
use crate::holder::Holder;
use crate::store::Home;

/// The held lock of one app; released when dropped (or when the process
/// dies, however it dies).
#[derive(Debug)]
pub struct AppLock {
    app: String,
    path: PathBuf,
    _file: File,
    /// Device and inode of the file held.
    id: (u64, u64),
}

impl AppLock {
    /// Take the app's lock without waiting. If another process holds it,
    /// fail at once naming the holder.
    pub fn acquire(home: &Home, app: &str, command: &str) -> Result<AppLock, Error> {
        let dir = home.app_dir(app);
        home.ensure_dir(&dir)?;
        let path = dir.join("lock");
        let (mut file, id) = open_lock_file(&path)?;
        if fs2::FileExt::try_lock_exclusive(&file).is_err() {
            return Err(Error::Locked {
                app: app.to_string(),
                holder: read_holder(&mut file).map(Box::new),
                path,
            });
        }
        let holder = Holder {
            pid: std::process::id(),
            host: hostname(),
            started_at: crate::store::now(),
            command: command.to_string(),
        };
        let text = serde_json::to_string(&holder).unwrap_or_default();
        let written = file
            .set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(text.as_bytes()))
            .and_then(|_| file.sync_all());
        if let Err(source) = written {
            return Err(Error::Io {
                action: "write the lock file",
                path,
                source,
            });
        }
        Ok(AppLock {
            app: app.to_string(),
            path,
            _file: file,
            id,
        })
    }

    /// `Err(what happened)` when the lock path no longer names the file
    /// this lock holds: removed (with its directory, perhaps) or replaced.
    pub fn check_held(&self) -> Result<(), String> {
        match fs::symlink_metadata(&self.path) {
            Ok(m) if file_id(&m) == self.id => Ok(()),
            Ok(_) => Err(format!(
                "lock file {} was replaced by another file while this run held it (another \
                 process may hold the new one)",
                self.path.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "lock file {} was removed while this run held it",
                self.path.display()
            )),
            Err(e) => Err(format!(
                "lock file {} cannot be looked at ({e})",
                self.path.display()
            )),
        }
    }

    pub fn app(&self) -> &str {
        &self.app
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// Who holds the app's lock right now, if anyone (it checks by trying the
/// lock, not by trusting the file's contents).
pub fn current_holder(home: &Home, app: &str) -> Option<Holder> {
    let path = home.app_dir(app).join("lock");
    let mut file = crate::store::no_follow(OpenOptions::new().read(true))
        .open(&path)
        .ok()?;
    if fs2::FileExt::try_lock_shared(&file).is_ok() {
        let _ = fs2::FileExt::unlock(&file);
        return None;
    }
    read_holder(&mut file)
}

/// Open (or create, 0600) the lock file, never through a symbolic link,
/// and refuse one that is not a plain file of the user's with one name.
fn open_lock_file(path: &PathBuf) -> Result<(File, (u64, u64)), Error> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let unsafe_file = |reason: &str, fix: &str| Error::UnsafeHome {
        path: path.clone(),
        reason: reason.to_string(),
        fix: fix.replace("PATH", &path.display().to_string()),
    };
    let file =
        match crate::store::no_follow(&mut options).open(path) {
            Ok(f) => f,
            Err(e) if crate::store::is_link_refused(&e) => return Err(unsafe_file(
                "the lock file is a symbolic link, and pgmigrate does not follow links under its \
                 home (the file it points at would be overwritten)",
                "remove the link (`rm PATH`); pgmigrate creates its own lock file there",
            )),
            Err(source) => {
                return Err(Error::Io {
                    action: "open the lock file",
                    path: path.clone(),
                    source,
                })
            }
        };
    let meta = file.metadata().map_err(|source| Error::Io {
        action: "look at the lock file",
        path: path.clone(),
        source,
    })?;
    if !meta.is_file() {
        return Err(unsafe_file(
            "the lock file is not a plain file",
            "remove it (`rm PATH`)",
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.uid() != crate::store::current_uid() {
            return Err(unsafe_file(
                "the lock file is owned by another user",
                "remove it (`rm PATH`); pgmigrate creates its own lock file there",
            ));
        }
        if meta.nlink() != 1 {
            return Err(unsafe_file(
                "the lock file has other names (hard links): writing it would change another file",
                "remove it (`rm PATH`); pgmigrate creates its own lock file there",
            ));
        }
    }
    let id = file_id(&meta);
    Ok((file, id))
}

/// Device and inode of a file (zero where the platform has none).
fn file_id(meta: &fs::Metadata) -> (u64, u64) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        (0, 0)
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_naming_the_holder_and_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let held = AppLock::acquire(&home, "demo-app", "run").unwrap();
        match AppLock::acquire(&home, "demo-app", "run") {
            Err(Error::Locked { holder, .. }) => {
                let h = holder.expect("holder named");
                assert_eq!(h.pid, std::process::id());
                assert_eq!(h.command, "run");
            }
            other => panic!("{other:?}"),
        }
        assert!(current_holder(&home, "demo-app").is_some());
        // Another app is independent.
        let _other = AppLock::acquire(&home, "other-app", "run").unwrap();
        drop(held);
        assert!(current_holder(&home, "demo-app").is_none());
        let _again = AppLock::acquire(&home, "demo-app", "resume").unwrap();
        assert!(home.app_dir("demo-app").join("lock").exists());
    }

    #[test]
    fn a_planted_link_or_hard_link_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("home"));
        home.ensure_dir(&home.app_dir("demo-app")).unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let lock = home.app_dir("demo-app").join("lock");
        std::os::unix::fs::symlink(&victim, &lock).unwrap();
        assert!(matches!(
            AppLock::acquire(&home, "demo-app", "run"),
            Err(Error::UnsafeHome { reason, .. }) if reason.contains("symbolic link")
        ));
        assert!(current_holder(&home, "demo-app").is_none());
        fs::remove_file(&lock).unwrap();
        fs::hard_link(&victim, &lock).unwrap();
        assert!(matches!(
            AppLock::acquire(&home, "demo-app", "run"),
            Err(Error::UnsafeHome { reason, .. }) if reason.contains("hard links")
        ));
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn a_held_lock_knows_when_its_file_is_removed_or_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let held = AppLock::acquire(&home, "demo-app", "run").unwrap();
        held.check_held().unwrap();
        fs::remove_file(held.path()).unwrap();
        assert!(held.check_held().unwrap_err().contains("was removed"));
        // A second process now locks a new file: the first must see it.
        let _second = AppLock::acquire(&home, "demo-app", "run").unwrap();
        assert!(held.check_held().unwrap_err().contains("was replaced"));
    }
}
