//! What can go wrong reading or writing blocks.

use std::fmt;

/// A block could not be read or written. Callers match on the variant; the message
/// says what exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The data are not a block of this format: not Parquet, a column or field missing
    /// or of another type, an unknown value-type code, an id of the wrong length.
    Corrupt(String),
    /// A block of a kind or version this code does not read.
    Unsupported(String),
    /// Nothing to write: a block holds at least one span.
    Empty,
    /// Arrow or Parquet failed while encoding.
    Encode(String),
}

impl FormatError {
    /// A [`FormatError::Corrupt`] with this message.
    pub fn corrupt(message: impl Into<String>) -> FormatError {
        FormatError::Corrupt(message.into())
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Corrupt(m) | FormatError::Unsupported(m) | FormatError::Encode(m) => {
                f.write_str(m)
            }
            FormatError::Empty => f.write_str("a block needs at least one span"),
        }
    }
}

impl std::error::Error for FormatError {}

/// Results of this crate.
pub type Result<T, E = FormatError> = std::result::Result<T, E>;
