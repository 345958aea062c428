//! The Pub/Sub part of a `gcp` run's preflight: which of the permissions the run needs on its topics and
//! subscription this identity lacks, asked with Pub/Sub's `testIamPermissions` (the IAM mixin, called through the
//! official client's `SchemaService`, which takes any topic or subscription as its resource) before anything is
//! published.
//!
//! Only `gcp`: emulators have no IAM. A resource that does not exist (`NOT_FOUND`) is left to the existence checks
//! that follow (or to its creation). Creating topics and subscriptions needs `pubsub.topics.create` and
//! `pubsub.subscriptions.create` on the project, which Pub/Sub's own `testIamPermissions` cannot ask (its resources
//! are topics, subscriptions, snapshots and schemas): [`missing_on_project`] asks Resource Manager's
//! `projects.testIamPermissions` for those.

use super::code_of;
use google_cloud_gax::error::rpc::Code;

/// One resource and the permissions the run needs on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// `projects/P/topics/T` or `projects/P/subscriptions/S`.
    pub resource: String,
    pub permissions: Vec<&'static str>,
    /// The run does not create it, so its absence (`NOT_FOUND`) is itself something missing.
    pub must_exist: bool,
}

/// What a run needs (Pub/Sub access control, "Permissions and roles"): `pubsub.topics.publish` on each stream's
/// topic; when it only checks that they exist (`check` true: it creates nothing) also `pubsub.topics.get` on them
/// and on the `results_topic` (the existence check reads each topic: roles/pubsub.viewer has it), and the
/// subscription must exist; `pubsub.subscriptions.consume` on its own `subscription` of the results topic.
pub fn needs(
    project: &str,
    topics: &[String],
    results_topic: &str,
    subscription: &str,
    check: bool,
) -> Vec<Need> {
    let mut out: Vec<Need> = topics
        .iter()
        .map(|t| Need {
            resource: format!("projects/{project}/topics/{t}"),
            permissions: if check {
                vec!["pubsub.topics.publish", "pubsub.topics.get"]
            } else {
                vec!["pubsub.topics.publish"]
            },
            must_exist: false,
        })
        .collect();
    out.dedup();
    if check {
        out.push(Need {
            resource: format!("projects/{project}/topics/{results_topic}"),
            permissions: vec!["pubsub.topics.get"],
            must_exist: false,
        });
    }
    out.push(Need {
        resource: format!("projects/{project}/subscriptions/{subscription}"),
        permissions: vec!["pubsub.subscriptions.consume"],
        must_exist: check,
    });
    out
}

/// Asks Pub/Sub, resource by resource, and returns what is not granted (`pubsub.topics.publish on
/// projects/P/topics/T`). `endpoint`: Pub/Sub's REST API elsewhere (a loopback stand-in in tests, called
/// without credentials); `None` is Pub/Sub itself with Application Default Credentials. Errors: a call that failed
/// for another reason than a missing resource (the caller warns and goes on).
pub async fn missing(needs: &[Need], endpoint: Option<&str>) -> Result<Vec<String>, String> {
    let mut b = google_cloud_pubsub::client::SchemaService::builder();
    if let Some(e) = endpoint {
        b = b.with_endpoint(e).with_credentials(super::anonymous());
    }
    let client = b.build().await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for n in needs {
        let granted = match client
            .test_iam_permissions()
            .set_resource(n.resource.clone())
            .set_permissions(n.permissions.iter().map(|p| p.to_string()))
            .send()
            .await
        {
            Ok(r) => r.permissions,
            Err(e) if code_of(&e) == Some(Code::NotFound) => {
                if n.must_exist {
                    out.push(format!(
                        "{}: does not exist (a gcp run creates nothing: gcloud pubsub subscriptions create …)",
                        n.resource
                    ));
                }
                continue;
            }
            Err(e) => return Err(format!("testIamPermissions on {}: {e}", n.resource)),
        };
        out.extend(
            n.permissions
                .iter()
                .filter(|p| !granted.iter().any(|g| g == *p))
                .map(|p| format!("{p} on {}", n.resource)),
        );
    }
    Ok(out)
}

/// What creating the run's topics and subscriptions needs on the project (Pub/Sub access control).
pub const CREATE: [&str; 2] = ["pubsub.topics.create", "pubsub.subscriptions.create"];

/// Asks Resource Manager's `projects.testIamPermissions` on `projects/{project}` which of `permissions` this
/// identity lacks (`pubsub.topics.create on projects/P`). `endpoint`: the API elsewhere (a loopback stand-in in
/// tests, without credentials). Errors: the call failed (the caller warns and goes on).
pub async fn missing_on_project(
    project: &str,
    permissions: &[&str],
    endpoint: Option<&str>,
) -> Result<Vec<String>, String> {
    let mut b = google_cloud_resourcemanager_v3::client::Projects::builder();
    if let Some(e) = endpoint {
        b = b.with_endpoint(e).with_credentials(super::anonymous());
    }
    let client = b.build().await.map_err(|e| e.to_string())?;
    let resource = format!("projects/{project}");
    let granted = client
        .test_iam_permissions()
        .set_resource(resource.clone())
        .set_permissions(permissions.iter().map(|p| p.to_string()))
        .send()
        .await
        .map_err(|e| format!("projects.testIamPermissions on {resource}: {e}"))?
        .permissions;
    Ok(permissions
        .iter()
        .filter(|p| !granted.iter().any(|g| g == *p))
        .map(|p| format!("{p} on {resource}"))
        .collect())
}
