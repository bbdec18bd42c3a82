//! Reading and writing v2 journals in the home directory: the only way to
//! write one is a [`Writer`], which holds the app's lock and persists every
//! change atomically before returning.
//!
//! Before each write it checks that the run still owns the journal: the
//! lock path still names the file it locked, and the journal on disk is
//! byte for byte what it last wrote (or read). If not, or if a write
//! fails, the run stops at once ([`Error::JournalLost`]), never writing
//! its stale view over another process's, and writes nothing more; the
//! journal in memory goes back to what is on disk, so that the error tells
//! what was journaled, not what was about to be.

use std::path::{Path, PathBuf};

use super::log::Store;
use super::{decode, encode, Decode, Journal};
use crate::error::Error;
use crate::store::lock::AppLock;
use crate::store::{commit_atomic, prepare_atomic, write_atomic, Home};

/// Read a journal file (any version this build reads).
pub fn load_path(path: &Path) -> Result<Journal, Error> {
    let bytes = read_journal(path)?;
    decode(&bytes).map_err(|problem| match problem {
        Decode::Newer(v) => Error::JournalNewer {
            path: path.to_path_buf(),
            version: v,
            reads: super::FORMAT_VERSION,
        },
        Decode::Corrupt(problem) => Error::JournalCorrupt {
            path: path.to_path_buf(),
            problem,
        },
    })
}

/// The bytes of a journal file, never through a symbolic link.
fn read_journal(path: &Path) -> Result<Vec<u8>, Error> {
    crate::store::read_no_follow(path).map_err(|source| {
        if crate::store::is_link_refused(&source) {
            Error::UnsafeHome {
                path: path.to_path_buf(),
                reason: "the journal is a symbolic link, and pgmigrate does not follow links \
                         under its home"
                    .into(),
                fix: format!(
                    "put the journal itself there instead of the link (`cp --remove-destination \
                     \"$(readlink -f {p})\" {p}`), or remove the link (`rm {p}`)",
                    p = path.display()
                ),
            }
        } else {
            Error::Io {
                action: "read the journal",
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// The app's latest run, if any, with its path.
pub fn latest(home: &Home, app: &str) -> Result<Option<(Journal, PathBuf)>, Error> {
    match home.run_ids(app)?.last() {
        Some(id) => {
            let path = home.journal_path(app, id);
            load_path(&path).map(|j| Some((j, path)))
        }
        None => Ok(None),
    }
}

/// The app's state as a journal says it, in words for a person who must
/// put the app back by hand (given by the methods, which know the steps).
pub type Describe = fn(&Journal) -> String;

/// Holds the app's lock and the journal; persists every change.
pub struct Writer {
    lock: AppLock,
    path: PathBuf,
    journal: Journal,
    /// The bytes this process last wrote to (or read from) `path`.
    on_disk: Vec<u8>,
    /// Set once the journal is lost: nothing more is written.
    lost: Option<String>,
    describe: Option<Describe>,
}

impl Writer {
    /// Start a journal for a new run and write it. Nothing has changed on
    /// the app yet, so a failure here is a plain [`Error::Io`].
    pub fn create(home: &Home, lock: AppLock, journal: Journal) -> Result<Writer, Error> {
        home.ensure_dir(&home.runs_dir(&journal.app))?;
        let path = home.journal_path(&journal.app, &journal.run_id);
        let mut w = Writer {
            lock,
            path,
            journal,
            on_disk: Vec::new(),
            lost: None,
            describe: None,
        };
        w.stamp();
        let bytes = encode(&w.journal);
        write_atomic(&w.path, &bytes).map_err(|source| Error::Io {
            action: "write the journal",
            path: w.path.clone(),
            source,
        })?;
        w.on_disk = bytes;
        Ok(w)
    }

    /// Continue an existing journal (read from `path` under the lock): it
    /// is read again here, and must still say what `journal` says.
    pub fn open(lock: AppLock, path: PathBuf, journal: Journal) -> Result<Writer, Error> {
        let on_disk = read_journal(&path)?;
        if decode(&on_disk).ok().as_ref() != Some(&journal) {
            return Err(Error::JournalCorrupt {
                path,
                problem: "it changed while it was being opened (another process wrote it)".into(),
            });
        }
        Ok(Writer {
            lock,
            path,
            journal,
            on_disk,
            lost: None,
            describe: None,
        })
    }

    /// How to tell the app's state if the journal is lost.
    pub fn describe_with(&mut self, describe: Describe) {
        self.describe = Some(describe);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn lock(&self) -> &AppLock {
        &self.lock
    }

    fn stamp(&mut self) {
        self.journal.updated_at = crate::store::now();
        self.journal.pgmigrate_version = env!("CARGO_PKG_VERSION").to_string();
        // A v1 journal is written back as v2 from its first change on.
        self.journal.format_version = crate::journal::FORMAT_VERSION;
    }

    /// Why the journal on disk is no longer this run's to write, if it is
    /// not.
    fn taken(&self) -> Option<String> {
        if let Err(problem) = self.lock.check_held() {
            return Some(format!("can no longer be written safely: its {problem}"));
        }
        match crate::store::read_no_follow(&self.path) {
            Ok(bytes) if bytes == self.on_disk => None,
            Ok(_) => Some(
                "was changed by another process since this run last wrote it (another \
                 pgmigrate, or an edit); this run will not write its older view over it"
                    .into(),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Some("was removed while the run was under way".into())
            }
            Err(e) if crate::store::is_link_refused(&e) => {
                Some("was replaced by a symbolic link while the run was under way".into())
            }
            Err(e) => Some(format!("cannot be read back ({e})")),
        }
    }

    fn persist(&mut self) -> Result<(), Error> {
        if self.lost.is_none() {
            self.stamp();
            let bytes = encode(&self.journal);
            match prepare_atomic(&self.path, &bytes) {
                // Checked last thing before the rename: the window in
                // which another writer's change could still be replaced
                // is the rename itself.
                Ok(tmp) => match self.taken() {
                    None => match commit_atomic(&tmp, &self.path) {
                        Ok(()) => {
                            self.on_disk = bytes;
                            return Ok(());
                        }
                        Err(e) => self.lost = Some(format!("could not be written ({e})")),
                    },
                    Some(problem) => {
                        let _ = std::fs::remove_file(&tmp);
                        self.lost = Some(problem);
                    }
                },
                Err(e) => {
                    // A write that fails because the journal was taken
                    // (its directory removed) says so.
                    self.lost = Some(
                        self.taken()
                            .unwrap_or_else(|| format!("could not be written ({e})")),
                    );
                }
            }
        }
        // What is journaled, not what was about to be.
        if let Ok(last) = decode(&self.on_disk) {
            self.journal = last;
        }
        Err(Error::JournalLost {
            what: match self.journal.log.direction {
                super::log::Direction::Forward => "the run",
                super::log::Direction::Rollback => "the rollback",
            },
            app: self.journal.app.clone(),
            path: self.path.clone(),
            problem: self.lost.clone().unwrap_or_default(),
            state: self.describe.map(|d| d(&self.journal)).unwrap_or_default(),
        })
    }
}

impl Store<Journal> for Writer {
    fn journal(&self) -> &Journal {
        &self.journal
    }

    fn update(&mut self, change: &mut dyn FnMut(&mut Journal)) -> Result<(), Error> {
        change(&mut self.journal);
        self.persist()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{RunOptions, TargetPlan};

    fn journal() -> Journal {
        Journal::new(
            "20261204T000000000Z-0000abcd".into(),
            "demo-app".into(),
            RunOptions {
                to_plan: "heroku-postgresql:essential-0".into(),
                from_attachment: "DATABASE".into(),
                verify: Default::default(),
            },
            TargetPlan {
                addon_name: "demo-app-pgmigrate-0000abcd".into(),
                attachment_name: "PGMIGRATE_0000ABCD".into(),
            },
            "copy",
            &["preflight"],
        )
    }

    fn writer(home: &Home) -> Writer {
        let lock = AppLock::acquire(home, "demo-app", "run").unwrap();
        let mut w = Writer::create(home, lock, journal()).unwrap();
        w.describe_with(|j| format!("  - state of {}", j.app));
        w
    }

    fn note(w: &mut Writer, text: &str) -> Result<(), Error> {
        let text = text.to_string();
        w.update(&mut |j: &mut Journal| j.created_at = text.clone())
    }

    /// Lost once, lost for good: the error names the problem and carries
    /// the description; the journal in memory is what is on disk.
    fn assert_lost(w: &mut Writer, problem: &str) {
        match note(w, "after") {
            Err(Error::JournalLost {
                problem: p, state, ..
            }) => {
                assert!(p.contains(problem), "{p}");
                assert_eq!(state, "  - state of demo-app");
            }
            other => panic!("{other:?}"),
        }
        assert_ne!(w.journal().created_at, "after", "the change is not kept");
        assert!(matches!(note(w, "again"), Err(Error::JournalLost { .. })));
        assert_eq!(
            Error::JournalLost {
                what: "the run",
                app: String::new(),
                path: PathBuf::new(),
                problem: String::new(),
                state: String::new()
            }
            .exit_code(),
            crate::error::exit::JOURNAL_LOST
        );
    }

    #[test]
    fn writes_go_on_while_the_journal_is_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let mut w = writer(&home);
        note(&mut w, "one").unwrap();
        note(&mut w, "two").unwrap();
        let on_disk = load_path(w.path()).unwrap();
        assert_eq!(on_disk.created_at, "two");
    }

    #[test]
    fn a_journal_changed_by_another_process_stops_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let mut w = writer(&home);
        note(&mut w, "one").unwrap();
        let theirs = b"{\"written\": \"by another\"}".to_vec();
        std::fs::write(w.path(), &theirs).unwrap();
        assert_lost(&mut w, "changed by another process");
        assert_eq!(std::fs::read(w.path()).unwrap(), theirs, "not overwritten");
    }

    #[test]
    fn a_removed_journal_or_lock_stops_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let mut w = writer(&home);
        std::fs::remove_file(w.path()).unwrap();
        assert_lost(&mut w, "was removed");
        assert!(!w.path().exists(), "not written back");

        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let mut w = writer(&home);
        let lock = home.app_dir("demo-app").join("lock");
        std::fs::remove_file(&lock).unwrap();
        std::fs::write(&lock, "").unwrap();
        assert_lost(&mut w, "was replaced");

        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let mut w = writer(&home);
        std::fs::remove_dir_all(home.app_dir("demo-app")).unwrap();
        assert_lost(&mut w, "was removed");
        assert!(!home.app_dir("demo-app").exists(), "nothing recreated");
    }

    #[test]
    fn a_write_that_fails_stops_the_writer_and_keeps_the_last_journal() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let mut w = writer(&home);
        note(&mut w, "kept").unwrap();
        // The temporary file cannot be made (a directory with something in
        // it stands in its way), as on a full or failing disk.
        let name = w.path().file_name().unwrap().to_str().unwrap().to_string();
        let tmp = w.path().with_file_name(format!(".{name}.tmp"));
        std::fs::create_dir(&tmp).unwrap();
        std::fs::write(tmp.join("x"), "x").unwrap();
        assert_lost(&mut w, "could not be written");
        assert_eq!(load_path(w.path()).unwrap().created_at, "kept");
        assert_eq!(w.journal().created_at, "kept");
    }

    #[test]
    fn a_journal_replaced_by_a_link_stops_the_writer_and_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let mut w = writer(&home);
        let elsewhere = dir.path().join("elsewhere.json");
        std::fs::copy(w.path(), &elsewhere).unwrap();
        let before = std::fs::read(&elsewhere).unwrap();
        std::fs::remove_file(w.path()).unwrap();
        std::os::unix::fs::symlink(&elsewhere, w.path()).unwrap();
        assert_lost(&mut w, "symbolic link");
        assert_eq!(std::fs::read(&elsewhere).unwrap(), before);
        assert!(matches!(load_path(w.path()), Err(Error::UnsafeHome { .. })));
    }

    #[test]
    fn open_reads_the_journal_again() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let w = writer(&home);
        let path = w.path().to_path_buf();
        let j = w.journal().clone();
        drop(w);
        let lock = AppLock::acquire(&home, "demo-app", "resume").unwrap();
        let mut w = Writer::open(lock, path.clone(), j.clone()).unwrap();
        note(&mut w, "resumed").unwrap();
        drop(w);
        // A journal that differs from what was read is refused.
        let lock = AppLock::acquire(&home, "demo-app", "resume").unwrap();
        assert!(matches!(
            Writer::open(lock, path, j),
            Err(Error::JournalCorrupt { .. })
        ));
    }
}
