//! `/openapi/v3/apis/{group}/{version}` for custom resources: the paths
//! kubectl inspects (it looks for the `fieldValidation` parameter on the
//! PATCH operation of a path tagged with the kind's GVK to decide whether
//! the server validates fields) and the component schemas `kubectl explain`
//! renders.

use serde_json::{Map, Value, json};

use super::CrdKindSchema;
use super::objectmeta::{META, components, ref_property};

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DOC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DOC: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// PATCH content types of custom resources (no strategic merge patch).
const CUSTOM_PATCH_TYPES: [&str; 4] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
    "application/apply-patch+cbor",
];

/// `valkey.logbook.dev` → `dev.logbook.valkey`, the server's component prefix.
fn reversed_group(group: &str) -> String {
    group.split('.').rev().collect::<Vec<_>>().join(".")
}

fn component_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn query(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "description": description, "required": true, "schema": {"type": "string", "uniqueItems": true}})
}

/// The query parameters of every write.
fn write_params() -> Vec<Value> {
    vec![
        query(
            "dryRun",
            "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
        ),
        query(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
        ),
        query(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
        ),
    ]
}

fn response(schema: &Value) -> Value {
    let content: Map<String, Value> = ["application/json", "application/yaml"]
        .iter()
        .map(|t| ((*t).to_string(), json!({"schema": schema})))
        .collect();
    json!({"description": "OK", "content": content})
}

struct Op<'a> {
    gvk: &'a Value,
    action: &'a str,
    id: String,
    description: String,
    params: Vec<Value>,
    body: Option<Value>,
    ok: Value,
}

fn operation(op: Op<'_>) -> Value {
    let mut out = json!({
        "tags": [op.gvk.get("group").and_then(Value::as_str).unwrap_or_default()],
        "description": op.description,
        "operationId": op.id,
        "parameters": op.params,
        "responses": {"200": response(&op.ok), "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": op.gvk,
    });
    if let (Some(body), Some(obj)) = (op.body, out.as_object_mut()) {
        obj.insert("requestBody".into(), body);
    }
    out
}

fn body(content_types: &[&str], schema: &Value) -> Value {
    let content: Map<String, Value> = content_types
        .iter()
        .map(|t| ((*t).to_string(), json!({"schema": schema})))
        .collect();
    json!({"content": content, "required": true})
}

fn camel(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// What the paths of one kind need: names and scope, not the schema.
struct PathKind<'a> {
    kind: &'a str,
    list_kind: &'a str,
    plural: &'a str,
    namespaced: bool,
}

impl<'a> From<&CrdKindSchema<'a>> for PathKind<'a> {
    fn from(k: &CrdKindSchema<'a>) -> Self {
        Self {
            kind: k.kind,
            list_kind: k.list_kind,
            plural: k.plural,
            namespaced: k.namespaced,
        }
    }
}

/// The URL prefix of a group-version: `/api/v1` for the core group.
fn api_root(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// Adds the collection and item paths of one kind. `patch_types` are the
/// PATCH content types advertised: kubectl computes a client-side apply
/// as a strategic merge patch from this document only when it lists
/// `application/strategic-merge-patch+json`.
fn add_paths(
    paths: &mut Map<String, Value>,
    group: &str,
    version: &str,
    k: &PathKind<'_>,
    prefix: &str,
    patch_types: &[&str],
) {
    let name = format!("{prefix}.{}", k.kind);
    let gvk = json!({"group": group, "version": version, "kind": k.kind});
    let obj = component_ref(&name);
    let list = component_ref(&format!("{prefix}.{}", k.list_kind));
    let status = json!({"$ref": format!("#/components/schemas/{META}.Status")});
    let scope = if k.namespaced { "Namespaced" } else { "" };
    let suffix = format!("{}{}{}", camel(version), scope, k.kind);
    let (base, mut path_params) = if k.namespaced {
        (
            format!(
                "{}/namespaces/{{namespace}}/{}",
                api_root(group, version),
                k.plural
            ),
            vec![path_param(
                "namespace",
                "object name and auth scope, such as for teams and projects",
            )],
        )
    } else {
        (
            format!("{}/{}", api_root(group, version), k.plural),
            Vec::new(),
        )
    };
    path_params.push(query("pretty", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."));
    let write = write_params;
    let collection = json!({
        "get": operation(Op { gvk: &gvk, action: "list", id: format!("list{suffix}"), description: format!("list objects of kind {}", k.kind), params: vec![query("labelSelector", "A selector to restrict the list of returned objects by their labels. Defaults to everything."), query("fieldSelector", "A selector to restrict the list of returned objects by their fields. Defaults to everything."), query("watch", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.")], body: None, ok: list.clone() }),
        "post": operation(Op { gvk: &gvk, action: "post", id: format!("create{suffix}"), description: format!("create a {}", k.kind), params: write(), body: Some(body(&["application/json", "application/yaml"], &obj)), ok: obj.clone() }),
        "delete": operation(Op { gvk: &gvk, action: "deletecollection", id: format!("deletecollection{suffix}"), description: format!("delete collection of {}", k.kind), params: vec![query("dryRun", "When present, indicates that modifications should not be persisted.")], body: None, ok: status.clone() }),
        "parameters": path_params.clone(),
    });
    let mut item_params = vec![path_param("name", &format!("name of the {}", k.kind))];
    item_params.extend(path_params);
    let item = json!({
        "get": operation(Op { gvk: &gvk, action: "get", id: format!("read{suffix}"), description: format!("read the specified {}", k.kind), params: Vec::new(), body: None, ok: obj.clone() }),
        "put": operation(Op { gvk: &gvk, action: "put", id: format!("replace{suffix}"), description: format!("replace the specified {}", k.kind), params: write(), body: Some(body(&["application/json", "application/yaml"], &obj)), ok: obj.clone() }),
        "patch": operation(Op { gvk: &gvk, action: "patch", id: format!("patch{suffix}"), description: format!("partially update the specified {}", k.kind), params: { let mut p = write(); p.push(query("force", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.")); p }, body: Some(body(patch_types, &json!({"$ref": format!("#/components/schemas/{META}.Patch")}))), ok: obj.clone() }),
        "delete": operation(Op { gvk: &gvk, action: "delete", id: format!("delete{suffix}"), description: format!("delete a {}", k.kind), params: vec![query("dryRun", "When present, indicates that modifications should not be persisted.")], body: None, ok: status }),
        "parameters": item_params,
    });
    paths.insert(format!("{base}/{{name}}"), item);
    paths.insert(base, collection);
}

/// The kind's schema as published: the CRD schema with the standard
/// `apiVersion`/`kind`/`metadata` properties and the GVK extension.
fn kind_schema(group: &str, version: &str, k: &CrdKindSchema<'_>) -> Value {
    let mut schema = k.schema.as_object().cloned().unwrap_or_default();
    let mut props = schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    props.insert(
        "apiVersion".into(),
        json!({"type": "string", "description": API_VERSION_DOC}),
    );
    props.insert(
        "kind".into(),
        json!({"type": "string", "description": KIND_DOC}),
    );
    props.insert("metadata".into(), ref_property("ObjectMeta", METADATA_DOC));
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(props));
    schema.insert(
        "x-kubernetes-group-version-kind".into(),
        json!([{"group": group, "kind": k.kind, "version": version}]),
    );
    Value::Object(schema)
}

fn list_schema(group: &str, version: &str, k: &CrdKindSchema<'_>, item: &str) -> Value {
    json!({
        "description": format!("{} is a list of {}", k.list_kind, k.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": API_VERSION_DOC},
            "items": {"type": "array", "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", k.plural), "items": component_ref(item)},
            "kind": {"type": "string", "description": KIND_DOC},
            "metadata": ref_property("ListMeta", LIST_METADATA_DOC),
        },
        "x-kubernetes-group-version-kind": [{"group": group, "kind": k.list_kind, "version": version}],
    })
}

/// The OpenAPI v3 document of one custom group-version.
pub fn openapi_v3_document(group: &str, version: &str, kinds: &[CrdKindSchema<'_>]) -> Value {
    let prefix = format!("{}.{version}", reversed_group(group));
    let mut paths = Map::new();
    let mut schemas = components();
    for k in kinds {
        let name = format!("{prefix}.{}", k.kind);
        add_paths(
            &mut paths,
            group,
            version,
            &k.into(),
            &prefix,
            &CUSTOM_PATCH_TYPES,
        );
        schemas.insert(
            format!("{prefix}.{}", k.list_kind),
            list_schema(group, version, k, &name),
        );
        schemas.insert(name, kind_schema(group, version, k));
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.35.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// What `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}` needs
/// to know of one built-in kind.
#[derive(Debug, Clone)]
pub struct BuiltinKindDoc<'a> {
    /// Kind, e.g. `ConfigMap`.
    pub kind: &'a str,
    /// Plural resource name, e.g. `configmaps`.
    pub plural: &'a str,
    /// Whether namespaced.
    pub namespaced: bool,
}

/// The OpenAPI v3 document of one built-in group-version: the paths and
/// operations of each kind (what kubectl inspects to learn that the server
/// validates fields and supports server-side dry run) with open object
/// schemas — localkube does not carry the built-in types' schemas.
///
/// The PATCH operations deliberately do not advertise strategic merge
/// patch: kubectl then computes its client-side apply patches from its
/// compiled-in types, exactly as it would from the full schemas, instead of
/// from schemas that lack the merge keys.
pub fn openapi_v3_builtin_document(
    group: &str,
    version: &str,
    kinds: &[BuiltinKindDoc<'_>],
) -> Value {
    let prefix = if group.is_empty() {
        format!("io.k8s.api.core.{version}")
    } else {
        let short = group.split('.').next().unwrap_or(group);
        format!("io.k8s.api.{short}.{version}")
    };
    let mut paths = Map::new();
    let mut schemas = components();
    for k in kinds {
        let list_kind = format!("{}List", k.kind);
        let path_kind = PathKind {
            kind: k.kind,
            list_kind: &list_kind,
            plural: k.plural,
            namespaced: k.namespaced,
        };
        add_paths(
            &mut paths,
            group,
            version,
            &path_kind,
            &prefix,
            &CUSTOM_PATCH_TYPES,
        );
        let gvk = json!([{"group": group, "kind": k.kind, "version": version}]);
        schemas.insert(
            format!("{prefix}.{}", k.kind),
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true, "x-kubernetes-group-version-kind": gvk}),
        );
        schemas.insert(
            format!("{prefix}.{list_kind}"),
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                   "x-kubernetes-group-version-kind": [{"group": group, "kind": list_kind, "version": version}]}),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.35.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

#[cfg(test)]
mod builtin_tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn builtin_documents_expose_field_validation_on_patch_but_not_strategic_merge() {
        let doc = openapi_v3_builtin_document(
            "",
            "v1",
            &[BuiltinKindDoc {
                kind: "ConfigMap",
                plural: "configmaps",
                namespaced: true,
            }],
        );
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "", "version": "v1", "kind": "ConfigMap"})
        );
        let params: Vec<&str> = patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(
            params.contains(&"fieldValidation") && params.contains(&"dryRun"),
            "{params:?}"
        );
        let content = patch["requestBody"]["content"].as_object().unwrap();
        assert!(!content.contains_key("application/strategic-merge-patch+json"));
        assert!(content.contains_key("application/apply-patch+yaml"));
        let apps = openapi_v3_builtin_document(
            "apps",
            "v1",
            &[BuiltinKindDoc {
                kind: "StatefulSet",
                plural: "statefulsets",
                namespaced: true,
            }],
        );
        assert!(
            apps["paths"]["/apis/apps/v1/namespaces/{namespace}/statefulsets"]["post"].is_object()
        );
        assert!(apps["components"]["schemas"]["io.k8s.api.apps.v1.StatefulSet"].is_object());
    }
}
