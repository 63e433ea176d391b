//! The error of every service operation. It travels between actors inside the reply (a
//! JSON `Result`), because waPC errors are bare strings: a 404 must stay a 404 after an
//! actor-to-actor hop, and only the gateway turns it into an HTTP status.
//!
//! A 400 lists every rule the input breaks: the first in `field`/`message` (as before
//! there was a list, so older readers still understand it), the rest in `more`, in the
//! order the checks run (see [`crate::validate`]); [`ServiceError::field_errors`] gives
//! them all.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A failed operation, with enough detail for an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceError {
    /// The input is unacceptable (HTTP 400). `field` names the offending JSON field when
    /// there is one (`lastName`, `type`, ...); `more` holds the other broken rules.
    Invalid {
        /// The offending field of the first broken rule, if the problem is one field.
        field: Option<String>,
        /// What is wrong, for humans (the first broken rule).
        message: String,
        /// The other broken rules, in order, after the first one (absent on the wire when
        /// there are none, so a single error is encoded as before).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        more: Vec<FieldError>,
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

/// One broken rule of an input: an entry of the list a 400 carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The offending JSON field or parameter, if the problem is one field.
    pub field: Option<String>,
    /// What is wrong, for humans.
    pub message: String,
}

impl FieldError {
    /// A broken rule of `field`.
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: Some(field.to_string()),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{} (field {field})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The result of a service operation.
pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    /// A 400 naming `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            field: Some(field.to_string()),
            message: message.into(),
            more: Vec::new(),
        }
    }

    /// A 400 about the request as a whole.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            field: None,
            message: message.into(),
            more: Vec::new(),
        }
    }

    /// A 400 listing `errors` in order (the first becomes `field`/`message`), or `None` if
    /// there are none.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Option<Self> {
        let mut errors = errors.into_iter();
        let first = errors.next()?;
        Some(ServiceError::Invalid {
            field: first.field,
            message: first.message,
            more: errors.collect(),
        })
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

    /// The offending field of a 400 (of its first broken rule), if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ServiceError::Invalid { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// Every broken rule of a 400, in order: the first is [`Self::field`] and
    /// [`Self::message`]. Empty for the other errors.
    pub fn field_errors(&self) -> Vec<FieldError> {
        match self {
            ServiceError::Invalid {
                field,
                message,
                more,
            } => {
                let first = FieldError {
                    field: field.clone(),
                    message: message.clone(),
                };
                std::iter::once(first).chain(more.iter().cloned()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// This error followed by `other`: two 400s become one listing the broken rules of
    /// `self`, then those of `other`; otherwise `self` (the first error wins).
    pub fn and(self, other: ServiceError) -> ServiceError {
        match (&self, &other) {
            (ServiceError::Invalid { .. }, ServiceError::Invalid { .. }) => {
                let mut errors = self.field_errors();
                errors.extend(other.field_errors());
                ServiceError::invalid_fields(errors).unwrap_or(self)
            }
            _ => self,
        }
    }
}

/// Both values, or the error of each that failed, combined with [`ServiceError::and`]
/// (`a`'s first): checks that do not depend on each other report their 400s together.
pub fn both<A, B>(a: ServiceResult<A>, b: ServiceResult<B>) -> ServiceResult<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(a), Err(b)) => Err(a.and(b)),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
    }
}

impl fmt::Display for ServiceError {
    /// The message with its field; a 400 shows every broken rule, separated by `; `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::Invalid { .. } => {
                for (i, e) in self.field_errors().iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            _ => f.write_str(self.message()),
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
    fn a_400_lists_every_broken_rule_in_order() {
        assert_eq!(ServiceError::invalid_fields(Vec::new()), None);
        let e = ServiceError::invalid_fields(vec![
            FieldError::new("firstName", "firstName must not be blank"),
            FieldError::new("telephone", "telephone must be 1 to 12 digits"),
        ])
        .unwrap();
        assert_eq!(e.status(), 400);
        assert_eq!(e.field(), Some("firstName"));
        assert_eq!(e.message(), "firstName must not be blank");
        let fields: Vec<_> = e.field_errors().into_iter().map(|f| f.field).collect();
        assert_eq!(
            fields,
            [Some("firstName".to_string()), Some("telephone".to_string())]
        );
        assert_eq!(
            e.to_string(),
            "firstName must not be blank (field firstName); \
             telephone must be 1 to 12 digits (field telephone)"
        );
        // A single error is a list of one; other errors have none.
        assert_eq!(
            ServiceError::invalid("city", "bad").field_errors(),
            [FieldError::new("city", "bad")]
        );
        let whole = ServiceError::invalid_request("not an object").field_errors();
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].field, None);
        assert_eq!(ServiceError::not_found("x").field_errors(), []);
    }

    #[test]
    fn errors_combine_400s_in_order_and_otherwise_the_first_wins() {
        let a = ServiceError::invalid("name", "taken");
        let b = ServiceError::invalid("type", "unknown");
        let ab = a.clone().and(b.clone());
        assert_eq!(ab.field(), Some("name"));
        assert_eq!(
            ab.field_errors(),
            [
                FieldError::new("name", "taken"),
                FieldError::new("type", "unknown")
            ]
        );
        let gone = ServiceError::unavailable("kv down");
        assert_eq!(gone.clone().and(a.clone()), gone);
        assert_eq!(a.clone().and(gone.clone()), a);
        assert_eq!(both::<(), ()>(Err(a.clone()), Err(b.clone())), Err(ab));
        assert_eq!(both::<(), u8>(Ok(()), Err(b.clone())), Err(b));
        assert_eq!(both::<u8, ()>(Err(a.clone()), Ok(())), Err(a));
        assert_eq!(both::<u8, u8>(Ok(1), Ok(2)), Ok((1, 2)));
    }

    #[test]
    fn every_broken_rule_survives_the_hop() {
        let e = ServiceError::invalid("name", "taken").and(ServiceError::invalid("type", "no"));
        let err: ServiceResult<()> = Err(e.clone());
        let bytes = encode_json(&err).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"Err":{"Invalid":{"field":"name","message":"taken","more":[{"field":"type","message":"no"}]}}}"#
        );
        let back: ServiceResult<u32> = decode_json("reply", &bytes).unwrap();
        assert_eq!(back, Err(e));
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
