//! The error of every service operation. It travels between actors inside the reply (a
//! JSON `Result`), because waPC errors are bare strings: a 404 must stay a 404 after an
//! actor-to-actor hop, and only the gateway turns it into an HTTP status.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A failed operation, with enough detail for an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceError {
    /// The input is unacceptable (HTTP 400). `field` names the offending JSON field when
    /// there is one (`lastName`, `type`, ...).
    Invalid {
        /// The offending field, if the problem is one field.
        field: Option<String>,
        /// What is wrong, for humans.
        message: String,
    },
    /// The addressed owner, pet, ... does not exist (HTTP 404).
    NotFound {
        /// What was not found, for humans (`owner 99 not found`).
        message: String,
    },
    /// A capability or another actor could not be reached (HTTP 503): retrying may help.
    Unavailable {
        /// Which call failed and why.
        message: String,
    },
    /// Stored data or a reply could not be read (HTTP 500): a bug or foreign data.
    Internal {
        /// What could not be read.
        message: String,
    },
}

/// The result of a service operation.
pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    /// A 400 naming `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    /// A 400 about the request as a whole.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            field: None,
            message: message.into(),
        }
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        ServiceError::NotFound {
            message: message.into(),
        }
    }

    /// A 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ServiceError::Unavailable {
            message: message.into(),
        }
    }

    /// A 500.
    pub fn internal(message: impl Into<String>) -> Self {
        ServiceError::Internal {
            message: message.into(),
        }
    }

    /// The HTTP status code the gateway answers with.
    pub fn status(&self) -> u16 {
        match self {
            ServiceError::Invalid { .. } => 400,
            ServiceError::NotFound { .. } => 404,
            ServiceError::Unavailable { .. } => 503,
            ServiceError::Internal { .. } => 500,
        }
    }

    /// The human-readable text.
    pub fn message(&self) -> &str {
        match self {
            ServiceError::Invalid { message, .. }
            | ServiceError::NotFound { message }
            | ServiceError::Unavailable { message }
            | ServiceError::Internal { message } => message,
        }
    }

    /// The offending field of a 400, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ServiceError::Invalid { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field() {
            Some(field) => write!(f, "{} (field {field})", self.message()),
            None => f.write_str(self.message()),
        }
    }
}

impl std::error::Error for ServiceError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_json, encode_json};

    #[test]
    fn statuses() {
        assert_eq!(ServiceError::invalid("lastName", "x").status(), 400);
        assert_eq!(ServiceError::invalid_request("x").status(), 400);
        assert_eq!(ServiceError::not_found("x").status(), 404);
        assert_eq!(ServiceError::unavailable("x").status(), 503);
        assert_eq!(ServiceError::internal("x").status(), 500);
    }

    #[test]
    fn display_names_the_field() {
        let e = ServiceError::invalid("lastName", "lastName is required");
        assert_eq!(e.to_string(), "lastName is required (field lastName)");
        assert_eq!(e.field(), Some("lastName"));
        assert_eq!(ServiceError::not_found("owner 9 not found").field(), None);
    }

    #[test]
    fn results_survive_the_hop_for_any_ok_type() {
        // An error reply encoded as Result<(), _> decodes as Result<T, _> for any T: actors
        // rely on this when a request fails before its handler runs (seeding).
        let err: ServiceResult<()> = Err(ServiceError::invalid("telephone", "bad"));
        let bytes = encode_json(&err).unwrap();
        assert_eq!(
            bytes,
            br#"{"Err":{"Invalid":{"field":"telephone","message":"bad"}}}"#
        );
        let back: ServiceResult<Vec<String>> = decode_json("reply", &bytes).unwrap();
        assert_eq!(back, Err(ServiceError::invalid("telephone", "bad")));
        let ok: ServiceResult<u32> = Ok(7);
        let back: ServiceResult<u32> = decode_json("reply", &encode_json(&ok).unwrap()).unwrap();
        assert_eq!(back, Ok(7));
    }
}
