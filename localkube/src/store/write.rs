//! Create and update, as the real server's registry does them: metadata
//! the server owns (uid, creationTimestamp, generation, resourceVersion),
//! optimistic concurrency, status-subresource separation, finalizers on
//! deleting objects, no-op detection, and managed fields.

use serde_json::{Value, json};

use super::{Inner, StoreConfig, kinds};
use crate::error::{ApiError, Subject, cause};
use crate::names;
use crate::obj;
use crate::patch::managed::{self, Writer};
use crate::registry::ResourceInfo;

/// `fieldValidation`: what to do with fields a custom resource's schema
/// does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Refuse the write (400).
    Strict,
    /// Drop them and warn (the default).
    #[default]
    Warn,
    /// Drop them silently.
    Ignore,
}

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    /// The object (its status is kept from the stored one when the kind
    /// has a status subresource).
    Main,
    /// `/status`: only the status changes.
    Status,
    /// `/scale`: the replicas were set through the Scale.
    Scale,
}

impl Sub {
    fn name(self) -> Option<&'static str> {
        match self {
            Self::Main => None,
            Self::Status => Some("status"),
            Self::Scale => Some("scale"),
        }
    }
}

/// How a write is made.
#[derive(Debug, Clone)]
pub struct WriteCtx {
    /// `dryRun=All`: full processing, nothing stored.
    pub dry_run: bool,
    /// The field manager.
    pub manager: String,
    /// Unknown-field handling for custom resources.
    pub field_validation: FieldValidation,
    /// The time of the write (RFC 3339).
    pub now: String,
    /// The version the request was made at, whose schema validates a
    /// custom resource (`None`: the stored version's).
    pub version: Option<String>,
    /// An update's object as stored, converted to the version it is now
    /// written at, when it was stored at another (a CRD that changed its
    /// storage version): what its `generation` is judged against, as the
    /// real server compares the spec in one version. A rewrite that
    /// changes only the version stored (a storage migration) keeps it.
    pub old_converted: Option<Value>,
}

impl WriteCtx {
    /// A write by a component of the server itself.
    pub fn internal(manager: &str) -> Self {
        Self {
            dry_run: false,
            manager: manager.to_owned(),
            field_validation: FieldValidation::Ignore,
            now: names::now(),
            version: None,
            old_converted: None,
        }
    }
}

/// The result of a write.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The object as stored (or as it would be, on a dry run).
    pub object: Value,
    /// `Warning` headers to send.
    pub warnings: Vec<String>,
    /// Whether the write created the object.
    pub created: bool,
}

fn writer<'a>(ctx: &'a WriteCtx, api_version: &'a str, sub: Sub) -> Writer<'a> {
    Writer {
        manager: &ctx.manager,
        api_version,
        now: &ctx.now,
        subresource: sub.name(),
    }
}

fn set_type(res: &ResourceInfo, o: &mut Value) {
    if let Value::Object(m) = o {
        m.insert("apiVersion".into(), json!(res.storage_api_version()));
        m.insert("kind".into(), json!(res.kind));
    }
}

fn invalid(res: &ResourceInfo, name: &str, causes: Vec<crate::schema::Cause>) -> ApiError {
    ApiError::Invalid {
        kind: res.kind.clone(),
        group: res.group.clone(),
        name: name.to_owned(),
        causes,
    }
}

impl Inner {
    /// Creates `body` as `res` in `namespace` ("" for cluster-scoped).
    /// `managed_done`: managed fields were already set (server-side apply).
    pub(crate) fn create(
        &mut self,
        cfg: &StoreConfig,
        ctx: &WriteCtx,
        res: &ResourceInfo,
        namespace: &str,
        mut body: Value,
        managed_done: bool,
    ) -> Result<Outcome, ApiError> {
        let _ = cfg;
        if !body.is_object() {
            return Err(ApiError::BadRequest(
                "the request body must be an object".into(),
            ));
        }
        let ns = if res.namespaced { namespace } else { "" };
        let body_ns = obj::namespace(&body);
        if res.namespaced && !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
        let generate = obj::meta_str(&body, "generateName").map(str::to_owned);
        let given = obj::name(&body).to_owned();
        if res.namespaced {
            self.check_namespace_open(res, ns, &given)?;
        }
        if given.is_empty() && generate.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(
                res,
                "",
                vec![cause(
                    "FieldValueRequired",
                    "Required value: name or generateName is required",
                    "metadata.name",
                )],
            ));
        }
        set_type(res, &mut body);
        {
            let m = obj::meta_mut(&mut body);
            for f in [
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "resourceVersion",
                "selfLink",
            ] {
                m.remove(f);
            }
            if res.namespaced {
                m.insert("namespace".into(), json!(ns));
            } else {
                m.remove("namespace");
            }
            m.insert("uid".into(), json!(names::new_uid()));
            m.insert("creationTimestamp".into(), json!(ctx.now));
            m.insert("generation".into(), json!(1));
        }
        if res.has_status() {
            obj::set_field(&mut body, "status", None);
        }
        // Names are final before kind hooks run (namespaces label themselves).
        let mut attempt = 0u32;
        loop {
            let name = match &generate {
                Some(g) if given.is_empty() => format!("{g}{}", names::random_suffix()),
                _ => given.clone(),
            };
            let causes = names::validate_name(&name, res.name_rule);
            if !causes.is_empty() {
                return Err(invalid(res, &name, causes));
            }
            let key = super::key(res, ns, &name);
            if self.objects.contains_key(&key) {
                attempt += 1;
                if given.is_empty() && attempt < 8 {
                    continue;
                }
                return Err(ApiError::AlreadyExists(Subject::new(
                    &res.group,
                    &res.plural,
                    &name,
                )));
            }
            obj::meta_mut(&mut body).insert("name".into(), json!(name));
            kinds::on_create(self, res, &mut body, ctx)?;
            let warnings = kinds::admit_custom(res, ctx, &mut body, None)?;
            if !managed_done {
                let av = res.storage_api_version();
                managed::record_update(
                    None,
                    &mut body,
                    &writer(ctx, &av, Sub::Main),
                    res.list_types(),
                );
            }
            if ctx.dry_run {
                return Ok(Outcome {
                    object: body,
                    warnings,
                    created: true,
                });
            }
            let stored = self.put(key, body)?;
            kinds::after_write(self, res, &stored);
            return Ok(Outcome {
                object: (*stored).clone(),
                warnings,
                created: true,
            });
        }
    }

    fn check_namespace_open(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        let nskey = (
            String::new(),
            "namespaces".to_owned(),
            String::new(),
            ns.to_owned(),
        );
        match self.get(&nskey) {
            None => Err(ApiError::NotFound(Subject::new("", "namespaces", ns))),
            Some(n) if obj::is_deleting(&n) => Err(ApiError::Forbidden {
                message: format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    Subject::new(&res.group, &res.plural, name).qualified()
                ),
                subject: Subject::new(&res.group, &res.plural, name),
            }),
            Some(_) => Ok(()),
        }
    }

    /// Replaces the object `name` with `body` (PUT, and every patch once
    /// computed). A `metadata.resourceVersion` in `body` is a precondition.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn replace(
        &mut self,
        cfg: &StoreConfig,
        ctx: &WriteCtx,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        body: Value,
        sub: Sub,
        managed_done: bool,
    ) -> Result<Outcome, ApiError> {
        let subject = Subject::new(&res.group, &res.plural, name);
        if !body.is_object() {
            return Err(ApiError::BadRequest(
                "the request body must be an object".into(),
            ));
        }
        let body_name = obj::name(&body);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let body_ns = obj::namespace(&body);
        if res.namespaced && !body_ns.is_empty() && body_ns != namespace {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
        let key = super::key(res, namespace, name);
        let Some(old) = self.get(&key) else {
            return Err(ApiError::NotFound(subject));
        };
        let want_rv = obj::resource_version(&body);
        if !want_rv.is_empty() && want_rv != obj::resource_version(&old) {
            if want_rv.parse::<u64>().is_err() {
                return Err(ApiError::BadRequest(format!(
                    "metadata.resourceVersion: Invalid value: \"{want_rv}\": must be a number"
                )));
            }
            return Err(ApiError::stale(subject));
        }
        let mut new = match sub {
            Sub::Main | Sub::Scale => {
                let mut n = body;
                if res.has_status() {
                    obj::set_field(&mut n, "status", old.get("status").cloned());
                }
                n
            }
            Sub::Status => {
                let mut n = (*old).clone();
                obj::set_field(&mut n, "status", body.get("status").cloned());
                if managed_done
                    && let Some(mf) = body.get("metadata").and_then(|m| m.get("managedFields"))
                {
                    obj::meta_mut(&mut n).insert("managedFields".into(), mf.clone());
                }
                n
            }
        };
        set_type(res, &mut new);
        {
            let old_meta = obj::object_or_empty(old.get("metadata"));
            let m = obj::meta_mut(&mut new);
            for f in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "name",
                "namespace",
            ] {
                match old_meta.get(f) {
                    Some(v) => m.insert(f.to_owned(), v.clone()),
                    None => m.remove(f),
                };
            }
            m.remove("selfLink");
            if !m.contains_key("managedFields")
                && let Some(mf) = old_meta.get("managedFields")
            {
                m.insert("managedFields".into(), mf.clone());
            }
        }
        if obj::is_deleting(&old) {
            let before = obj::finalizers(&old);
            let added: Vec<String> = obj::finalizers(&new)
                .into_iter()
                .filter(|f| !before.contains(f))
                .collect();
            if !added.is_empty() {
                let list = added
                    .iter()
                    .map(|f| format!("\"{f}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(invalid(
                    res,
                    name,
                    vec![cause(
                        "FieldValueForbidden",
                        format!(
                            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{list}}}"
                        ),
                        "metadata.finalizers",
                    )],
                ));
            }
        }
        kinds::on_update(self, res, &old, &mut new, ctx)?;
        let warnings = kinds::admit_custom(res, ctx, &mut new, Some(&old))?;
        let judged = ctx
            .old_converted
            .as_ref()
            .filter(|c| obj::resource_version(c) == obj::resource_version(&old))
            .unwrap_or(&old);
        if obj::body_without(&new, res.has_status()) != obj::body_without(judged, res.has_status())
        {
            let g = old
                .get("metadata")
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            obj::meta_mut(&mut new).insert("generation".into(), json!(g.saturating_add(1)));
        }
        if obj::comparable(&new) == obj::comparable(&old) {
            return Ok(Outcome {
                object: (*old).clone(),
                warnings,
                created: false,
            });
        }
        if !managed_done {
            let av = res.storage_api_version();
            managed::record_update(
                Some(&old),
                &mut new,
                &writer(ctx, &av, sub),
                res.list_types(),
            );
        }
        if obj::is_deleting(&new) && obj::finalizers(&new).is_empty() && grace_over(&new) {
            if ctx.dry_run {
                return Ok(Outcome {
                    object: new,
                    warnings,
                    created: false,
                });
            }
            let last = self.finish_delete(cfg, res, &key)?;
            return Ok(Outcome {
                object: last,
                warnings,
                created: false,
            });
        }
        if ctx.dry_run {
            return Ok(Outcome {
                object: new,
                warnings,
                created: false,
            });
        }
        let stored = self.put(key, new)?;
        kinds::after_write(self, res, &stored);
        Ok(Outcome {
            object: (*stored).clone(),
            warnings,
            created: false,
        })
    }
}

/// Whether a deleting object's grace period is over (a graceful pod waits
/// for its kubelet, which deletes it with a zero grace period).
pub(crate) fn grace_over(o: &Value) -> bool {
    o.get("metadata")
        .and_then(|m| m.get("deletionGracePeriodSeconds"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
        <= 0
}
