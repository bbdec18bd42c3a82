//! One run per app at a time: an exclusive advisory lock (fs2) on
//! `<home>/apps/<app>/lock`. The lock file is never deleted (deleting it
//! would let two processes lock two different files); while held it names
//! its holder (pid, host, start time, command) so that a second process can
//! say who holds it. Every lock call lives here.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use crate::error::Error;
use crate::store::holder::Holder;
use crate::store::Home;

/// The held lock of one app; released when dropped (or when the process
/// dies, however it dies).
#[derive(Debug)]
pub struct AppLock {
    app: String,
    path: PathBuf,
    _file: File,
}

impl AppLock {
    /// Take the app's lock without waiting. If another process holds it,
    /// fail at once naming the holder.
    pub fn acquire(home: &Home, app: &str, command: &str) -> Result<AppLock, Error> {
        let dir = home.app_dir(app);
        home.ensure_dir(&dir)?;
        let path = dir.join("lock");
        let mut file = open_lock_file(&path)?;
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
        })
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
    let mut file = File::open(&path).ok()?;
    if fs2::FileExt::try_lock_shared(&file).is_ok() {
        let _ = fs2::FileExt::unlock(&file);
        return None;
    }
    read_holder(&mut file)
}

fn open_lock_file(path: &PathBuf) -> Result<File, Error> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|source| Error::Io {
        action: "open the lock file",
        path: path.clone(),
        source,
    })
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
}
