//! Reading and writing v2 journals in the home directory: the only way to
//! write one is a [`Writer`], which holds the app's lock and persists every
//! change atomically before returning.

use std::path::{Path, PathBuf};

use super::log::Store;
use super::{decode, encode, Decode, Journal};
use crate::error::Error;
use crate::store::lock::AppLock;
use crate::store::{write_atomic, Home};

/// Read a journal file (any version this build reads).
pub fn load_path(path: &Path) -> Result<Journal, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        action: "read the journal",
        path: path.to_path_buf(),
        source,
    })?;
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

/// Holds the app's lock and the journal; persists every change.
pub struct Writer {
    lock: AppLock,
    path: PathBuf,
    journal: Journal,
}

impl Writer {
    /// Start a journal for a new run and write it.
    pub fn create(home: &Home, lock: AppLock, journal: Journal) -> Result<Writer, Error> {
        home.ensure_dir(&home.runs_dir(&journal.app))?;
        let path = home.journal_path(&journal.app, &journal.run_id);
        let mut w = Writer {
            lock,
            path,
            journal,
        };
        w.persist()?;
        Ok(w)
    }

    /// Continue an existing journal (read from `path`).
    pub fn open(lock: AppLock, path: PathBuf, journal: Journal) -> Writer {
        Writer {
            lock,
            path,
            journal,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn lock(&self) -> &AppLock {
        &self.lock
    }

    fn persist(&mut self) -> Result<(), Error> {
        self.journal.updated_at = crate::store::now();
        self.journal.pgmigrate_version = env!("CARGO_PKG_VERSION").to_string();
        // A v1 journal is written back as v2 from its first change on.
        self.journal.format_version = crate::journal::FORMAT_VERSION;
        write_atomic(&self.path, &encode(&self.journal)).map_err(|source| Error::Io {
            action: "write the journal",
            path: self.path.clone(),
            source,
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
