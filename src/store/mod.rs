//! The bottom layer: where journals and locks live (the home directory),
//! durable atomic writes, and the clock journals are stamped with. Locks
//! are in [`lock`]. Nothing here knows what a journal says.

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

    /// Create a directory under the home (and every missing directory
    /// between the two) private to the user (0700), checking each one on
    /// the way as ssh checks `~/.ssh`: see [`Home::check_dirs`].
    pub fn ensure_dir(&self, dir: &Path) -> Result<(), Error> {
        self.walk(dir, true).map(|_| ())
    }

    /// Check the directories from the home down to `dir` that exist; `false`
    /// if one is missing. The home itself may be a symbolic link (the user
    /// chose it); every directory under it must be a real directory. Each
    /// must be owned by the user and not writable by group or others, else
    /// the error names the path, the reason and the fix.
    pub fn check_dirs(&self, dir: &Path) -> Result<bool, Error> {
        self.walk(dir, false)
    }

    fn walk(&self, dir: &Path, create: bool) -> Result<bool, Error> {
        let rel = dir.strip_prefix(&self.root).map_err(|_| {
            Error::Internal(format!(
                "{} is not under the home {}",
                dir.display(),
                self.root.display()
            ))
        })?;
        let mut at = self.root.clone();
        if !check_or_create(&at, true, create)? {
            return Ok(false);
        }
        for part in rel.components() {
            at.push(part);
            if !check_or_create(&at, false, create)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The apps that have journals, sorted.
    pub fn apps(&self) -> Result<Vec<String>, Error> {
        let dir = self.root.join("apps");
        let mut apps = Vec::new();
        if !self.check_dirs(&dir)? {
            return Ok(apps);
        }
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
        if !self.check_dirs(&dir)? {
            return Ok(ids);
        }
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

/// A directory of the home as ssh wants `~/.ssh`: a real directory (the
/// home itself may be reached through a link), owned by the user, not
/// writable by group or others. Missing: created 0700 when `create`, else
/// `Ok(false)`.
fn check_or_create(path: &Path, is_root: bool, create: bool) -> Result<bool, Error> {
    let look = |p: &Path| {
        if is_root {
            fs::metadata(p)
        } else {
            fs::symlink_metadata(p)
        }
    };
    let meta = match look(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(is_root);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            match builder.create(path) {
                Ok(()) => {}
                // Made by another process meanwhile: checked below.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(Error::Io {
                        action: "create the directory",
                        path: path.to_path_buf(),
                        source,
                    })
                }
            }
            look(path).map_err(|source| Error::Io {
                action: "create the directory",
                path: path.to_path_buf(),
                source,
            })?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(Error::Io {
                action: "look at",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    match unsafe_dir(&meta) {
        None => Ok(true),
        Some((reason, fix)) => Err(Error::UnsafeHome {
            path: path.to_path_buf(),
            reason,
            fix: fix.replace("PATH", &path.display().to_string()),
        }),
    }
}

/// Why a directory of the home is not safe to keep journals in, and the
/// fix (`PATH` stands for its path), or `None`.
fn unsafe_dir(meta: &fs::Metadata) -> Option<(String, String)> {
    if meta.file_type().is_symlink() {
        return Some((
            "it is a symbolic link, and pgmigrate does not follow links under its home".into(),
            "remove the link (`rm PATH`); pgmigrate creates its own directory there".into(),
        ));
    }
    if !meta.is_dir() {
        return Some((
            "it is not a directory".into(),
            "set PGMIGRATE_HOME to a directory, or move PATH away".into(),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = current_uid();
        if meta.uid() != me {
            return Some((
                format!(
                    "it is owned by user id {}, not by you (user id {me}): another user could \
                     change or remove the journals and locks in it",
                    meta.uid()
                ),
                "`chown $(id -u) PATH` and `chmod 700 PATH`, or set PGMIGRATE_HOME to a \
                 directory of your own"
                    .into(),
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Some((
                format!(
                    "it is writable by {} (mode {:o}): another user could change or remove the \
                     journals and locks in it",
                    if meta.mode() & 0o002 != 0 {
                        "others"
                    } else {
                        "its group"
                    },
                    meta.mode() & 0o7777
                ),
                "`chmod 700 PATH`".into(),
            ));
        }
    }
    None
}

/// The effective user id of this process.
#[cfg(unix)]
pub fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Options that refuse to open a symbolic link as the last component of
/// the path (`O_NOFOLLOW`: the open fails with `ELOOP`).
pub fn no_follow(options: &mut fs::OpenOptions) -> &mut fs::OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options
}

/// Whether an open failed because the path is a symbolic link.
pub fn is_link_refused(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// The bytes of a file under the home, never through a symbolic link.
pub fn read_no_follow(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = no_follow(fs::OpenOptions::new().read(true)).open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Durably replace `path` with `bytes`: write `.<name>.tmp` in the same
/// directory with mode 0600, fsync it, rename it over `path`, fsync the
/// directory. It does not keep the previous version. Whatever is at the
/// temporary path is removed first (a planted link is unlinked, never
/// followed) and the file is created new, without following a link; the
/// rename replaces a link at `path` rather than writing through it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = prepare_atomic(path, bytes)?;
    commit_atomic(&tmp, path)
}

/// The first half of [`write_atomic`]: the temporary file written and
/// synced; its path. A caller can check what it must between the two
/// halves (the journal writer checks that it still owns the journal right
/// before the rename), and remove the file instead of committing it.
pub fn prepare_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("journal path has no directory"))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| std::io::Error::other("journal path has no file name"))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = no_follow(&mut options).open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(tmp)
}

/// The second half of [`write_atomic`]: rename `tmp` over `path` and sync
/// the directory.
pub fn commit_atomic(tmp: &Path, path: &Path) -> std::io::Result<()> {
    fs::rename(tmp, path)?;
    #[cfg(unix)]
    {
        if let Some(dir) = path.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
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

    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn directories_are_created_private_and_checked_as_ssh_does() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("home"));
        let runs = home.runs_dir("demo-app");
        assert!(!home.check_dirs(&runs).unwrap(), "absent: not created");
        home.ensure_dir(&runs).unwrap();
        for d in [
            home.root().to_path_buf(),
            home.app_dir("demo-app"),
            runs.clone(),
        ] {
            assert_eq!(mode(&d), 0o700, "{}", d.display());
        }
        assert!(home.check_dirs(&runs).unwrap());
        // Writable by others, by the group: refused with chmod 700.
        for m in [0o777, 0o770, 0o702] {
            fs::set_permissions(home.app_dir("demo-app"), fs::Permissions::from_mode(m)).unwrap();
            match home.ensure_dir(&runs) {
                Err(Error::UnsafeHome { path, fix, .. }) => {
                    assert_eq!(path, home.app_dir("demo-app"));
                    assert!(
                        fix.contains(&format!("chmod 700 {}", path.display())),
                        "{fix}"
                    );
                }
                other => panic!("{m:o}: {other:?}"),
            }
            assert!(home.run_ids("demo-app").is_err(), "reads refuse too");
        }
        fs::set_permissions(home.app_dir("demo-app"), fs::Permissions::from_mode(0o700)).unwrap();
        // A directory under the home that is a link: refused, not followed.
        fs::remove_dir(&runs).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), &runs).unwrap();
        assert!(matches!(
            home.ensure_dir(&runs),
            Err(Error::UnsafeHome { reason, .. }) if reason.contains("symbolic link")
        ));
        // The home itself may be a link to a private directory.
        let real = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(real.path(), &link).unwrap();
        Home::at(&link)
            .ensure_dir(&Home::at(&link).runs_dir("x"))
            .unwrap();
        // Another user's: refused (only root can give one away).
        if current_uid() == 0 {
            let theirs = dir.path().join("theirs");
            fs::create_dir(&theirs).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
            assert!(matches!(
                Home::at(&theirs).ensure_dir(&theirs),
                Err(Error::UnsafeHome { reason, .. }) if reason.contains("owned by user id 65534")
            ));
        }
    }

    #[test]
    fn a_planted_temp_link_is_removed_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("j.json");
        std::os::unix::fs::symlink(&victim, dir.path().join(".j.json.tmp")).unwrap();
        write_atomic(&path, b"journal").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(&path).unwrap(), b"journal");
        // A link at the path itself is replaced, not written through, and
        // never read.
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        assert!(is_link_refused(&read_no_follow(&path).unwrap_err()));
        write_atomic(&path, b"journal").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(fs::symlink_metadata(&path).unwrap().is_file());
    }
}
