//! The error of one field that does not parse: what every parser of the book, and of the
//! values the API takes in the book's shape, gives back.

/// A problem with one field of one row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value:?} {problem}")]
pub struct FieldError {
    pub field: &'static str,
    pub value: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: &'static str, value: &str, problem: impl Into<String>) -> Self {
        FieldError { field, value: value.to_string(), problem: problem.into() }
    }
}
