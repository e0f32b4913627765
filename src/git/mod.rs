//! Git intake: where a repository comes from ([`source`]), fetching it into a
//! mirror within limits ([`mod@fetch`]) over https (CAs: [`tls`]) or ssh (host
//! keys: [`known_hosts`]), exporting the graded tree safely
//! ([`mod@export`]), and reading how the candidate worked ([`history`]).
//!
//! libgit2 only: no git CLI runs at grading time, so no hooks, filters or
//! config from a candidate's repository are ever executed.

pub mod classify;
pub mod corrupt;
pub mod export;
pub mod fetch;
pub mod history;
pub mod known_hosts;
pub mod source;
pub mod tls;
pub mod tooling;

pub use crate::redact::redact;
pub use classify::{classify, FileClass};
pub use export::{export_tree, Exported, MissingFile};
pub use fetch::{fetch, FetchRequest, Fetched};
pub use history::{analyze, HistoryInput, HistoryReport, Signal};
pub use source::{RepoSource, SourcePolicy};
