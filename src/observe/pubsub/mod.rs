//! Real Pub/Sub, through Google's official `google-cloud-pubsub` crate: connections to the emulator (ours or
//! Google's, by `PUBSUB_EMULATOR_HOST`) or to GCP with Application Default Credentials; topic and subscription
//! set-up through the admin clients; the completion tracker; the backlog samplers; the IAM preflight; the worker
//! contract. The publishing target that uses these is `run::publisher`.

pub mod backlog;
pub mod contract;
pub mod iam;
pub mod tracker;

use google_cloud_gax::error::rpc::Code;
use google_cloud_pubsub::client::{Publisher, Subscriber, SubscriptionAdmin, TopicAdmin};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PubsubError {
    #[error("cannot create the Pub/Sub {what} client for {endpoint}: {detail}\n    fix: {fix}")]
    Client {
        what: &'static str,
        endpoint: String,
        detail: String,
        fix: String,
    },
    #[error("Pub/Sub {op} `{name}` failed: {detail}\n    fix: {fix}")]
    Admin {
        op: &'static str,
        name: String,
        detail: String,
        fix: String,
    },
}

/// The first wait before a failed publish is tried again; each further wait doubles, with full jitter.
pub const PUBLISH_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// The longest wait between two tries of one publish.
pub const PUBLISH_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Where Pub/Sub is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// An emulator at `http://HOST:PORT`: anonymous credentials, no TLS.
    Emulator(String),
    /// Google Cloud, with Application Default Credentials.
    Gcp,
}

/// A project on an endpoint: how every client here is built.
#[derive(Debug, Clone)]
pub struct Connection {
    pub endpoint: Endpoint,
    pub project: String,
}

impl Connection {
    /// `host:port` (as in `PUBSUB_EMULATOR_HOST`) or a full `http://` URL.
    pub fn emulator(host: &str, project: &str) -> Self {
        let url = if host.starts_with("http://") || host.starts_with("https://") {
            host.trim_end_matches('/').to_string()
        } else {
            format!("http://{host}")
        };
        Connection {
            endpoint: Endpoint::Emulator(url),
            project: project.to_string(),
        }
    }

    pub fn gcp(project: &str) -> Self {
        Connection {
            endpoint: Endpoint::Gcp,
            project: project.to_string(),
        }
    }

    pub fn describe(&self) -> String {
        match &self.endpoint {
            Endpoint::Emulator(url) => format!("emulator {url}"),
            Endpoint::Gcp => "Google Cloud Pub/Sub".into(),
        }
    }

    /// A short name becomes `projects/{project}/topics/{name}`; a full path is kept.
    pub fn topic_path(&self, topic: &str) -> String {
        if topic.starts_with("projects/") {
            topic.to_string()
        } else {
            format!("projects/{}/topics/{topic}", self.project)
        }
    }

    pub fn subscription_path(&self, sub: &str) -> String {
        if sub.starts_with("projects/") {
            sub.to_string()
        } else {
            format!("projects/{}/subscriptions/{sub}", self.project)
        }
    }

    fn client_error(&self, what: &'static str, e: impl std::fmt::Display) -> PubsubError {
        let fix = match &self.endpoint {
            Endpoint::Emulator(_) => {
                "check the emulator address (PUBSUB_EMULATOR_HOST or [target] endpoint)".to_string()
            }
            Endpoint::Gcp => credentials_fix().to_string(),
        };
        PubsubError::Client {
            what,
            endpoint: self.describe(),
            detail: e.to_string(),
            fix,
        }
    }

    /// The official publisher for one topic, batching for throughput: up to 1,000 messages or 1 MB per request,
    /// held at most `delay`.
    ///
    /// Retries inside the client stop at `retry_budget` (`[target] publish_retry_budget`), with the client's own
    /// retryable-error set (`RetryableErrors`: unavailable, internal, resource exhausted, I/O, ...) and truncated
    /// exponential backoff with full jitter from 100 ms to 2 s (`google_cloud_gax::exponential_backoff`). The client's
    /// default would retry for up to 600 s (`google-cloud-pubsub` 1.7, `publisher/retry_policy.rs`) before the
    /// budget even started.
    pub async fn publisher(
        &self,
        topic: &str,
        delay: Duration,
        retry_budget: Duration,
    ) -> Result<Publisher, PubsubError> {
        use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
        use google_cloud_gax::retry_policy::RetryPolicyExt;
        let mut b = Publisher::builder(self.topic_path(topic))
            .set_message_count_threshold(1_000u32)
            .set_byte_threshold(1_000_000u32)
            .set_delay_threshold(delay)
            .with_retry_policy(
                google_cloud_pubsub::retry_policy::RetryableErrors.with_time_limit(retry_budget),
            )
            .with_backoff_policy(
                ExponentialBackoffBuilder::new()
                    .with_initial_delay(PUBLISH_BACKOFF_INITIAL)
                    .with_maximum_delay(PUBLISH_BACKOFF_MAX)
                    .with_scaling(2.0)
                    .clamp(),
            );
        if let Endpoint::Emulator(url) = &self.endpoint {
            b = b.with_endpoint(url).with_credentials(anonymous());
        }
        b.build()
            .await
            .map_err(|e| self.client_error("publisher", e))
    }

    pub async fn subscriber(&self) -> Result<Subscriber, PubsubError> {
        let mut b = Subscriber::builder();
        if let Endpoint::Emulator(url) = &self.endpoint {
            b = b.with_endpoint(url).with_credentials(anonymous());
        }
        b.build()
            .await
            .map_err(|e| self.client_error("subscriber", e))
    }

    async fn topic_admin(&self) -> Result<TopicAdmin, PubsubError> {
        let mut b = TopicAdmin::builder();
        if let Endpoint::Emulator(url) = &self.endpoint {
            b = b.with_endpoint(url).with_credentials(anonymous());
        }
        b.build()
            .await
            .map_err(|e| self.client_error("topic admin", e))
    }

    async fn subscription_admin(&self) -> Result<SubscriptionAdmin, PubsubError> {
        let mut b = SubscriptionAdmin::builder();
        if let Endpoint::Emulator(url) = &self.endpoint {
            b = b.with_endpoint(url).with_credentials(anonymous());
        }
        b.build()
            .await
            .map_err(|e| self.client_error("subscription admin", e))
    }

    fn admin_error(
        &self,
        op: &'static str,
        name: &str,
        e: &google_cloud_pubsub::Error,
    ) -> PubsubError {
        let auth = e.is_authentication() || e.to_string().contains("authentication");
        let fix = if auth || code_of(e) == Some(Code::PermissionDenied) {
            match self.endpoint {
                Endpoint::Gcp => format!(
                    "{}; the account needs roles/pubsub.editor on project {} to create topics and subscriptions",
                    credentials_fix(),
                    self.project
                ),
                Endpoint::Emulator(_) => {
                    "the emulator needs no credentials: check the address".into()
                }
            }
        } else if code_of(e) == Some(Code::NotFound) {
            "create it (pass --create-topics, or `gcloud pubsub topics create`)".into()
        } else {
            match &self.endpoint {
                Endpoint::Emulator(url) => format!("is the emulator running at {url}?"),
                Endpoint::Gcp => "check the project and your network".into(),
            }
        };
        PubsubError::Admin {
            op,
            name: name.to_string(),
            detail: e.to_string(),
            fix,
        }
    }

    /// Creates the topic unless it exists. Returns whether it was created.
    pub async fn ensure_topic(&self, topic: &str) -> Result<bool, PubsubError> {
        let name = self.topic_path(topic);
        let admin = self.topic_admin().await?;
        match admin.create_topic().set_name(&name).send().await {
            Ok(_) => Ok(true),
            Err(e) if code_of(&e) == Some(Code::AlreadyExists) => Ok(false),
            Err(e) => Err(self.admin_error("create topic", &name, &e)),
        }
    }

    /// Creates a pull subscription on `topic` unless it exists. Returns whether it was created.
    pub async fn ensure_subscription(
        &self,
        sub: &str,
        topic: &str,
        ack_deadline_s: i32,
    ) -> Result<bool, PubsubError> {
        let name = self.subscription_path(sub);
        let admin = self.subscription_admin().await?;
        match admin
            .create_subscription()
            .set_name(&name)
            .set_topic(self.topic_path(topic))
            .set_ack_deadline_seconds(ack_deadline_s)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if code_of(&e) == Some(Code::AlreadyExists) => Ok(false),
            Err(e) => Err(self.admin_error("create subscription", &name, &e)),
        }
    }

    /// Checks that a topic exists (without creating it).
    pub async fn check_topic(&self, topic: &str) -> Result<(), PubsubError> {
        let name = self.topic_path(topic);
        let admin = self.topic_admin().await?;
        admin
            .get_topic()
            .set_topic(&name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.admin_error("get topic", &name, &e))
    }
}

/// Credentials that send none: for an emulator, or a local stand-in for a Google API in tests.
pub(crate) fn anonymous() -> google_cloud_auth::credentials::Credentials {
    google_cloud_auth::credentials::anonymous::Builder::new().build()
}

/// The gRPC code of an error, from the status or, for the REST admin clients, the HTTP status.
pub fn code_of(e: &google_cloud_pubsub::Error) -> Option<Code> {
    if let Some(s) = e.status() {
        return Some(s.code);
    }
    match e.http_status_code()? {
        404 => Some(Code::NotFound),
        409 => Some(Code::AlreadyExists),
        403 => Some(Code::PermissionDenied),
        401 => Some(Code::Unauthenticated),
        _ => None,
    }
}

/// What to do when Application Default Credentials are missing or refused.
pub fn credentials_fix() -> &'static str {
    "provide Application Default Credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, \
     run `gcloud auth application-default login`, or run on GCP with a service account (metadata server; on GKE, \
     Workload Identity)"
}

/// How long [`check_token`] waits for a first access token before it says the credentials are unusable.
pub const TOKEN_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Gets a first access token from Application Default Credentials, within [`TOKEN_CHECK_TIMEOUT`]: with no key
/// file and no gcloud login, the credentials fall back to the metadata server, which off GCP does not answer, and
/// the clients would retry for the better part of a minute before saying anything.
pub async fn check_token() -> Result<(), String> {
    let creds = google_cloud_auth::credentials::Builder::default()
        .build()
        .map_err(|e| {
            format!(
                "no Application Default Credentials: {e}\n    fix: {}",
                credentials_fix()
            )
        })?;
    match tokio::time::timeout(TOKEN_CHECK_TIMEOUT, creds.headers(http::Extensions::new())).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "Application Default Credentials gave no access token: {e}\n    fix: {}",
            credentials_fix()
        )),
        Err(_) => Err(format!(
            "Application Default Credentials gave no access token in {}s (no key file or gcloud login was found, \
             and no metadata server answered)\n    fix: {}",
            TOKEN_CHECK_TIMEOUT.as_secs(),
            credentials_fix()
        )),
    }
}

/// Checks up front that Application Default Credentials can be found, so a `gcp` run fails before it starts.
pub fn check_credentials() -> Result<(), String> {
    if let Ok(path) = std::env::var("GOOGLE_APPLICATION_CREDENTIALS")
        && !std::path::Path::new(&path).is_file()
    {
        return Err(format!(
            "GOOGLE_APPLICATION_CREDENTIALS points to {path}, which is not a file\n    fix: {}",
            credentials_fix()
        ));
    }
    google_cloud_auth::credentials::Builder::default()
        .build()
        .map(|_| ())
        .map_err(|e| {
            format!(
                "no Application Default Credentials: {e}\n    fix: {}",
                credentials_fix()
            )
        })
}
