//! Validation errors: which input fields were refused and why, in words a
//! client can act on.

use std::fmt;

/// One rejected input field, with a message safe to show to a client.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The request field as the client spelled it; nested ones are paths
    /// such as `lines[2].quantity`.
    pub field: String,
    /// Why it was refused, phrased for the client.
    pub message: String,
}

/// Input that the domain refuses. It always names the offending fields, so
/// clients can fix their request without guessing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationError {
    errors: Vec<FieldError>,
}

impl ValidationError {
    /// Refuses the single field `field` with `message`.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { errors: vec![FieldError { field: field.into(), message: message.into() }] }
    }

    /// The refused fields, in the order the parsers found them.
    pub fn fields(&self) -> &[FieldError] {
        &self.errors
    }

    /// Re-labels every error under `field`; used when a value is parsed
    /// without knowing which request field it came from.
    pub fn at(mut self, field: &str) -> Self {
        for error in &mut self.errors {
            field.clone_into(&mut error.field);
        }
        self
    }

    /// Collects the outcome of one field parse, so a request reports every
    /// bad field at once instead of one per round trip.
    pub fn collect<T>(&mut self, result: Result<T, ValidationError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.errors.extend(error.errors);
                None
            }
        }
    }

    /// `Ok(())` when nothing was collected, the collected errors otherwise.
    pub fn into_result(self) -> Result<(), ValidationError> {
        if self.errors.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let messages: Vec<String> = self.errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
        write!(f, "invalid input ({})", messages.join("; "))
    }
}

impl std::error::Error for ValidationError {}
