//! One listener, HTTP/1.1 and HTTP/2 (cleartext): gRPC requests (by content type) go to the Pub/Sub services,
//! everything else to the REST routes. Connections are tasks of the serve loop, so stopping it closes them all.

use super::Emulator;
use super::state::PubsubError;
use base64::Engine as _;
use bytes::Bytes;
use googleapis_tonic_google_pubsub_v1::google::pubsub::v1 as pb;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::body::Body;

/// Pub/Sub's own request size limit.
const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
/// How long a unary `Pull` waits for messages when none are ready.
const PULL_WAIT: Duration = Duration::from_secs(5);
/// How long before the client's deadline an empty unary `Pull` is answered.
const PULL_DEADLINE_MARGIN: Duration = Duration::from_millis(900);
/// Re-checks for expired leases and flow-control room even without a wake-up.
const STREAM_POLL: Duration = Duration::from_millis(100);

pub(super) async fn serve(listener: TcpListener, emulator: Arc<Emulator>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("emulator: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let emulator = emulator.clone();
        conns.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let emulator = emulator.clone();
                async move { Ok::<_, Infallible>(handle(emulator, req).await) }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder.http2().max_concurrent_streams(1024);
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("emulator: connection ended: {e}");
            }
        });
        while conns.try_join_next().is_some() {}
    }
}

async fn handle(emulator: Arc<Emulator>, req: http::Request<Incoming>) -> http::Response<Body> {
    let grpc = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if grpc {
        grpc_route(emulator, req).await
    } else {
        rest_route(emulator, req).await
    }
}

// ---------------------------------------------------------------- gRPC

async fn unary<Req, Resp, F, Fut>(req: http::Request<Incoming>, f: F) -> http::Response<Body>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: FnOnce(Req) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Resp, Status>> + Send + 'static,
{
    let mut f = Some(f);
    let service = tower::service_fn(move |r: tonic::Request<Req>| {
        let f = f.take();
        async move {
            match f {
                Some(f) => f(r.into_inner()).await.map(tonic::Response::new),
                None => Err(Status::internal("handler called twice")),
            }
        }
    });
    let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<Resp, Req>::default())
        .max_decoding_message_size(MAX_REQUEST_BYTES + 64 * 1024);
    grpc.unary(service, req).await
}

fn now_unary<Resp>(r: Result<Resp, PubsubError>) -> std::future::Ready<Result<Resp, Status>> {
    std::future::ready(r.map_err(Status::from))
}

fn topic_pb(name: String) -> pb::Topic {
    pb::Topic {
        name,
        ..Default::default()
    }
}

fn subscription_pb(info: super::state::SubscriptionInfo) -> pb::Subscription {
    pb::Subscription {
        name: info.name,
        topic: info.topic,
        ack_deadline_seconds: info.ack_deadline_s,
        ..Default::default()
    }
}

async fn grpc_route(emulator: Arc<Emulator>, req: http::Request<Incoming>) -> http::Response<Body> {
    let path = req.uri().path().to_string();
    let e = emulator.clone();
    match path.as_str() {
        "/google.pubsub.v1.Publisher/CreateTopic" => {
            unary(req, move |t: pb::Topic| {
                now_unary(
                    e.with(|s| s.create_topic(&t.name))
                        .map(|_| topic_pb(t.name)),
                )
            })
            .await
        }
        "/google.pubsub.v1.Publisher/GetTopic" => {
            unary(req, move |r: pb::GetTopicRequest| {
                now_unary(
                    e.with(|s| s.topic_exists(&r.topic))
                        .map(|_| topic_pb(r.topic)),
                )
            })
            .await
        }
        "/google.pubsub.v1.Publisher/DeleteTopic" => {
            unary(req, move |r: pb::DeleteTopicRequest| {
                now_unary(e.with(|s| s.delete_topic(&r.topic)).map(|_| ()))
            })
            .await
        }
        "/google.pubsub.v1.Publisher/ListTopics" => {
            unary(req, move |r: pb::ListTopicsRequest| {
                let topics = e.with(|s| s.topics(&r.project));
                now_unary(Ok(pb::ListTopicsResponse {
                    topics: topics.into_iter().map(topic_pb).collect(),
                    next_page_token: String::new(),
                }))
            })
            .await
        }
        "/google.pubsub.v1.Publisher/ListTopicSubscriptions" => {
            unary(req, move |r: pb::ListTopicSubscriptionsRequest| {
                now_unary(
                    e.with(|s| s.topic_subscriptions(&r.topic))
                        .map(|subscriptions| pb::ListTopicSubscriptionsResponse {
                            subscriptions,
                            next_page_token: String::new(),
                        }),
                )
            })
            .await
        }
        "/google.pubsub.v1.Publisher/Publish" => {
            unary(req, move |r: pb::PublishRequest| {
                now_unary(
                    e.with(|s| s.publish(&r.topic, r.messages))
                        .map(|message_ids| pb::PublishResponse { message_ids }),
                )
            })
            .await
        }
        "/google.pubsub.v1.Subscriber/CreateSubscription" => {
            unary(req, move |r: pb::Subscription| {
                now_unary(
                    e.with(|s| s.create_subscription(&r.name, &r.topic, r.ack_deadline_seconds))
                        .map(subscription_pb),
                )
            })
            .await
        }
        "/google.pubsub.v1.Subscriber/GetSubscription" => {
            unary(req, move |r: pb::GetSubscriptionRequest| {
                now_unary(
                    e.with(|s| s.subscription(&r.subscription))
                        .map(subscription_pb),
                )
            })
            .await
        }
        "/google.pubsub.v1.Subscriber/DeleteSubscription" => {
            unary(req, move |r: pb::DeleteSubscriptionRequest| {
                now_unary(
                    e.with(|s| s.delete_subscription(&r.subscription))
                        .map(|_| ()),
                )
            })
            .await
        }
        "/google.pubsub.v1.Subscriber/ListSubscriptions" => {
            unary(req, move |r: pb::ListSubscriptionsRequest| {
                let subs = e.with(|s| s.subscriptions(&r.project));
                now_unary(Ok(pb::ListSubscriptionsResponse {
                    subscriptions: subs.into_iter().map(subscription_pb).collect(),
                    next_page_token: String::new(),
                }))
            })
            .await
        }
        "/google.pubsub.v1.Subscriber/Acknowledge" => {
            unary(req, move |r: pb::AcknowledgeRequest| {
                now_unary(
                    e.with(|s| s.acknowledge(&r.subscription, &r.ack_ids))
                        .map(|_| ()),
                )
            })
            .await
        }
        "/google.pubsub.v1.Subscriber/ModifyAckDeadline" => {
            unary(req, move |r: pb::ModifyAckDeadlineRequest| {
                now_unary(e.with(|s| {
                    s.modify_ack_deadline(&r.subscription, &r.ack_ids, r.ack_deadline_seconds)
                }))
            })
            .await
        }
        "/google.pubsub.v1.Subscriber/Pull" => {
            let deadline = grpc_timeout(req.headers());
            unary(req, move |r: pb::PullRequest| pull(e, r, deadline)).await
        }
        "/google.pubsub.v1.Subscriber/StreamingPull" => {
            let service = tower::service_fn(
                move |r: tonic::Request<tonic::Streaming<pb::StreamingPullRequest>>| {
                    streaming_pull(emulator.clone(), r.into_inner())
                },
            );
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<
                pb::StreamingPullResponse,
                pb::StreamingPullRequest,
            >::default());
            grpc.streaming(service, req).await
        }
        other => {
            Status::unimplemented(format!("the emulator does not implement {other}")).into_http()
        }
    }
}

/// The client's deadline for a call: gRPC's `grpc-timeout` header (`<digits><unit>`, unit one of H M S m u n;
/// gRPC over HTTP/2, "Requests").
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get("grpc-timeout")?.to_str().ok()?;
    let (n, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// `maxMessages` must be given: Google's emulator and the service answer `INVALID_ARGUMENT` to 0.
fn max_messages(n: i64) -> Result<usize, PubsubError> {
    if n <= 0 {
        return Err(PubsubError::InvalidArgument(
            "No max_messages specified".into(),
        ));
    }
    Ok(n.min(1_000) as usize)
}

/// A unary `Pull` with nothing ready waits for messages, and answers empty before the client's deadline runs out
/// (as Google's emulator does, about a second before it), or after [`PULL_WAIT`].
async fn pull(
    emulator: Arc<Emulator>,
    r: pb::PullRequest,
    deadline: Option<Duration>,
) -> Result<pb::PullResponse, Status> {
    let max = max_messages(i64::from(r.max_messages))?;
    let wait = deadline.map_or(PULL_WAIT, |d| {
        PULL_WAIT.min(d.saturating_sub(PULL_DEADLINE_MARGIN))
    });
    let until = tokio::time::Instant::now() + wait;
    let notify = emulator.with(|s| s.open_stream(&r.subscription))?.1;
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let received_messages = emulator.with(|s| s.pull(&r.subscription, max))?;
        #[allow(deprecated)]
        if !received_messages.is_empty() || r.return_immediately {
            return Ok(pb::PullResponse { received_messages });
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(STREAM_POLL) => {}
        }
        if tokio::time::Instant::now() >= until {
            return Ok(pb::PullResponse::default());
        }
    }
}

fn apply_stream_request(emulator: &Emulator, sub: &str, r: &pb::StreamingPullRequest) {
    emulator.with(|s| {
        if !r.ack_ids.is_empty() {
            let _ = s.acknowledge(sub, &r.ack_ids);
        }
        for (id, secs) in r
            .modify_deadline_ack_ids
            .iter()
            .zip(&r.modify_deadline_seconds)
        {
            let _ = s.modify_ack_deadline(sub, std::slice::from_ref(id), *secs);
        }
    });
}

type PullStream = ReceiverStream<Result<pb::StreamingPullResponse, Status>>;

async fn streaming_pull(
    emulator: Arc<Emulator>,
    mut inbound: tonic::Streaming<pb::StreamingPullRequest>,
) -> Result<tonic::Response<PullStream>, Status> {
    let first = inbound.message().await?.ok_or_else(|| {
        Status::invalid_argument("StreamingPull: the stream closed before its first request")
    })?;
    let sub = first.subscription.clone();
    let info = emulator.with(|s| s.subscription(&sub))?;
    let deadline_s = if first.stream_ack_deadline_seconds > 0 {
        first.stream_ack_deadline_seconds
    } else {
        info.ack_deadline_s
    };
    let max_outstanding = if first.max_outstanding_messages > 0 {
        first.max_outstanding_messages as usize
    } else {
        1_000
    };
    let (stream_id, notify) = emulator.with(|s| s.open_stream(&sub))?;
    apply_stream_request(&emulator, &sub, &first);
    let (tx, rx) = mpsc::channel(16);
    let (reader_done_tx, mut reader_done) = tokio::sync::oneshot::channel::<()>();
    {
        let (emulator, sub) = (emulator.clone(), sub.clone());
        tokio::spawn(async move {
            while let Ok(Some(r)) = inbound.message().await {
                apply_stream_request(&emulator, &sub, &r);
            }
            let _ = reader_done_tx.send(());
        });
    }
    tokio::spawn(async move {
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match emulator.with(|s| s.stream_pull(&sub, stream_id, deadline_s, max_outstanding)) {
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    break;
                }
                Ok(received_messages) if !received_messages.is_empty() => {
                    let resp = pb::StreamingPullResponse {
                        received_messages,
                        ..Default::default()
                    };
                    if tx.send(Ok(resp)).await.is_err() {
                        break;
                    }
                    continue;
                }
                Ok(_) => {}
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(STREAM_POLL) => {}
                _ = tx.closed() => break,
                _ = &mut reader_done => break,
            }
        }
        emulator.with(|s| s.close_stream(&sub, stream_id));
    });
    Ok(tonic::Response::new(ReceiverStream::new(rx)))
}

// ---------------------------------------------------------------- REST

fn json_response(status: StatusCode, v: &Value) -> http::Response<Body> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::new(Full::new(Bytes::from(v.to_string()))))
        .expect("valid response")
}

fn error_response(e: &PubsubError) -> http::Response<Body> {
    let (code, status) = e.http_status();
    json_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        &json!({"error": {"code": code, "message": e.to_string(), "status": status}}),
    )
}

fn reply(r: Result<Value, PubsubError>) -> http::Response<Body> {
    match r {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => error_response(&e),
    }
}

fn topic_json(name: &str) -> Value {
    json!({ "name": name })
}

fn subscription_json(info: &super::state::SubscriptionInfo) -> Value {
    json!({
        "name": info.name,
        "topic": info.topic,
        "ackDeadlineSeconds": info.ack_deadline_s,
        "pushConfig": {},
        "messageRetentionDuration": "604800s",
    })
}

fn received_json(m: &pb::ReceivedMessage) -> Value {
    let msg = m.message.clone().unwrap_or_default();
    let publish_time = msg
        .publish_time
        .map(|t| {
            let at = std::time::UNIX_EPOCH
                + Duration::new(t.seconds.max(0) as u64, t.nanos.max(0) as u32);
            humantime::format_rfc3339_micros(at).to_string()
        })
        .unwrap_or_default();
    // proto3 JSON leaves a 0 (unset) delivery attempt out, as the service does without a dead-letter policy.
    json!({
        "ackId": m.ack_id,
        "message": {
            "data": base64::engine::general_purpose::STANDARD.encode(&msg.data),
            "attributes": msg.attributes,
            "messageId": msg.message_id,
            "publishTime": publish_time,
        },
    })
}

fn bad(msg: impl Into<String>) -> PubsubError {
    PubsubError::InvalidArgument(msg.into())
}

fn str_list(body: &Value, key: &str) -> Result<Vec<String>, PubsubError> {
    match body.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(format!("`{key}` must be a list of strings")))
            })
            .collect(),
        Some(_) => Err(bad(format!("`{key}` must be a list of strings"))),
    }
}

fn publish_body(body: &Value) -> Result<Vec<pb::PubsubMessage>, PubsubError> {
    let Some(Value::Array(list)) = body.get("messages") else {
        return Err(bad("the body needs `messages`, a list"));
    };
    list.iter()
        .map(|m| {
            let data = match m.get("data").and_then(Value::as_str) {
                Some(d) => base64::engine::general_purpose::STANDARD
                    .decode(d)
                    .map_err(|e| bad(format!("`data` is not base64: {e}")))?,
                None => Vec::new(),
            };
            let attributes = match m.get("attributes") {
                Some(Value::Object(o)) => o
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect(),
                _ => Default::default(),
            };
            Ok(pb::PubsubMessage {
                data,
                attributes,
                ordering_key: m
                    .get("orderingKey")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                ..Default::default()
            })
        })
        .collect()
}

async fn rest_route(emulator: Arc<Emulator>, req: http::Request<Incoming>) -> http::Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let body = match Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => return error_response(&bad(format!("cannot read the request body: {e}"))),
    };
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return error_response(&bad(format!("the body is not JSON: {e}"))),
        }
    };
    if method == Method::GET && path == "/healthz" {
        return json_response(StatusCode::OK, &json!({"status": "ok"}));
    }
    if method == Method::GET
        && let Some(sub) = path.strip_prefix("/backlog/")
    {
        return reply(emulator.with(|s| {
            let full = s.resolve_subscription(sub)?;
            let counts = s.backlog(&full)?;
            let mut v = serde_json::to_value(counts).expect("plain struct");
            v["subscription"] = Value::String(full);
            Ok(v)
        }));
    }
    let Some(rest) = path.strip_prefix("/v1/") else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": {"code": 404, "message": format!("no route for {path}"), "status": "NOT_FOUND"}}),
        );
    };
    let (resource, verb) = match rest.rsplit_once(':') {
        Some((r, v)) => (r.to_string(), Some(v.to_string())),
        None => (rest.to_string(), None),
    };
    let parts: Vec<&str> = resource.split('/').collect();
    let result = emulator.with(|s| -> Result<Value, PubsubError> {
        match (parts.as_slice(), &method, verb.as_deref()) {
            (["projects", p, "topics"], &Method::GET, None) => {
                let topics: Vec<Value> = s
                    .topics(&format!("projects/{p}"))
                    .iter()
                    .map(|t| topic_json(t))
                    .collect();
                Ok(json!({ "topics": topics }))
            }
            (["projects", _, "topics", _], m, None) if m == Method::PUT => {
                s.create_topic(&resource)?;
                Ok(topic_json(&resource))
            }
            (["projects", _, "topics", _], m, None) if m == Method::GET => {
                s.topic_exists(&resource)?;
                Ok(topic_json(&resource))
            }
            (["projects", _, "topics", _], m, None) if m == Method::DELETE => {
                s.delete_topic(&resource)?;
                Ok(json!({}))
            }
            (["projects", _, "topics", _], m, Some("publish")) if m == Method::POST => {
                let ids = s.publish(&resource, publish_body(&body)?)?;
                Ok(json!({ "messageIds": ids }))
            }
            (["projects", _, "topics", _, "subscriptions"], &Method::GET, None) => {
                let topic = parts[..4].join("/");
                Ok(json!({ "subscriptions": s.topic_subscriptions(&topic)? }))
            }
            (["projects", p, "subscriptions"], &Method::GET, None) => {
                let subs: Vec<Value> = s
                    .subscriptions(&format!("projects/{p}"))
                    .iter()
                    .map(subscription_json)
                    .collect();
                Ok(json!({ "subscriptions": subs }))
            }
            (["projects", _, "subscriptions", _], m, None) if m == Method::PUT => {
                let topic = body
                    .get("topic")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("a subscription needs `topic`"))?;
                let deadline = body
                    .get("ackDeadlineSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(0) as i32;
                let info = s.create_subscription(&resource, topic, deadline)?;
                Ok(subscription_json(&info))
            }
            (["projects", _, "subscriptions", _], m, None) if m == Method::GET => {
                Ok(subscription_json(&s.subscription(&resource)?))
            }
            (["projects", _, "subscriptions", _], m, None) if m == Method::DELETE => {
                s.delete_subscription(&resource)?;
                Ok(json!({}))
            }
            (["projects", _, "subscriptions", _], m, Some("pull")) if m == Method::POST => {
                let max =
                    max_messages(body.get("maxMessages").and_then(Value::as_i64).unwrap_or(0))?;
                let got = s.pull(&resource, max)?;
                let list: Vec<Value> = got.iter().map(received_json).collect();
                Ok(json!({ "receivedMessages": list }))
            }
            (["projects", _, "subscriptions", _], m, Some("acknowledge")) if m == Method::POST => {
                s.acknowledge(&resource, &str_list(&body, "ackIds")?)?;
                Ok(json!({}))
            }
            (["projects", _, "subscriptions", _], m, Some("modifyAckDeadline"))
                if m == Method::POST =>
            {
                let secs = body
                    .get("ackDeadlineSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(0) as i32;
                s.modify_ack_deadline(&resource, &str_list(&body, "ackIds")?, secs)?;
                Ok(json!({}))
            }
            _ => Err(PubsubError::NotFound(format!(
                "the emulator has no REST route for {method} {path}"
            ))),
        }
    });
    reply(result)
}
