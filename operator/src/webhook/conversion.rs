//! What the conversion webhook answers: a `ConversionReview` (the API
//! server's request to turn objects of `valkey.logbook.dev` from one
//! served version into another, `v1alpha1` and `v1beta1`) is answered with
//! every object converted by [`logbook_crds::conversion`], or with a
//! failure naming the object and the field at fault; the API server then
//! refuses the request that needed it, and nothing is stored half
//! converted. Pure: the review in, the answer out.

use logbook_crds::conversion::convert_object;
use serde_json::{Value, json};

/// The answer to one `ConversionReview` (`review`, as the API server sent
/// it, `apiextensions.k8s.io/v1`): the request's uid, and either every
/// object converted (`Success`) or none and the reason (`Failure`).
#[must_use]
pub fn answer(review: &Value) -> Value {
    let request = review.get("request").unwrap_or(&Value::Null);
    let uid = request.get("uid").cloned().unwrap_or(Value::Null);
    let response = match convert(request) {
        Ok(objects) => json!({
            "uid": uid,
            "convertedObjects": objects,
            "result": {"status": "Success"},
        }),
        Err(message) => json!({
            "uid": uid,
            "convertedObjects": [],
            "result": {"status": "Failure", "message": message},
        }),
    };
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "response": response,
    })
}

/// Every object of `request` as its `desiredAPIVersion`, in order.
fn convert(request: &Value) -> Result<Vec<Value>, String> {
    if !request.is_object() {
        return Err("the ConversionReview has no request".to_owned());
    }
    let desired = request
        .get("desiredAPIVersion")
        .and_then(Value::as_str)
        .ok_or("the ConversionReview's request has no desiredAPIVersion")?;
    let objects = request
        .get("objects")
        .and_then(Value::as_array)
        .ok_or("the ConversionReview's request has no objects")?;
    objects
        .iter()
        .map(|object| convert_object(object, desired).map_err(|e| e.to_string()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn review(desired: &str, objects: Value) -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "request": {"uid": "u-1", "desiredAPIVersion": desired, "objects": objects},
        })
    }

    #[test]
    fn every_object_is_converted_in_order() {
        let answer = answer(&review(
            "valkey.logbook.dev/v1beta1",
            json!([
                {"apiVersion": "valkey.logbook.dev/v1alpha1", "kind": "ValkeyCluster",
                 "metadata": {"name": "a"}, "spec": {"image": "valkey/valkey:8.0", "shards": 3}},
                {"apiVersion": "valkey.logbook.dev/v1beta1", "kind": "ValkeyCluster",
                 "metadata": {"name": "b"}, "spec": {"replicas": 3}},
            ]),
        ));
        let response = &answer["response"];
        assert_eq!(response["uid"], "u-1");
        assert_eq!(response["result"]["status"], "Success");
        assert_eq!(
            response["convertedObjects"],
            json!([
                {"apiVersion": "valkey.logbook.dev/v1beta1", "kind": "ValkeyCluster",
                 "metadata": {"name": "a"},
                 "spec": {"image": {"repository": "valkey/valkey", "tag": "8.0"}, "cluster": {"shards": 3}}},
                {"apiVersion": "valkey.logbook.dev/v1beta1", "kind": "ValkeyCluster",
                 "metadata": {"name": "b"}, "spec": {"replicas": 3}},
            ])
        );
    }

    #[test]
    fn one_bad_object_fails_the_review_naming_it() {
        let answer = answer(&review(
            "valkey.logbook.dev/v1alpha1",
            json!([
                {"apiVersion": "valkey.logbook.dev/v1beta1", "kind": "ValkeyCluster",
                 "metadata": {"name": "good"}, "spec": {}},
                {"apiVersion": "valkey.logbook.dev/v1beta1", "kind": "ValkeyCluster",
                 "metadata": {"name": "bad"}, "spec": {"cluster": 3}},
            ]),
        ));
        let response = &answer["response"];
        assert_eq!(response["uid"], "u-1");
        assert_eq!(response["result"]["status"], "Failure");
        assert_eq!(
            response["result"]["message"],
            "ValkeyCluster bad: spec.cluster must be an object"
        );
        assert_eq!(response["convertedObjects"], json!([]));
    }

    #[test]
    fn a_review_without_a_request_fails_saying_so() {
        let empty = answer(&json!({"kind": "ConversionReview"}));
        assert_eq!(empty["response"]["result"]["status"], "Failure");
        assert_eq!(
            empty["response"]["result"]["message"],
            "the ConversionReview has no request"
        );
        let unknown = answer(&review(
            "valkey.logbook.dev/v3",
            json!([{"apiVersion": "valkey.logbook.dev/v1beta1", "kind": "ValkeyCluster",
                    "metadata": {"name": "x"}}]),
        ));
        assert!(
            unknown["response"]["result"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("valkey.logbook.dev/v3 is not a version"),
            "{unknown}"
        );
    }
}
