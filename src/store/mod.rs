//! The bottom layer: where journals and locks live (the home directory),
//! durable atomic writes, and the clock journals are stamped with. Locks
//! are in [`lock`]. Nothing here knows what a journal says.

pub mod holder;
pub mod lock;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The current time as RFC 3339 with milliseconds, UTC.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Where journals and locks live: `PGMIGRATE_HOME` or the platform data
/// directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The home from `PGMIGRATE_HOME` if set, else the platform data dir.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Home, Error> {
        if let Some(dir) = env("PGMIGRATE_HOME").filter(|s| !s.is_empty()) {
            return Ok(Home {
                root: PathBuf::from(dir),
            });
        }
        let dirs = directories::ProjectDirs::from("", "", "pgmigrate").ok_or_else(|| {
            Error::Usage(
                "cannot find a data directory for pgmigrate (no home directory): set \
                 PGMIGRATE_HOME to a directory where journals can be kept"
                    .into(),
            )
        })?;
        Ok(Home {
            root: dirs.data_dir().to_path_buf(),
        })
    }

    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<home>/apps/<app>`.
    pub fn app_dir(&self, app: &str) -> PathBuf {
        self.root.join("apps").join(app)
    }

    /// `<home>/apps/<app>/runs`.
    pub fn runs_dir(&self, app: &str) -> PathBuf {
        self.app_dir(app).join("runs")
    }

    pub fn journal_path(&self, app: &str, run_id: &str) -> PathBuf {
        self.runs_dir(app).join(format!("{run_id}.json"))
    }

    /// Create a directory (and parents) private to the user (0700).
    pub fn ensure_dir(&self, dir: &Path) -> Result<(), Error> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(|source| Error::Io {
            action: "create the directory",
            path: dir.to_path_buf(),
            source,
        })
    }

    /// The apps that have journals, sorted.
    pub fn apps(&self) -> Result<Vec<String>, Error> {
        let dir = self.root.join("apps");
        let mut apps = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(apps),
            Err(source) => {
                return Err(Error::Io {
                    action: "list",
                    path: dir,
                    source,
                })
            }
        };
        for entry in entries.flatten() {
            if let Some(name) = entry.file_name().to_str() {
                apps.push(name.to_string());
            }
        }
        apps.sort();
        Ok(apps)
    }

    /// The run ids journaled for an app, oldest first.
    pub fn run_ids(&self, app: &str) -> Result<Vec<String>, Error> {
        let dir = self.runs_dir(app);
        let mut ids = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(source) => {
                return Err(Error::Io {
                    action: "list",
                    path: dir,
                    source,
                })
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name.strip_suffix(".json") {
                if !id.starts_with('.') {
                    ids.push(id.to_string());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }
}

/// Durably replace `path` with `bytes`: write `.<name>.tmp` in the same
/// directory with mode 0600, fsync it, rename it over `path`, fsync the
/// directory. It does not keep the previous version.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("journal path has no directory"))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| std::io::Error::other("journal path has no file name"))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
