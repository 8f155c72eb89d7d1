//! The one error of the engine: an input it cannot work with.

/// An input the engine cannot work with, naming the field: an unknown time zone, an invalid
/// cron expression, an impossible strategy. The command line prints it and exits 2; the
/// operator reports it as `Stalled` with reason `InvalidSpec`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidSpec {
    /// The field, as a path from the object's root, like `spec.recurrences[1].cron`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl InvalidSpec {
    /// An error at `field`.
    pub fn new(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        InvalidSpec {
            field: field.into(),
            message: message.to_string(),
        }
    }
}
