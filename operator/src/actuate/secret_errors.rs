//! The errors of writes to Secrets, stripped of what may quote the object.
//!
//! An API server refusing a Secret may say why in words that quote it: a
//! validation message naming an invalid value, a webhook's denial
//! echoing the request, a decoding error quoting the reply. Whatever an
//! [`ActError`] says is logged, published in Events and journaled, where
//! no secret may go (DESIGN §2): only the status code, the reason and the
//! names of the fields at fault are kept.

use kube::core::Status;
use kube::core::response::{StatusCause, StatusDetails};

use super::ActError;

/// What replaces a message withheld.
const WITHHELD: &str = "message withheld: it may quote the Secret";

/// [`super::kube_ops::kube_err`] for a write (create, apply, replace) of a
/// Secret: the error keeps its code and reason, never the text.
pub(super) fn secret_write_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> ActError {
    let what = what.into();
    move |source| ActError::Kube {
        what,
        source: without_data(source),
    }
}

/// `err` without any text that could quote the object written. A
/// transport error (no connection, a timeout) never carries the body and
/// is kept whole; what it is matters to [`ActError::is_retryable`], which
/// reads only the code of an API error.
fn without_data(err: kube::Error) -> kube::Error {
    match err {
        kube::Error::Api(status) => {
            let status = *status;
            kube::Error::Api(Box::new(Status {
                status: status.status,
                code: status.code,
                message: WITHHELD.to_owned(),
                reason: status.reason,
                metadata: None,
                details: status.details.map(|d| StatusDetails {
                    name: d.name,
                    group: d.group,
                    kind: d.kind,
                    uid: d.uid,
                    causes: d
                        .causes
                        .into_iter()
                        .map(|c| StatusCause {
                            reason: c.reason,
                            message: String::new(),
                            field: c.field,
                        })
                        .collect(),
                    retry_after_seconds: d.retry_after_seconds,
                }),
            }))
        }
        // serde's message quotes the value it could not read.
        kube::Error::SerdeError(_) => {
            kube::Error::SerdeError(<serde_json::Error as serde::de::Error>::custom(
                "the reply could not be read (its text withheld: it may quote the Secret)",
            ))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    const DATA: &str = "c3VwZXItc2VjcmV0LXBhc3N3b3Jk";

    fn invalid() -> kube::Error {
        kube::Error::Api(Box::new(Status {
            status: Some(kube::core::response::StatusSummary::Failure),
            code: 422,
            message: format!(
                "Secret \"demo-password\" is invalid: data[password]: Invalid value: \"{DATA}\": a valid secret"
            ),
            reason: "Invalid".to_owned(),
            metadata: None,
            details: Some(StatusDetails {
                name: "demo-password".to_owned(),
                group: String::new(),
                kind: "secrets".to_owned(),
                uid: String::new(),
                causes: vec![StatusCause {
                    reason: "FieldValueInvalid".to_owned(),
                    message: format!("Invalid value: \"{DATA}\""),
                    field: "data[password]".to_owned(),
                }],
                retry_after_seconds: 0,
            }),
        }))
    }

    #[test]
    fn a_refused_secret_write_keeps_code_and_reason_not_the_data() {
        let err = secret_write_err("applying Secret shop/demo-password")(invalid());
        let text = format!("{err} {err:?}");
        assert!(!text.contains(DATA), "{text}");
        assert!(
            text.contains("applying Secret shop/demo-password"),
            "{text}"
        );
        assert!(text.contains("Invalid"), "{text}");
        assert!(text.contains("422"), "{text}");
        assert!(text.contains("data[password]"), "{text}");
        // The same class: a refusal is not retried.
        assert!(!err.is_retryable());
    }

    #[test]
    fn a_conflict_stays_retryable() {
        let conflict = kube::Error::Api(Box::new(Status {
            code: 409,
            message: format!("Operation cannot be fulfilled on secrets: {DATA}"),
            reason: "Conflict".to_owned(),
            ..Status::default()
        }));
        let err = secret_write_err("creating Secret shop/demo-ca")(conflict);
        assert!(err.is_retryable());
        assert!(!format!("{err} {err:?}").contains(DATA));
    }

    #[test]
    fn an_unreadable_reply_is_not_quoted() {
        let serde = serde_json::from_str::<u16>(&format!("\"{DATA}\"")).unwrap_err();
        assert!(
            serde.to_string().contains(DATA),
            "the premise: serde quotes"
        );
        let err = secret_write_err("applying Secret shop/demo")(kube::Error::SerdeError(serde));
        assert!(!format!("{err} {err:?}").contains(DATA));
    }
}
