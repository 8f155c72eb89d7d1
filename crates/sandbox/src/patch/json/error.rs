//! Why a JSON patch operation does not apply, in the words of the JSON patch library the API
//! server uses: an operation's error wraps the reason its path, `from` or container gave,
//! each adding its part to the message (`error in add for path: '/spec/x/5': Unable to
//! access invalid index: 5: invalid index referenced`). Many end in `: missing value`, the
//! library's error for anything absent.

use super::OperationKind;

/// Why one operation of a JSON patch does not apply.
#[derive(Debug, thiserror::Error)]
pub(super) enum JsonPatchError {
    /// `op` names none of the six operations (`unknown` when it is absent).
    #[error("Unexpected kind: {0}")]
    UnknownOperation(String),
    /// `add`, `remove` and `copy` call a `path` they cannot read missing, whatever is wrong
    /// with it.
    #[error("{op} operation failed to decode path: missing value")]
    PathMissing { op: OperationKind },
    /// `replace`, `move` and `test` say what is wrong with their `path`.
    #[error("{op} operation failed to decode path: {source}")]
    PathUnreadable {
        op: OperationKind,
        source: FieldError,
    },
    /// `move` and `copy` without a `from` they can read.
    #[error("{op} operation failed to decode from: {source}")]
    FromUnreadable {
        op: OperationKind,
        source: FieldError,
    },
    /// `add` and `remove`: no object or list holds `path`.
    #[error("{op} operation does not apply: doc is missing path: \"{path}\": missing value")]
    MissingPath { op: OperationKind, path: String },
    /// `replace`: no object or list holds `path`.
    #[error("replace operation does not apply: doc is missing path: {0}: missing value")]
    ReplaceMissingPath(String),
    /// `replace`: `path` ends in an index its list does not have.
    #[error("replace operation does not apply: doc is missing key: {0}: missing value")]
    ReplaceMissingKey(String),
    /// `test`: no object or list holds `path`.
    #[error("test operation does not apply: is missing path: {0}: missing value")]
    TestMissingPath(String),
    /// `move` and `copy`: no object or list holds `from`.
    #[error("{op} operation does not apply: doc is missing from path: {from}: missing value")]
    MissingFrom { op: OperationKind, from: String },
    /// `move` and `copy`: no object or list holds `path`.
    #[error(
        "{op} operation does not apply: doc is missing destination path: {path}: missing value"
    )]
    MissingDestination { op: OperationKind, path: String },
    /// The value at `path` cannot be read, added, replaced or removed. As in the library,
    /// `replace` calls itself `remove` here, and `move` names the last key of `from`
    /// rather than a path when the value cannot be taken from there.
    #[error("error in {op} for path: '{path}': {source}")]
    Container {
        op: OperationKind,
        path: String,
        source: ContainerError,
    },
    /// `copy`: the value at `from` cannot be read.
    #[error("error in copy for from: '{from}': {source}")]
    CopyFrom {
        from: String,
        source: ContainerError,
    },
    /// `copy`: the value cannot be added at `path`.
    #[error("error while adding value during copy: {0}")]
    CopyTo(#[source] ContainerError),
    /// The `copy` operations so far added more bytes of JSON than the API server allows.
    #[error(
        "Unable to complete the copy, the accumulated size increase of copy is {copied}, \
         exceeding the limit {limit}"
    )]
    CopyLimit { copied: usize, limit: usize },
    /// `test`: the value at the path is not the operation's.
    #[error("testing value {0} failed: test failed")]
    TestFailed(String),
}

/// Why an operation's `path` or `from` cannot be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum FieldError {
    /// No `path`, or a `null` one.
    #[error("operation missing path field: missing value")]
    NoPath,
    /// No `from`, or a `null` one.
    #[error("operation, missing from field: missing value")]
    NoFrom,
    /// The field is not a string, but of this JSON type.
    #[error("json: cannot unmarshal {0} into Go value of type string")]
    NotAString(&'static str),
}

/// Why a value cannot be read, added, replaced or removed in the object or list that holds
/// it.
#[derive(Debug, thiserror::Error)]
pub(super) enum ContainerError {
    /// The key in a list is not an index.
    #[error(transparent)]
    Index(#[from] IndexParseError),
    /// `add`: the key in a list is neither an index nor `-`.
    #[error("value was not a proper array index: '{key}': {source}")]
    NotAnArrayIndex {
        key: String,
        source: IndexParseError,
    },
    /// An index outside the list, as written in the path.
    #[error("Unable to access invalid index: {0}: invalid index referenced")]
    InvalidIndex(i64),
    /// `remove` of a key the object does not have.
    #[error("Unable to remove nonexistent key: {0}: missing value")]
    NonexistentKey(String),
    /// The holder is neither an object nor a list.
    #[error("unknown object type: missing value")]
    UnknownObjectType,
}

/// A key in a list that is not a decimal integer, as Go's `strconv.Atoi` reports it.
#[derive(Debug, thiserror::Error)]
pub(super) enum IndexParseError {
    /// Not an integer.
    #[error("strconv.Atoi: parsing {0:?}: invalid syntax")]
    InvalidSyntax(String),
    /// An integer too large for 64 bits.
    #[error("strconv.Atoi: parsing {0:?}: value out of range")]
    OutOfRange(String),
}
