//! Errors of the spam crate (model files, overlays, corpus access).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SpamError {
    #[error("model file is not valid: {0}")]
    BadModel(&'static str),
    #[error("overlay blob is not valid: {0}")]
    BadOverlay(&'static str),
    #[error("corpus: {0}")]
    Corpus(String),
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
