//! `file.edit`: an atomic, idempotent edit of a text file.

mod edits;
mod remote;
mod step;
mod write;

pub use step::FileEdit;
