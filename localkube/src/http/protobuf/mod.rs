//! Request bodies in `application/vnd.kubernetes.protobuf`, which kubectl's
//! typed clients send (`kubectl create token`, `kubectl auth can-i`,
//! `kubectl create serviceaccount|configmap|secret|namespace|role|
//! rolebinding|clusterrole|clusterrolebinding`): the `k8s\0` envelope
//! holding a `runtime.Unknown`, whose raw message is decoded into the JSON
//! the rest of the server handles, by the field tables of `schemas`.
//! Decoding only: answers stay JSON, which clients accept. Kinds without a
//! table are refused with 415, as a real server refuses protobuf for
//! custom resources.

mod schemas;
mod wire;

use base64::Engine;
use serde_json::{Map, Value, json};

use schemas::{Field, Message};
use wire::Reader;

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The body lacks the `k8s\0` prefix of Kubernetes protobuf.
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    NoEnvelope,
    /// The bytes end inside a field.
    #[error("unexpected EOF in a protobuf message")]
    Truncated,
    /// A varint runs over 10 bytes.
    #[error("protobuf: integer overflow in a varint")]
    Overflow,
    /// A wire type this decoder does not know (3, 4: groups; 6, 7).
    #[error("protobuf: illegal wire type {0}")]
    WireType(u64),
    /// A string field holds invalid UTF-8.
    #[error("protobuf: field {field} is not valid UTF-8")]
    NotUtf8 {
        /// The JSON name of the field.
        field: &'static str,
    },
    /// The envelope names a kind this server has no table for.
    #[error(
        "the body of the request was in an unknown format - localkube decodes application/vnd.kubernetes.protobuf only for {supported}; send {api_version} {kind} as application/json"
    )]
    UnknownKind {
        /// `apiVersion` of the envelope.
        api_version: String,
        /// `kind` of the envelope.
        kind: String,
        /// The kinds it can decode.
        supported: String,
    },
}

/// The JSON object a Kubernetes protobuf body carries, with its
/// `apiVersion` and `kind`.
///
/// # Errors
/// [`ProtobufError`] for a malformed body or a kind without a table.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let rest = body
        .strip_prefix(b"k8s\0".as_slice())
        .ok_or(ProtobufError::NoEnvelope)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    let mut r = Reader::new(rest);
    while let Some((field, wt)) = r.key()? {
        match (field, wt) {
            (1, 2) => {
                let mut tm = Reader::new(r.bytes()?);
                while let Some((f, w)) = tm.key()? {
                    match (f, w) {
                        (1, 2) => api_version = utf8(tm.bytes()?, "apiVersion")?,
                        (2, 2) => kind = utf8(tm.bytes()?, "kind")?,
                        _ => tm.skip(w)?,
                    }
                }
            }
            (2, 2) => raw = r.bytes()?,
            _ => r.skip(wt)?,
        }
    }
    let Some(schema) = schemas::lookup(&api_version, &kind) else {
        return Err(ProtobufError::UnknownKind {
            api_version,
            kind,
            supported: schemas::supported(),
        });
    };
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!(kind));
    out.extend(message(raw, schema)?);
    Ok(Value::Object(out))
}

fn utf8(b: &[u8], field: &'static str) -> Result<String, ProtobufError> {
    String::from_utf8(b.to_vec()).map_err(|_| ProtobufError::NotUtf8 { field })
}

fn base64(b: &[u8]) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(b))
}

/// Decodes one message by its table. Singular strings and messages left
/// empty are omitted (`omitempty`, and an unset optional); repeated
/// strings keep empty entries (`apiGroups: [""]` is the core group).
fn message(b: &[u8], schema: &Message) -> Result<Map<String, Value>, ProtobufError> {
    let mut out = Map::new();
    let mut r = Reader::new(b);
    while let Some((number, wt)) = r.key()? {
        let Some((name, field)) = schema
            .iter()
            .find(|(n, _, _)| *n == number)
            .map(|(_, name, f)| (*name, f))
        else {
            r.skip(wt)?;
            continue;
        };
        match field {
            Field::Skip => r.skip(wt)?,
            Field::Str => {
                let s = utf8(r.bytes()?, name)?;
                if !s.is_empty() {
                    out.insert(name.into(), json!(s));
                }
            }
            // int64 fields travel as the two's complement varint.
            Field::Int => {
                out.insert(name.into(), json!(r.varint()?.cast_signed()));
            }
            Field::Bool => {
                out.insert(name.into(), json!(r.varint()? != 0));
            }
            Field::Msg(inner) => {
                let m = message(r.bytes()?, inner)?;
                if !m.is_empty() {
                    out.insert(name.into(), Value::Object(m));
                }
            }
            Field::Time => {
                if let Some(t) = time(r.bytes()?)? {
                    out.insert(name.into(), json!(t));
                }
            }
            Field::Strs => {
                let s = utf8(r.bytes()?, name)?;
                push(&mut out, name, json!(s));
            }
            Field::Msgs(inner) => {
                let m = message(r.bytes()?, inner)?;
                push(&mut out, name, Value::Object(m));
            }
            Field::MapStr | Field::MapBytes => {
                let (k, v) = entry(r.bytes()?, name, matches!(field, Field::MapBytes))?;
                let map = out.entry(name).or_insert_with(|| json!({}));
                if let Some(m) = map.as_object_mut() {
                    m.insert(k, v);
                }
            }
        }
    }
    Ok(out)
}

fn push(out: &mut Map<String, Value>, name: &str, v: Value) {
    let list = out.entry(name).or_insert_with(|| json!([]));
    if let Some(a) = list.as_array_mut() {
        a.push(v);
    }
}

/// A map entry: key 1, value 2.
fn entry(b: &[u8], name: &'static str, bytes: bool) -> Result<(String, Value), ProtobufError> {
    let (mut k, mut v) = (String::new(), if bytes { base64(&[]) } else { json!("") });
    let mut r = Reader::new(b);
    while let Some((f, w)) = r.key()? {
        match (f, w) {
            (1, 2) => k = utf8(r.bytes()?, name)?,
            (2, 2) if bytes => v = base64(r.bytes()?),
            (2, 2) => v = json!(utf8(r.bytes()?, name)?),
            _ => r.skip(w)?,
        }
    }
    Ok((k, v))
}

/// A `metav1.Time` (seconds 1, nanos 2) as RFC 3339; None when unset.
fn time(b: &[u8]) -> Result<Option<String>, ProtobufError> {
    let mut seconds = 0i64;
    let mut r = Reader::new(b);
    while let Some((f, w)) = r.key()? {
        match (f, w) {
            (1, 0) => seconds = r.varint()?.cast_signed(),
            _ => r.skip(w)?,
        }
    }
    if seconds == 0 {
        return Ok(None);
    }
    Ok(chrono::DateTime::from_timestamp(seconds, 0).map(crate::names::timestamp))
}

#[cfg(test)]
mod tests;
