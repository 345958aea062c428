//! The emulator's in-memory Pub/Sub: topics, subscriptions, leases, ack deadlines and redelivery. No I/O here:
//! the server (`server.rs`) turns gRPC and REST calls into these operations, so they are tested directly.

use googleapis_tonic_google_pubsub_v1::google::pubsub::v1 as pb;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Pub/Sub's own bounds on a subscription's ack deadline.
pub const MIN_ACK_DEADLINE_S: i32 = 10;
pub const MAX_ACK_DEADLINE_S: i32 = 600;
/// Caps what one subscription may hold, so a forgotten subscription cannot take the machine's memory.
pub const MAX_RETAINED_PER_SUBSCRIPTION: usize = 10_000_000;

/// A Pub/Sub error, as a gRPC code and a message; the REST side maps it to an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PubsubError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    ResourceExhausted(String),
}

impl PubsubError {
    pub fn http_status(&self) -> (u16, &'static str) {
        match self {
            Self::NotFound(_) => (404, "NOT_FOUND"),
            Self::AlreadyExists(_) => (409, "ALREADY_EXISTS"),
            Self::InvalidArgument(_) => (400, "INVALID_ARGUMENT"),
            Self::ResourceExhausted(_) => (429, "RESOURCE_EXHAUSTED"),
        }
    }
}

impl From<PubsubError> for tonic::Status {
    fn from(e: PubsubError) -> Self {
        match e {
            PubsubError::NotFound(m) => tonic::Status::not_found(m),
            PubsubError::AlreadyExists(m) => tonic::Status::already_exists(m),
            PubsubError::InvalidArgument(m) => tonic::Status::invalid_argument(m),
            PubsubError::ResourceExhausted(m) => tonic::Status::resource_exhausted(m),
        }
    }
}

type Result<T> = std::result::Result<T, PubsubError>;

/// `projects/{p}/topics/{t}` or `projects/{p}/subscriptions/{s}`, checked.
pub fn check_name(name: &str, collection: &str) -> Result<()> {
    let parts: Vec<&str> = name.split('/').collect();
    let ok = parts.len() == 4
        && parts[0] == "projects"
        && !parts[1].is_empty()
        && parts[2] == collection
        && !parts[3].is_empty()
        && parts[3].len() <= 255;
    if ok {
        Ok(())
    } else {
        Err(PubsubError::InvalidArgument(format!(
            "invalid resource name `{name}`: expected projects/PROJECT/{collection}/NAME"
        )))
    }
}

#[derive(Debug, Clone)]
pub struct SubscriptionInfo {
    pub name: String,
    pub topic: String,
    pub ack_deadline_s: i32,
}

/// Counts for the backlog endpoint: what KEDA's `metrics-api` trigger reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BacklogCounts {
    /// Published and not acknowledged (Cloud Monitoring's `num_undelivered_messages`).
    pub undelivered: u64,
    /// Of those, waiting for a subscriber.
    pub ready: u64,
    /// Of those, leased to a subscriber and not yet acknowledged.
    pub outstanding: u64,
    pub delivered_total: u64,
    pub acked_total: u64,
    pub redelivered_total: u64,
}

struct Lease {
    msg: Arc<pb::PubsubMessage>,
    attempt: i32,
    deadline: Instant,
    stream: Option<u64>,
}

struct SubState {
    info: SubscriptionInfo,
    ready: VecDeque<(Arc<pb::PubsubMessage>, i32)>,
    leased: HashMap<String, Lease>,
    expiries: BinaryHeap<Reverse<(Instant, String)>>,
    per_stream: HashMap<u64, usize>,
    notify: Arc<Notify>,
    next_ack: u64,
    counts: BacklogCounts,
}

impl SubState {
    fn release(&mut self, ack_id: &str) -> Option<Lease> {
        let lease = self.leased.remove(ack_id)?;
        if let Some(s) = lease.stream
            && let Some(n) = self.per_stream.get_mut(&s)
        {
            *n = n.saturating_sub(1);
        }
        Some(lease)
    }

    /// A lease given up (expired, nacked or its stream closed): back to the front of the queue, for redelivery.
    fn requeue(&mut self, lease: Lease) {
        self.counts.redelivered_total += 1;
        self.ready.push_front((lease.msg, lease.attempt + 1));
        self.notify.notify_waiters();
    }

    fn expire(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some(Reverse((at, _))) = self.expiries.peek() {
            if *at > now {
                break;
            }
            let Reverse((at, ack_id)) = self.expiries.pop().expect("peeked");
            // A stale entry (acked, or extended since) is skipped.
            if self.leased.get(&ack_id).is_some_and(|l| l.deadline == at)
                && let Some(lease) = self.release(&ack_id)
            {
                self.requeue(lease);
                n += 1;
            }
        }
        n
    }

    fn lease(
        &mut self,
        max: usize,
        deadline_s: i32,
        stream: Option<u64>,
    ) -> Vec<pb::ReceivedMessage> {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(deadline_s.clamp(1, MAX_ACK_DEADLINE_S) as u64);
        let take = max.min(self.ready.len());
        let mut out = Vec::with_capacity(take);
        for _ in 0..take {
            let (msg, attempt) = self.ready.pop_front().expect("counted");
            self.next_ack += 1;
            let ack_id = format!("{}-{}", msg.message_id, self.next_ack);
            out.push(pb::ReceivedMessage {
                ack_id: ack_id.clone(),
                message: Some((*msg).clone()),
                // The service (and Google's emulator) sets the delivery attempt only on subscriptions with a
                // dead-letter policy, which this emulator does not have: 0, "not set". The attempt is still
                // counted here, for the backlog and the tests.
                delivery_attempt: 0,
            });
            self.leased.insert(
                ack_id.clone(),
                Lease {
                    msg,
                    attempt,
                    deadline,
                    stream,
                },
            );
            self.expiries.push(Reverse((deadline, ack_id)));
            if let Some(s) = stream {
                *self.per_stream.entry(s).or_default() += 1;
            }
        }
        self.counts.delivered_total += out.len() as u64;
        out
    }
}

/// Everything the emulator holds.
#[derive(Default)]
pub struct State {
    topics: BTreeMap<String, Vec<String>>,
    subs: BTreeMap<String, SubState>,
    next_message_id: u64,
    next_stream: u64,
}

impl State {
    pub fn create_topic(&mut self, name: &str) -> Result<()> {
        check_name(name, "topics")?;
        if self.topics.contains_key(name) {
            return Err(PubsubError::AlreadyExists(format!(
                "Topic already exists: {name}"
            )));
        }
        self.topics.insert(name.to_string(), Vec::new());
        Ok(())
    }

    pub fn topic_exists(&self, name: &str) -> Result<()> {
        if self.topics.contains_key(name) {
            Ok(())
        } else {
            Err(PubsubError::NotFound(format!("Topic not found: {name}")))
        }
    }

    pub fn delete_topic(&mut self, name: &str) -> Result<()> {
        let subs = self
            .topics
            .remove(name)
            .ok_or_else(|| PubsubError::NotFound(format!("Topic not found: {name}")))?;
        // As in Pub/Sub, the subscriptions stay, detached from the deleted topic.
        for s in subs {
            if let Some(sub) = self.subs.get_mut(&s) {
                sub.info.topic = "_deleted-topic_".into();
            }
        }
        Ok(())
    }

    pub fn topics(&self, project: &str) -> Vec<String> {
        let prefix = format!("{project}/topics/");
        self.topics
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect()
    }

    pub fn topic_subscriptions(&self, topic: &str) -> Result<Vec<String>> {
        self.topics
            .get(topic)
            .cloned()
            .ok_or_else(|| PubsubError::NotFound(format!("Topic not found: {topic}")))
    }

    pub fn create_subscription(
        &mut self,
        name: &str,
        topic: &str,
        ack_deadline_s: i32,
    ) -> Result<SubscriptionInfo> {
        check_name(name, "subscriptions")?;
        if self.subs.contains_key(name) {
            return Err(PubsubError::AlreadyExists(format!(
                "Subscription already exists: {name}"
            )));
        }
        let Some(topic_subs) = self.topics.get_mut(topic) else {
            return Err(PubsubError::NotFound(format!("Topic not found: {topic}")));
        };
        let ack_deadline_s = if ack_deadline_s == 0 {
            MIN_ACK_DEADLINE_S
        } else if !(MIN_ACK_DEADLINE_S..=MAX_ACK_DEADLINE_S).contains(&ack_deadline_s) {
            return Err(PubsubError::InvalidArgument(format!(
                "ack_deadline_seconds must be between {MIN_ACK_DEADLINE_S} and {MAX_ACK_DEADLINE_S}, got {ack_deadline_s}"
            )));
        } else {
            ack_deadline_s
        };
        topic_subs.push(name.to_string());
        let info = SubscriptionInfo {
            name: name.to_string(),
            topic: topic.to_string(),
            ack_deadline_s,
        };
        self.subs.insert(
            name.to_string(),
            SubState {
                info: info.clone(),
                ready: VecDeque::new(),
                leased: HashMap::new(),
                expiries: BinaryHeap::new(),
                per_stream: HashMap::new(),
                notify: Arc::new(Notify::new()),
                next_ack: 0,
                counts: BacklogCounts::default(),
            },
        );
        Ok(info)
    }

    pub fn subscription(&self, name: &str) -> Result<SubscriptionInfo> {
        self.sub_ref(name).map(|s| s.info.clone())
    }

    pub fn subscriptions(&self, project: &str) -> Vec<SubscriptionInfo> {
        let prefix = format!("{project}/subscriptions/");
        self.subs
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, s)| s.info.clone())
            .collect()
    }

    pub fn delete_subscription(&mut self, name: &str) -> Result<()> {
        let sub = self
            .subs
            .remove(name)
            .ok_or_else(|| PubsubError::NotFound(format!("Subscription not found: {name}")))?;
        if let Some(list) = self.topics.get_mut(&sub.info.topic) {
            list.retain(|s| s != name);
        }
        sub.notify.notify_waiters();
        Ok(())
    }

    fn sub_ref(&self, name: &str) -> Result<&SubState> {
        self.subs
            .get(name)
            .ok_or_else(|| PubsubError::NotFound(format!("Subscription not found: {name}")))
    }

    fn sub_mut(&mut self, name: &str) -> Result<&mut SubState> {
        self.subs
            .get_mut(name)
            .ok_or_else(|| PubsubError::NotFound(format!("Subscription not found: {name}")))
    }

    /// Stores the messages for every subscription of the topic; returns their ids in order.
    pub fn publish(
        &mut self,
        topic: &str,
        messages: Vec<pb::PubsubMessage>,
    ) -> Result<Vec<String>> {
        let subs = self.topic_subscriptions(topic)?;
        if messages.is_empty() {
            return Err(PubsubError::InvalidArgument(
                "a publish request needs at least one message".into(),
            ));
        }
        for s in &subs {
            let len = self
                .subs
                .get(s)
                .map_or(0, |s| s.ready.len() + s.leased.len());
            if len + messages.len() > MAX_RETAINED_PER_SUBSCRIPTION {
                return Err(PubsubError::ResourceExhausted(format!(
                    "subscription {s} holds {len} messages, the emulator's limit is {MAX_RETAINED_PER_SUBSCRIPTION}"
                )));
            }
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let publish_time = prost_types::Timestamp {
            seconds: now.as_secs() as i64,
            nanos: now.subsec_nanos() as i32,
        };
        let mut ids = Vec::with_capacity(messages.len());
        let mut stored = Vec::with_capacity(messages.len());
        for mut m in messages {
            if m.data.is_empty() && m.attributes.is_empty() {
                return Err(PubsubError::InvalidArgument(
                    "a message needs data or at least one attribute".into(),
                ));
            }
            self.next_message_id += 1;
            m.message_id = self.next_message_id.to_string();
            m.publish_time = Some(publish_time);
            ids.push(m.message_id.clone());
            stored.push(Arc::new(m));
        }
        for s in subs {
            if let Some(sub) = self.subs.get_mut(&s) {
                sub.ready.extend(stored.iter().map(|m| (m.clone(), 1)));
                sub.notify.notify_waiters();
            }
        }
        Ok(ids)
    }

    pub fn pull(&mut self, sub: &str, max: usize) -> Result<Vec<pb::ReceivedMessage>> {
        let sub = self.sub_mut(sub)?;
        sub.expire(Instant::now());
        let deadline = sub.info.ack_deadline_s;
        Ok(sub.lease(max, deadline, None))
    }

    pub fn open_stream(&mut self, sub: &str) -> Result<(u64, Arc<Notify>)> {
        let notify = self.sub_ref(sub)?.notify.clone();
        self.next_stream += 1;
        Ok((self.next_stream, notify))
    }

    /// Leases up to what the stream's flow control still allows.
    pub fn stream_pull(
        &mut self,
        sub: &str,
        stream: u64,
        deadline_s: i32,
        max_outstanding: usize,
    ) -> Result<Vec<pb::ReceivedMessage>> {
        let sub = self.sub_mut(sub)?;
        sub.expire(Instant::now());
        let held = sub.per_stream.get(&stream).copied().unwrap_or(0);
        let room = max_outstanding.saturating_sub(held).min(1_000);
        Ok(sub.lease(room, deadline_s, Some(stream)))
    }

    /// A stream went away (the subscriber closed it or died): its leases are redelivered at once.
    pub fn close_stream(&mut self, sub: &str, stream: u64) -> usize {
        let Ok(sub) = self.sub_mut(sub) else {
            return 0;
        };
        let ids: Vec<String> = sub
            .leased
            .iter()
            .filter(|(_, l)| l.stream == Some(stream))
            .map(|(k, _)| k.clone())
            .collect();
        for id in &ids {
            if let Some(lease) = sub.release(id) {
                sub.requeue(lease);
            }
        }
        sub.per_stream.remove(&stream);
        ids.len()
    }

    /// Acknowledges; unknown or stale ack ids are ignored, as Pub/Sub does.
    pub fn acknowledge(&mut self, sub: &str, ack_ids: &[String]) -> Result<usize> {
        let sub = self.sub_mut(sub)?;
        let mut n = 0;
        for id in ack_ids {
            if sub.release(id).is_some() {
                n += 1;
            }
        }
        sub.counts.acked_total += n as u64;
        if n > 0 {
            // Flow-control room opened for the streams.
            sub.notify.notify_waiters();
        }
        Ok(n)
    }

    /// Extends leases; a deadline of 0 gives the message back for redelivery (a nack).
    pub fn modify_ack_deadline(
        &mut self,
        sub: &str,
        ack_ids: &[String],
        seconds: i32,
    ) -> Result<()> {
        if !(0..=MAX_ACK_DEADLINE_S).contains(&seconds) {
            return Err(PubsubError::InvalidArgument(format!(
                "ack_deadline_seconds must be between 0 and {MAX_ACK_DEADLINE_S}, got {seconds}"
            )));
        }
        let sub = self.sub_mut(sub)?;
        let now = Instant::now();
        for id in ack_ids {
            if seconds == 0 {
                if let Some(lease) = sub.release(id) {
                    sub.requeue(lease);
                }
            } else if let Some(lease) = sub.leased.get_mut(id) {
                lease.deadline = now + Duration::from_secs(seconds as u64);
                sub.expiries.push(Reverse((lease.deadline, id.clone())));
            }
        }
        Ok(())
    }

    /// Redelivers every lease whose deadline passed; returns how many.
    pub fn expire_all(&mut self, now: Instant) -> usize {
        self.subs.values_mut().map(|s| s.expire(now)).sum()
    }

    pub fn backlog(&self, sub: &str) -> Result<BacklogCounts> {
        let s = self.sub_ref(sub)?;
        let mut c = s.counts;
        c.ready = s.ready.len() as u64;
        c.outstanding = s.leased.len() as u64;
        c.undelivered = c.ready + c.outstanding;
        Ok(c)
    }

    /// A subscription by its full name, or by its short name when that is unique across projects.
    pub fn resolve_subscription(&self, name: &str) -> Result<String> {
        if self.subs.contains_key(name) {
            return Ok(name.to_string());
        }
        let suffix = format!("/subscriptions/{name}");
        let found: Vec<&String> = self.subs.keys().filter(|k| k.ends_with(&suffix)).collect();
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(PubsubError::NotFound(format!(
                "Subscription not found: {name}"
            ))),
            _ => Err(PubsubError::InvalidArgument(format!(
                "`{name}` names a subscription in several projects; use projects/PROJECT/subscriptions/{name}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(data: &str) -> pb::PubsubMessage {
        pb::PubsubMessage {
            data: data.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    fn setup() -> State {
        let mut s = State::default();
        s.create_topic("projects/p/topics/t").unwrap();
        s.create_subscription("projects/p/subscriptions/s", "projects/p/topics/t", 10)
            .unwrap();
        s
    }

    #[test]
    fn names_are_checked() {
        let mut s = State::default();
        assert!(matches!(
            s.create_topic("topics/t"),
            Err(PubsubError::InvalidArgument(_))
        ));
        s.create_topic("projects/p/topics/t").unwrap();
        assert!(matches!(
            s.create_topic("projects/p/topics/t"),
            Err(PubsubError::AlreadyExists(_))
        ));
        assert!(matches!(
            s.create_subscription("projects/p/subscriptions/s", "projects/p/topics/x", 10),
            Err(PubsubError::NotFound(_))
        ));
    }

    #[test]
    fn publish_pull_ack() {
        let mut s = setup();
        let ids = s
            .publish("projects/p/topics/t", vec![msg("a"), msg("b")])
            .unwrap();
        assert_eq!(ids, ["1", "2"]);
        let got = s.pull("projects/p/subscriptions/s", 10).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].delivery_attempt, 0,
            "set only with a dead-letter policy"
        );
        let b = s.backlog("projects/p/subscriptions/s").unwrap();
        assert_eq!((b.undelivered, b.ready, b.outstanding), (2, 0, 2));
        let acked = s
            .acknowledge("projects/p/subscriptions/s", &[got[0].ack_id.clone()])
            .unwrap();
        assert_eq!(acked, 1);
        // Acking twice is harmless.
        let again = s
            .acknowledge("projects/p/subscriptions/s", &[got[0].ack_id.clone()])
            .unwrap();
        assert_eq!(again, 0);
        assert_eq!(
            s.backlog("projects/p/subscriptions/s").unwrap().undelivered,
            1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn expired_leases_are_redelivered_and_counted() {
        let mut s = setup();
        s.publish("projects/p/topics/t", vec![msg("a")]).unwrap();
        let first = s.pull("projects/p/subscriptions/s", 1).unwrap();
        assert_eq!(first.len(), 1);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(s.expire_all(Instant::now()), 0);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(s.expire_all(Instant::now()), 1);
        let again = s.pull("projects/p/subscriptions/s", 1).unwrap();
        assert_eq!(
            s.backlog("projects/p/subscriptions/s")
                .unwrap()
                .redelivered_total,
            1
        );
        assert_ne!(again[0].ack_id, first[0].ack_id);
        // The stale ack id no longer acknowledges anything.
        assert_eq!(
            s.acknowledge("projects/p/subscriptions/s", &[first[0].ack_id.clone()])
                .unwrap(),
            0
        );
    }

    #[tokio::test(start_paused = true)]
    async fn extending_a_lease_postpones_redelivery_and_zero_nacks() {
        let mut s = setup();
        s.publish("projects/p/topics/t", vec![msg("a"), msg("b")])
            .unwrap();
        let got = s.pull("projects/p/subscriptions/s", 2).unwrap();
        s.modify_ack_deadline("projects/p/subscriptions/s", &[got[0].ack_id.clone()], 60)
            .unwrap();
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(s.expire_all(Instant::now()), 1, "only the unextended one");
        s.modify_ack_deadline("projects/p/subscriptions/s", &[got[0].ack_id.clone()], 0)
            .unwrap();
        assert_eq!(s.backlog("projects/p/subscriptions/s").unwrap().ready, 2);
    }

    #[test]
    fn a_closed_stream_gives_its_leases_back_and_flow_control_holds() {
        let mut s = setup();
        s.publish(
            "projects/p/topics/t",
            (0..5).map(|i| msg(&i.to_string())).collect(),
        )
        .unwrap();
        let (id, _) = s.open_stream("projects/p/subscriptions/s").unwrap();
        let got = s
            .stream_pull("projects/p/subscriptions/s", id, 10, 2)
            .unwrap();
        assert_eq!(got.len(), 2);
        assert!(
            s.stream_pull("projects/p/subscriptions/s", id, 10, 2)
                .unwrap()
                .is_empty()
        );
        s.acknowledge("projects/p/subscriptions/s", &[got[0].ack_id.clone()])
            .unwrap();
        assert_eq!(
            s.stream_pull("projects/p/subscriptions/s", id, 10, 2)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(s.close_stream("projects/p/subscriptions/s", id), 2);
        let b = s.backlog("projects/p/subscriptions/s").unwrap();
        assert_eq!((b.ready, b.outstanding, b.redelivered_total), (4, 0, 2));
    }

    #[test]
    fn messages_published_before_a_subscription_exists_are_not_in_it() {
        let mut s = State::default();
        s.create_topic("projects/p/topics/t").unwrap();
        s.publish("projects/p/topics/t", vec![msg("early")])
            .unwrap();
        s.create_subscription("projects/p/subscriptions/s", "projects/p/topics/t", 0)
            .unwrap();
        assert_eq!(
            s.backlog("projects/p/subscriptions/s").unwrap().undelivered,
            0
        );
        assert_eq!(
            s.resolve_subscription("s").unwrap(),
            "projects/p/subscriptions/s"
        );
    }
}
