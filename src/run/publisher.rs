//! The publishing target: the pacer's messages go to the official `Publisher` of their topic. A publish that fails
//! is retried with backoff within a time budget, then reported as a publish failure — never dropped. When a topic
//! has vanished (an emulator restarted without its state) and resource creation is on, the resources are
//! created again before the retry.

use crate::observe::pubsub::{Connection, PubsubError, code_of};
use crate::run::runner::{OutMessage, Target};
use google_cloud_gax::error::rpc::Code;
use google_cloud_pubsub::client::Publisher;
use google_cloud_pubsub::model::Message;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// What `--create-topics` sets up: per stream its topic and the workers' subscription, and the results pair.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    /// (topic, subscription on it)
    pub pairs: Vec<(String, String)>,
    pub ack_deadline_s: i32,
}

impl Resources {
    pub async fn ensure(&self, conn: &Connection) -> Result<Vec<String>, PubsubError> {
        let mut created = Vec::new();
        for (topic, sub) in &self.pairs {
            if conn.ensure_topic(topic).await? {
                created.push(conn.topic_path(topic));
            }
            if conn
                .ensure_subscription(sub, topic, self.ack_deadline_s)
                .await?
            {
                created.push(conn.subscription_path(sub));
            }
        }
        Ok(created)
    }
}

/// How many times a re-creation of vanished resources is tried (waits of 0.1 s doubling to 2 s: ~10 s in all).
const RECREATE_ATTEMPTS: u32 = 8;

pub struct PubsubTarget {
    conn: Connection,
    /// The run's id, for the contract's attributes of a message built again for a retry.
    run_id: String,
    publishers: HashMap<String, Publisher>,
    retry_budget: Duration,
    recreate: Option<Resources>,
    last_recreate: Mutex<Option<Instant>>,
}

impl PubsubTarget {
    /// One publisher per topic. `recreate`: resources to create again if a topic disappears mid-run.
    pub async fn new(
        conn: &Connection,
        run_id: &str,
        topics: &[String],
        batch_delay: Duration,
        retry_budget: Duration,
        recreate: Option<Resources>,
    ) -> Result<Self, PubsubError> {
        let mut publishers = HashMap::new();
        for t in topics {
            if !publishers.contains_key(t) {
                publishers.insert(
                    t.clone(),
                    conn.publisher(t, batch_delay, retry_budget).await?,
                );
            }
        }
        Ok(PubsubTarget {
            conn: conn.clone(),
            run_id: run_id.to_string(),
            publishers,
            retry_budget,
            recreate,
            last_recreate: Mutex::new(None),
        })
    }

    /// Sends what the publishers still hold (at the end of a run).
    pub async fn flush(&self) {
        for p in self.publishers.values() {
            p.flush().await;
        }
    }

    async fn recreate(&self) {
        let Some(res) = &self.recreate else { return };
        let mut last = self.last_recreate.lock().await;
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return;
        }
        *last = Some(Instant::now());
        // Until every topic *and* subscription exists: an emulator that is still starting can take the topic and
        // refuse the subscription, and once the topic is back no publish says NotFound again, so a half-done
        // re-creation would leave every later message published into a topic nobody reads.
        let mut wait = crate::observe::pubsub::PUBLISH_BACKOFF_INITIAL;
        for attempt in 1..=RECREATE_ATTEMPTS {
            match res.ensure(&self.conn).await {
                Ok(created) => {
                    if !created.is_empty() {
                        tracing::warn!(
                            "Pub/Sub resources had vanished and were created again: {created:?}"
                        )
                    }
                    return;
                }
                Err(e) if attempt == RECREATE_ATTEMPTS => {
                    tracing::warn!("cannot create the Pub/Sub resources again: {e}")
                }
                Err(_) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(crate::observe::pubsub::PUBLISH_BACKOFF_MAX);
                }
            }
        }
    }
}

impl Target for PubsubTarget {
    /// Queues the message on its topic's publisher at once; the answer is awaited (and retried) by the caller.
    fn send(
        this: &Arc<Self>,
        msg: OutMessage,
    ) -> impl Future<Output = Result<Option<String>, String>> + Send + 'static {
        let this = this.clone();
        let OutMessage {
            id,
            topic,
            payload,
            attributes,
            intended_us,
        } = msg;
        let resend = Resend {
            data: bytes::Bytes::from(payload.into_bytes()),
            own: Resend::own(&attributes),
            id,
            intended_us,
        };
        let mut message = Message::new().set_data(resend.data.clone());
        // Moved in: `set_attributes` would build the map again.
        message.attributes = attributes;
        let first = this.publishers.get(&topic).map(|p| p.publish(message));
        let started = Instant::now();
        async move {
            let Some(first) = first else {
                return Err(format!("no publisher for topic {topic}"));
            };
            match first.await {
                Ok(id) => Ok(Some(id)),
                // Boxed: the retry's state (backoff, re-creating resources) would otherwise make every
                // message's answer future as large as the rarest path.
                Err(e) => Box::pin(this.retry(&topic, resend, e, started)).await,
            }
        }
    }
}

/// What a retry needs to build a message again, kept instead of a copy of it: its data (shared, not copied), its
/// id and intended send, and the stream's own attributes (most streams have none); the contract's attributes are
/// derived again. A copy of every message's attribute map, for the rare retry, was 5 % of a live run's CPU
/// (`perf record` at 50,000/s).
struct Resend {
    data: bytes::Bytes,
    own: Vec<(String, String)>,
    id: crate::event::MsgId,
    intended_us: u64,
}

impl Resend {
    /// The stream's own attributes among a message's (copied; none allocates nothing).
    fn own(attributes: &HashMap<String, String>) -> Vec<(String, String)> {
        use crate::observe::pubsub::contract::is_job_attribute;
        attributes
            .iter()
            .filter(|(k, _)| !is_job_attribute(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The message as first sent.
    fn message(&self, run_id: &str) -> Message {
        let mut attributes = self.own.iter().cloned().collect();
        crate::observe::pubsub::contract::add_job_attributes(
            &mut attributes,
            run_id,
            &self.id,
            self.intended_us,
        );
        let mut message = Message::new().set_data(self.data.clone());
        message.attributes = attributes;
        message
    }
}

impl PubsubTarget {
    /// After a failed publish: the client has already retried transient errors within the budget, so what is left
    /// are errors it does not retry (a vanished topic, re-created here) and failures outside an RPC. These are tried
    /// again with jittered backoff until `started` (the first attempt) is `retry_budget` old, one clock for both
    /// loops.
    async fn retry(
        &self,
        topic: &str,
        resend: Resend,
        mut error: google_cloud_pubsub::error::PublishError,
        started: Instant,
    ) -> Result<Option<String>, String> {
        use rand::RngExt;
        let publisher = &self.publishers[topic];
        let mut backoff = crate::observe::pubsub::PUBLISH_BACKOFF_INITIAL;
        let mut attempts = 1u32;
        loop {
            let rpc = match &error {
                google_cloud_pubsub::error::PublishError::Rpc(inner) => Some(inner.clone()),
                _ => None,
            };
            let code = rpc.as_ref().and_then(|r| code_of(r));
            let permanent = matches!(
                code,
                Some(Code::InvalidArgument)
                    | Some(Code::PermissionDenied)
                    | Some(Code::Unauthenticated)
            ) || (code == Some(Code::NotFound) && self.recreate.is_none());
            // Full jitter (a uniform wait up to the backoff), as the client's own policy, so that a burst of
            // failures does not retry in step.
            let wait = backoff.mul_f64(rand::rng().random_range(0.0..=1.0));
            if permanent || started.elapsed() + wait > self.retry_budget {
                return Err(format!(
                    "{error} (after {attempts} attempts here, {} since the first)",
                    crate::units::human_us(started.elapsed().as_micros() as u64)
                ));
            }
            if code == Some(Code::NotFound) {
                self.recreate().await;
            }
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(crate::observe::pubsub::PUBLISH_BACKOFF_MAX);
            attempts += 1;
            match publisher.publish(resend.message(&self.run_id)).await {
                Ok(id) => return Ok(Some(id)),
                Err(e) => error = e,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message built again for a retry is the one first sent: data, the stream's own attributes and the
    /// contract's (the runner's map, made as the pacer makes it).
    #[test]
    fn a_message_built_again_for_a_retry_is_the_one_first_sent() {
        let id = crate::event::MsgId {
            stream: "upscale".into(),
            seq: 41,
        };
        let mut attributes: HashMap<String, String> =
            [("tenant".to_string(), "a".to_string())].into();
        crate::observe::pubsub::contract::add_job_attributes(&mut attributes, "run-7", &id, 9_000);
        let resend = Resend {
            data: bytes::Bytes::from_static(b"{\"n\": 41}"),
            own: Resend::own(&attributes),
            id,
            intended_us: 9_000,
        };
        let again = resend.message("run-7");
        assert_eq!(again.data, bytes::Bytes::from_static(b"{\"n\": 41}"));
        assert_eq!(again.attributes, attributes);
        assert_eq!(again.attributes["imagen_load_id"], "41");
        assert_eq!(again.attributes["imagen_load_intended_us"], "9000");
        assert_eq!(again.attributes.len(), 5);
    }

    /// With the client's default policy a publish to an endpoint that refuses connections is retried for 600 s;
    /// with the budget passed through, it fails once the budget is spent.
    #[tokio::test]
    async fn a_publish_that_keeps_failing_gives_up_at_the_retry_budget() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conn = Connection::emulator(&format!("127.0.0.1:{port}"), "p");
        let budget = Duration::from_secs(1);
        let target = Arc::new(
            PubsubTarget::new(
                &conn,
                "r",
                &["t".into()],
                Duration::from_millis(1),
                budget,
                None,
            )
            .await
            .unwrap(),
        );
        let msg = OutMessage {
            id: crate::event::MsgId {
                stream: "s".into(),
                seq: 0,
            },
            topic: "t".into(),
            payload: "x".into(),
            attributes: Default::default(),
            intended_us: 0,
        };
        let started = std::time::Instant::now();
        let answer =
            tokio::time::timeout(Duration::from_secs(60), PubsubTarget::send(&target, msg))
                .await
                .expect("the publish gave up within a minute, not the client's default 10 minutes");
        let err = answer.expect_err("nothing listens on the port");
        // It did retry (the client stops when its next wait would pass the budget, so a little before it).
        assert!(started.elapsed() >= budget / 2, "{err}");
    }
}
