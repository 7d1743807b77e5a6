//! Runtime changes kept across restarts.
//!
//! Every change made through the control socket (add-br, del-br, add-port, del-port,
//! add-flow, del-flows) is appended to a journal saved as JSON in `<run_dir>/state.json`,
//! written to a temporary file and renamed over the old one so a crash never leaves half a
//! file. On start, the daemon applies switch.toml and then replays the journal through the
//! same code the commands use; a change that no longer applies (say, switch.toml now
//! defines that bridge itself) is logged and dropped from the journal.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the journal inside the run directory.
pub const STATE_FILE_NAME: &str = "state.json";

/// One runtime change, as the command that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum RuntimeChange {
    /// `add-br BR [datapath=..]`.
    AddBridge {
        /// Bridge.
        bridge: String,
        /// "netdev" or "kernel".
        datapath: String,
    },
    /// `del-br BR`.
    DelBridge {
        /// Bridge.
        bridge: String,
    },
    /// `add-port BR PORT [key=value...]`.
    AddPort {
        /// Bridge.
        bridge: String,
        /// Port.
        port: String,
        /// The key=value arguments as given.
        args: Vec<String>,
    },
    /// `del-port BR PORT`.
    DelPort {
        /// Bridge.
        bridge: String,
        /// Port.
        port: String,
    },
    /// `add-flow BR FLOW`.
    AddFlow {
        /// Bridge.
        bridge: String,
        /// Flow text.
        flow: String,
    },
    /// `del-flows BR [MATCH]`.
    DelFlows {
        /// Bridge.
        bridge: String,
        /// Match text; `None` deletes all.
        matching: Option<String>,
    },
}

/// The journal file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Journal {
    version: u32,
    changes: Vec<RuntimeChange>,
}

/// Errors reading or writing the state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a journal.
    #[error("{path}: not a valid state file: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

/// Where the journal lives, and its contents.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    changes: Vec<RuntimeChange>,
}

impl StateFile {
    /// Opens the journal at `path`, reading it if it exists.
    pub fn open(path: &Path) -> Result<StateFile, StateError> {
        let changes = match std::fs::read(path) {
            Ok(bytes) => {
                let j: Journal =
                    serde_json::from_slice(&bytes).map_err(|source| StateError::Parse {
                        path: path.to_path_buf(),
                        source,
                    })?;
                j.changes
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(StateError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(StateFile {
            path: path.to_path_buf(),
            changes,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The recorded changes, oldest first.
    pub fn changes(&self) -> &[RuntimeChange] {
        &self.changes
    }

    /// Replaces the recorded changes (after a replay dropped some) and saves.
    pub fn replace(&mut self, changes: Vec<RuntimeChange>) -> Result<(), StateError> {
        self.changes = changes;
        self.save()
    }

    /// Records one change and saves.
    pub fn record(&mut self, change: RuntimeChange) -> Result<(), StateError> {
        self.changes.push(change);
        self.save()
    }

    fn save(&self) -> Result<(), StateError> {
        let io = |source| StateError::Io {
            path: self.path.clone(),
            source,
        };
        let journal = Journal {
            version: 1,
            changes: self.changes.clone(),
        };
        let bytes =
            serde_json::to_vec_pretty(&journal).map_err(|e| io(std::io::Error::other(e)))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_saves_atomically_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE_NAME);
        let mut s = StateFile::open(&path).unwrap();
        assert!(s.changes().is_empty());
        s.record(RuntimeChange::AddBridge {
            bridge: "b".into(),
            datapath: "netdev".into(),
        })
        .unwrap();
        s.record(RuntimeChange::DelFlows {
            bridge: "b".into(),
            matching: None,
        })
        .unwrap();
        assert!(!path.with_extension("json.tmp").exists());
        let again = StateFile::open(&path).unwrap();
        assert_eq!(again.changes(), s.changes());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"op\": \"add-bridge\""), "{text}");
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE_NAME);
        std::fs::write(&path, "not json").unwrap();
        let e = StateFile::open(&path).unwrap_err().to_string();
        assert!(
            e.contains("state.json") && e.contains("not a valid state file"),
            "{e}"
        );
    }
}
