"""Pub/Sub emulator conformance, checked with Google's official Python client (google-cloud-pubsub).

The same script runs against imagen-load's built-in emulator and against Google's own emulator, which is
the reference: every check below passes against Google's emulator (gcloud beta emulators pubsub start).

    pip install google-cloud-pubsub
    PUBSUB_EMULATOR_HOST=127.0.0.1:8085 python3 tests/interop/pubsub_conformance.py
    PUBSUB_EMULATOR_HOST=127.0.0.1:8085 python3 tests/interop/pubsub_conformance.py --bench 20000

Reference emulator, on a free loopback port (Java 17; the data dir must exist):

    mkdir -p /tmp/gps-data
    gcloud beta emulators pubsub start --host-port=127.0.0.1:8085 --data-dir=/tmp/gps-data &

Output: `ok <check>` per passed check (some with a note in parentheses saying what was observed); on the
first failure one line `FAIL <check>: <expected> / <what happened>` and exit 1. Exit 0 when all pass,
2 on a usage error (PUBSUB_EMULATOR_HOST unset or not a loopback address: this script never talks to
the real service), 3 with `SKIP: pip install google-cloud-pubsub` when the client is not installed.
Every wait has a timeout, unary admin calls are made once (no client retry) with a 10 s deadline, and a
watchdog ends the run with `FAIL watchdog` after 60 s; a passing run takes about 20 s.

Each run uses project `conformance` and topic/subscription names with a random suffix, so reruns against
a long-lived emulator do not collide; it deletes what it created, also on failure.

Checks, in order:
  connect                   TCP connect to PUBSUB_EMULATOR_HOST within 5 s
  create_topic, get_topic, list_topics
  create_subscription       ack deadline 10 s; the answer says 10 and names the topic
  get_subscription, list_subscriptions (project listing and the topic's subscription listing)
  publish_attributes        publish data + attributes: a message id comes back; unary pull returns the same
                            data, attributes and message id, and a publish time
  unary_pull_empty          Pull (no return_immediately) on an empty subscription with a 3 s client deadline
                            must either return an empty response or end in DEADLINE_EXCEEDED, within the
                            deadline + 2 s; the note says which
  ack                       an acked message is not redelivered within the ack deadline (10 s) + 3 s
  modify_ack_deadline_extend  a message whose lease was extended to 30 s is not redelivered in that window
  modify_ack_deadline_zero  ModifyAckDeadline(0) on a pulled message: it is redelivered within 5 s; the
                            unary ReceivedMessage.delivery_attempt is 0 (no dead-letter policy)
  nack_redelivery           streaming pull (own subscription), message.nack(): the message comes back
                            within 10 s; the client's message.delivery_attempt is None both times (no
                            dead-letter policy)
  streaming_pull_2000       2,000 messages published in batches of up to 100 (2,000 distinct message ids),
                            then received by a streaming pull (own subscription): each data value exactly
                            once within 30 s, all acked, no duplicate in a 1 s settle time after the last
  validation_max_messages_zero  Pull with max_messages=0 -> INVALID_ARGUMENT
  validation_ack_deadline_below_10  CreateSubscription with ack deadline 5 s: recorded, not judged; passes on
                            INVALID_ARGUMENT or on a subscription stored with 5 or 10 (the note says which)
  publish_missing_topic     publishing to a topic that does not exist -> NOT_FOUND
  delete_subscription, delete_topic  then Get of each -> NOT_FOUND

What Google's emulator (gcloud pubsub-emulator, checked with google-cloud-pubsub 2.44) does, and what is
tolerated because of it:
  * An empty Pull without return_immediately is held open (a publish meanwhile answers it at once) and
    answered with an EMPTY response about 0.9-1 s before the client's deadline (3 s -> 2.05 s,
    10 s -> 9.1 s, the client's default 60 s -> 59.1 s); with a deadline of 1 s or less it answers empty
    at once. It never lets the call end in DEADLINE_EXCEEDED. A server may also let the deadline pass,
    so both are accepted.
  * Pull with max_messages=0 -> INVALID_ARGUMENT "No max_messages specified"; required here.
  * CreateSubscription with ack deadline 5 s (and even 1 s) is ACCEPTED and stored as given; 0 is stored
    as the default 10; above 600 -> INVALID_ARGUMENT "ack_deadline_secs out of bounds". The service's
    documented range is 10..600 s (0 = default 10), so below 10 the emulator is laxer than documented:
    hence the check only records what it sees.
  * delivery_attempt is 0 in the unary ReceivedMessage (None in the streaming client's Message) without a
    dead-letter policy, as documented for the service.
  * A nacked / ModifyAckDeadline(0) message is redelivered at once (a few ms on unary pull).
  * Publishing to a missing topic -> NOT_FOUND "Topic not found".
  * A cancelled StreamingPull is never noticed: every client cancel (RST_STREAM) logs
    `NoSuchMethodError: io.grpc.InternalStatus.asRuntimeException(...)` in `onRstStreamRead` (a gRPC
    version mismatch inside cloud-pubsub-emulator-0.8.20-all.jar, gcloud 528.0.0), the dead stream stays
    registered, and most messages published to that subscription afterwards go to it and are lost: a
    unary pull saw 1-3 of 20 messages and the rest not within 45 s, although the ack deadline was 10 s.
    (The service redelivers what is not acked by the deadline.) So each streaming check here has a
    subscription of its own, and no subscription is pulled from again after a stream on it was cancelled.
  * Message ids are small decimal counters shared by all topics ("1", "2", ...), not the service's long
    numbers: only a non-empty string is required.

--bench N: publish N messages of 1 KiB to a fresh topic (no subscription) as fast as the client allows,
batch settings max_messages=1000, max_latency=5 ms (max_bytes raised to 2 MiB so that 1000 messages of
1 KiB fit in one batch; the client's default of 1 MB would cut batches at ~970), and print
`python publisher: N msgs in S s = R msg/s`, timed from the first publish call until every future resolved.
"""
import argparse
import concurrent.futures
import ipaddress
import os
import socket
import sys
import threading
import time
import uuid

try:
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1
except ImportError:
    print("SKIP: pip install google-cloud-pubsub", flush=True)
    sys.exit(3)

PROJECT = "conformance"
ACK_DEADLINE_S = 10
MARGIN_S = 3
WATCHDOG_S = 60
# Unary admin calls: one attempt with a deadline. The client's default retry policy would hide an
# emulator's transient errors (and retry for up to a minute); a conformant emulator needs none.
ONCE = {"timeout": 10, "retry": None}


class CheckFailed(Exception):
    def __init__(self, check, expected, got):
        super().__init__(f"FAIL {check}: {expected} / {got}")


def finish(code):
    sys.stdout.flush()
    # The client's gRPC and streaming-pull threads are not all daemons; do not let one of them keep the
    # process alive after the verdict is printed.
    os._exit(code)


def start_watchdog(seconds, what):
    def fire():
        print(f"FAIL watchdog: {what} within {seconds:.0f} s / still running", flush=True)
        finish(1)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def emulator_address():
    """PUBSUB_EMULATOR_HOST as (host, port), only if every address it names is a loopback address."""
    value = os.environ.get("PUBSUB_EMULATOR_HOST", "")
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not value or not sep or not port.isdigit() or not host:
        print("usage: PUBSUB_EMULATOR_HOST=127.0.0.1:PORT python3 tests/interop/pubsub_conformance.py [--bench N]")
        finish(2)
    try:
        addrs = {info[4][0] for info in socket.getaddrinfo(host, int(port), proto=socket.IPPROTO_TCP)}
    except OSError as e:
        print(f"usage: PUBSUB_EMULATOR_HOST={value}: cannot resolve {host}: {e}")
        finish(2)
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs):
        print(f"usage: PUBSUB_EMULATOR_HOST={value} resolves to {sorted(addrs)}: only loopback is allowed")
        finish(2)
    return host, int(port)


class Conformance:
    def __init__(self, address):
        self.address = address
        self.suffix = uuid.uuid4().hex[:10]
        self.publisher = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()
        self.topic = self.publisher.topic_path(PROJECT, f"conf-{self.suffix}")
        self.sub = self.subscriber.subscription_path(PROJECT, f"conf-{self.suffix}")
        self.created_subs = []  # every subscription this run created, for cleanup
        self.reachable = False  # cleanup only talks to an emulator that answered `connect`
        self.topic_deleted = False
        self.extended = None  # the message whose lease check_ack extended (ReceivedMessage)
        self.extend_redelivered = 0

    # ---- helpers -------------------------------------------------------------------------------------

    def pull_once(self, timeout, max_messages=10):
        """One unary Pull. An empty answer and a DEADLINE_EXCEEDED are both 'nothing'."""
        try:
            resp = self.subscriber.pull(
                request={"subscription": self.sub, "max_messages": max_messages}, timeout=timeout, retry=None
            )
        except gexc.DeadlineExceeded:
            return []
        return list(resp.received_messages)

    def pull_until(self, check, count, timeout):
        """Pull until `count` messages arrived, or fail `check` after `timeout` seconds."""
        got, end = [], time.monotonic() + timeout
        while len(got) < count:
            left = end - time.monotonic()
            if left <= 0:
                raise CheckFailed(check, f"{count} message(s) within {timeout} s", f"{len(got)} arrived")
            got += self.pull_once(timeout=min(2.0, max(left, 0.5)))
        return got

    def observe(self, until):
        """Pull everything delivered until the monotonic time `until` (nothing is acked)."""
        seen = []
        while (left := until - time.monotonic()) > 0:
            seen += self.pull_once(timeout=min(2.0, max(left, 0.5)))
        return seen

    def ack(self, received):
        if received:
            self.subscriber.acknowledge(
                request={"subscription": self.sub, "ack_ids": [m.ack_id for m in received]}, **ONCE
            )

    def new_subscription(self, label):
        """A subscription of its own for one streaming check (see the docstring: cancelled streams)."""
        name = self.subscriber.subscription_path(PROJECT, f"conf-{self.suffix}-{label}")
        self.subscriber.create_subscription(
            request={"name": name, "topic": self.topic, "ack_deadline_seconds": ACK_DEADLINE_S}, **ONCE
        )
        self.created_subs.append(name)
        return name

    def publish(self, data, **attributes):
        return self.publisher.publish(self.topic, data, **attributes).result(timeout=10)

    def expect_error(self, check, error, call):
        name = error.__name__
        try:
            result = call()
        except error as e:
            return e
        except Exception as e:
            raise CheckFailed(check, name, f"{type(e).__name__}: {getattr(e, 'message', e)}")
        raise CheckFailed(check, name, f"success: {str(result).strip()[:120]!r}")

    # ---- checks --------------------------------------------------------------------------------------

    def check_connect(self):
        try:
            socket.create_connection(self.address, timeout=5).close()
        except OSError as e:
            raise CheckFailed("connect", f"a listener on {self.address[0]}:{self.address[1]}", e)
        self.reachable = True

    def check_create_topic(self):
        topic = self.publisher.create_topic(name=self.topic, **ONCE)
        if topic.name != self.topic:
            raise CheckFailed("create_topic", f"name {self.topic}", f"name {topic.name}")

    def check_get_topic(self):
        topic = self.publisher.get_topic(topic=self.topic, **ONCE)
        if topic.name != self.topic:
            raise CheckFailed("get_topic", f"name {self.topic}", f"name {topic.name}")

    def check_list_topics(self):
        names = [t.name for t in self.publisher.list_topics(project=f"projects/{PROJECT}", **ONCE)]
        if self.topic not in names:
            raise CheckFailed("list_topics", f"{self.topic} listed", f"{len(names)} topics, not it")

    def check_create_subscription(self):
        s = self.subscriber.create_subscription(
            request={"name": self.sub, "topic": self.topic, "ack_deadline_seconds": ACK_DEADLINE_S}, **ONCE
        )
        self.created_subs.append(self.sub)
        got = (s.name, s.topic, s.ack_deadline_seconds)
        if got != (self.sub, self.topic, ACK_DEADLINE_S):
            raise CheckFailed("create_subscription", (self.sub, self.topic, ACK_DEADLINE_S), got)

    def check_get_subscription(self):
        s = self.subscriber.get_subscription(subscription=self.sub, **ONCE)
        got = (s.name, s.topic, s.ack_deadline_seconds)
        if got != (self.sub, self.topic, ACK_DEADLINE_S):
            raise CheckFailed("get_subscription", (self.sub, self.topic, ACK_DEADLINE_S), got)

    def check_list_subscriptions(self):
        names = [s.name for s in self.subscriber.list_subscriptions(project=f"projects/{PROJECT}", **ONCE)]
        if self.sub not in names:
            raise CheckFailed("list_subscriptions", f"{self.sub} in the project's list", f"{len(names)}, not it")
        of_topic = list(self.publisher.list_topic_subscriptions(topic=self.topic, **ONCE))
        if of_topic != [self.sub]:
            raise CheckFailed("list_subscriptions", f"topic's subscriptions [{self.sub}]", of_topic)

    def check_publish_attributes(self):
        data, attrs = f"attr-{self.suffix}".encode(), {"kind": "conformance", "utf8": "h\u00e9llo", "empty": ""}
        message_id = self.publish(data, **attrs)
        if not isinstance(message_id, str) or not message_id:
            raise CheckFailed("publish_attributes", "a non-empty message id", repr(message_id))
        [m] = self.pull_until("publish_attributes", 1, timeout=10)
        self.ack([m])
        got = (m.message.data, dict(m.message.attributes), m.message.message_id)
        if got != (data, attrs, message_id):
            raise CheckFailed("publish_attributes", (data, attrs, message_id), got)
        if not m.message.publish_time:
            raise CheckFailed("publish_attributes", "a publish_time", "none")
        return f"message id {message_id!r}"

    def check_unary_pull_empty(self):
        t0 = time.monotonic()
        try:
            resp = self.subscriber.pull(
                request={"subscription": self.sub, "max_messages": 10}, timeout=3.0, retry=None
            )
            outcome = "empty response"
            if resp.received_messages:
                raise CheckFailed(
                    "unary_pull_empty", "no message", f"{len(resp.received_messages)} (an acked one again?)"
                )
        except gexc.DeadlineExceeded:
            outcome = "DEADLINE_EXCEEDED"
        except gexc.GoogleAPICallError as e:
            raise CheckFailed("unary_pull_empty", "empty or DEADLINE_EXCEEDED", f"{type(e).__name__}: {e.message}")
        took = time.monotonic() - t0
        if took > 5.0:
            raise CheckFailed("unary_pull_empty", "an answer within 3 s + 2 s", f"{outcome} after {took:.1f} s")
        return f"3 s deadline: {outcome} after {took:.2f} s"

    def check_ack(self):
        """Pulls A and B, acks A, extends B's lease; one observation window then judges both."""
        self.publish(f"ack-{self.suffix}".encode())
        self.publish(f"extend-{self.suffix}".encode())
        got = {m.message.data.decode(): m for m in self.pull_until("ack", 2, timeout=10)}
        pulled_at = time.monotonic()
        if set(got) != {f"ack-{self.suffix}", f"extend-{self.suffix}"}:
            raise CheckFailed("ack", "the 2 messages just published", sorted(got))
        self.ack([got[f"ack-{self.suffix}"]])
        extended = got[f"extend-{self.suffix}"]
        self.subscriber.modify_ack_deadline(
            request={"subscription": self.sub, "ack_ids": [extended.ack_id], "ack_deadline_seconds": 30},
            **ONCE,
        )
        self.extended = extended
        window = ACK_DEADLINE_S + MARGIN_S
        seen = [m.message.data.decode() for m in self.observe(pulled_at + window)]
        self.extend_redelivered = seen.count(f"extend-{self.suffix}")
        acked_again = seen.count(f"ack-{self.suffix}")
        if acked_again:
            raise CheckFailed("ack", f"no redelivery within {window} s", f"redelivered {acked_again} time(s)")
        if len(seen) != acked_again + self.extend_redelivered:
            raise CheckFailed("ack", "no other message", seen)
        return f"not redelivered within {window} s"

    def check_modify_ack_deadline_extend(self):
        if self.extend_redelivered:
            raise CheckFailed(
                "modify_ack_deadline_extend",
                f"no redelivery within {ACK_DEADLINE_S + MARGIN_S} s of a lease extended to 30 s",
                f"redelivered {self.extend_redelivered} time(s)",
            )
        return f"lease 10 s -> 30 s, not redelivered within {ACK_DEADLINE_S + MARGIN_S} s"

    def check_modify_ack_deadline_zero(self):
        extended = self.extended
        t0 = time.monotonic()
        self.subscriber.modify_ack_deadline(
            request={"subscription": self.sub, "ack_ids": [extended.ack_id], "ack_deadline_seconds": 0}, **ONCE
        )
        [m] = self.pull_until("modify_ack_deadline_zero", 1, timeout=5)
        took = time.monotonic() - t0
        self.ack([m])
        if m.message.message_id != extended.message.message_id:
            raise CheckFailed("modify_ack_deadline_zero", f"message {extended.message.message_id} again",
                              f"message {m.message.message_id} ({m.message.data!r})")
        if m.delivery_attempt != 0:
            raise CheckFailed("modify_ack_deadline_zero", "delivery_attempt 0 (no dead-letter policy)",
                              m.delivery_attempt)
        return f"redelivered after {took * 1000:.0f} ms, delivery_attempt 0"

    def check_nack_redelivery(self):
        data = f"nack-{self.suffix}".encode()
        deliveries, lock, done = [], threading.Lock(), threading.Event()

        def callback(message):
            with lock:
                deliveries.append((time.monotonic(), message.data, message.delivery_attempt))
                first = len(deliveries) == 1
            if first:
                message.nack()
            else:
                message.ack()
                done.set()

        stream = self.subscriber.subscribe(self.new_subscription("nack"), callback)
        try:
            self.publish(data)
            if not done.wait(10):
                raise CheckFailed("nack_redelivery", "the nacked message again within 10 s",
                                  f"{len(deliveries)} delivery(ies)")
        finally:
            stream.cancel()
            try:
                stream.result(timeout=10)
            except Exception:
                pass
        with lock:
            (t1, d1, a1), (t2, d2, a2) = deliveries[:2]
        if (d1, d2) != (data, data):
            raise CheckFailed("nack_redelivery", f"{data!r} twice", (d1, d2))
        if (a1, a2) != (None, None):
            raise CheckFailed("nack_redelivery", "delivery_attempt None (no dead-letter policy)", (a1, a2))
        return f"redelivered after {(t2 - t1) * 1000:.0f} ms, delivery_attempt None"

    def check_streaming_pull_2000(self):
        total = 2000
        expected = {f"bulk-{self.suffix}-{i}".encode() for i in range(total)}
        sub = self.new_subscription("bulk")
        batched = pubsub_v1.PublisherClient(pubsub_v1.types.BatchSettings(max_messages=100, max_latency=0.01))
        futures = [batched.publish(self.topic, data) for data in sorted(expected)]
        _, pending = concurrent.futures.wait(futures, timeout=20)
        if pending:
            raise CheckFailed("streaming_pull_2000", f"{total} publishes within 20 s", f"{len(pending)} pending")
        ids = {f.result() for f in futures}
        if len(ids) != total:
            raise CheckFailed("streaming_pull_2000", f"{total} distinct message ids", len(ids))

        counts, lock, all_in = {}, threading.Lock(), threading.Event()

        def callback(message):
            message.ack()
            with lock:
                counts[message.data] = counts.get(message.data, 0) + 1
                if expected <= counts.keys():
                    all_in.set()

        t0 = time.monotonic()
        stream = self.subscriber.subscribe(sub, callback)
        try:
            arrived = all_in.wait(30)
            took = time.monotonic() - t0
            time.sleep(1.0)  # settle: a duplicate would show up here
        finally:
            stream.cancel()
            try:
                stream.result(timeout=10)
            except Exception:
                pass
        with lock:
            missing = len(expected - counts.keys())
            dups = {d: n for d, n in counts.items() if n > 1}
            strangers = sorted(counts.keys() - expected)
        if not arrived:
            raise CheckFailed("streaming_pull_2000", f"all {total} within 30 s", f"{missing} missing")
        if dups:
            example = next(iter(dups.items()))
            raise CheckFailed("streaming_pull_2000", "each exactly once", f"{len(dups)} duplicated, e.g. {example}")
        if strangers:
            raise CheckFailed("streaming_pull_2000", "only the bulk messages", f"also {strangers[:3]}")
        return f"{total} received once each in {took:.1f} s"

    def check_validation_max_messages_zero(self):
        e = self.expect_error(
            "validation_max_messages_zero",
            gexc.InvalidArgument,
            lambda: self.subscriber.pull(
                request={"subscription": self.sub, "max_messages": 0}, timeout=5, retry=None
            ),
        )
        return f"INVALID_ARGUMENT {e.message!r}"

    def check_validation_ack_deadline_below_10(self):
        name = self.subscriber.subscription_path(PROJECT, f"conf-{self.suffix}-ack5")
        try:
            s = self.subscriber.create_subscription(
                request={"name": name, "topic": self.topic, "ack_deadline_seconds": 5}, **ONCE
            )
        except gexc.InvalidArgument as e:
            return f"rejected: INVALID_ARGUMENT {e.message!r}"
        except gexc.GoogleAPICallError as e:
            raise CheckFailed("validation_ack_deadline_below_10", "INVALID_ARGUMENT or a subscription",
                              f"{type(e).__name__}: {e.message}")
        self.created_subs.append(name)
        stored = self.subscriber.get_subscription(subscription=name, **ONCE).ack_deadline_seconds
        if (s.ack_deadline_seconds, stored) not in ((5, 5), (10, 10)):
            raise CheckFailed("validation_ack_deadline_below_10", "stored as 5 or as 10",
                              f"answered {s.ack_deadline_seconds}, stored {stored}")
        self.subscriber.delete_subscription(subscription=name, **ONCE)
        self.created_subs.remove(name)
        return f"accepted, stored as {stored} s"

    def check_publish_missing_topic(self):
        missing = self.publisher.topic_path(PROJECT, f"missing-{self.suffix}")
        e = self.expect_error(
            "publish_missing_topic",
            gexc.NotFound,
            lambda: self.publisher.publish(missing, b"nobody").result(timeout=10),
        )
        return f"NOT_FOUND {e.message!r}"

    def check_delete_subscription(self):
        self.subscriber.delete_subscription(subscription=self.sub, **ONCE)
        self.created_subs.remove(self.sub)
        self.expect_error("delete_subscription", gexc.NotFound,
                          lambda: self.subscriber.get_subscription(subscription=self.sub, **ONCE))
        return "get -> NOT_FOUND"

    def check_delete_topic(self):
        self.publisher.delete_topic(topic=self.topic, **ONCE)
        self.topic_deleted = True
        self.expect_error("delete_topic", gexc.NotFound,
                          lambda: self.publisher.get_topic(topic=self.topic, **ONCE))
        return "get -> NOT_FOUND"

    CHECKS = [
        "connect", "create_topic", "get_topic", "list_topics", "create_subscription", "get_subscription",
        "list_subscriptions", "publish_attributes", "unary_pull_empty", "ack", "modify_ack_deadline_extend",
        "modify_ack_deadline_zero", "nack_redelivery", "streaming_pull_2000", "validation_max_messages_zero",
        "validation_ack_deadline_below_10", "publish_missing_topic", "delete_subscription", "delete_topic",
    ]

    def run(self):
        try:
            for name in self.CHECKS:
                try:
                    note = getattr(self, f"check_{name}")()
                except CheckFailed:
                    raise
                except Exception as e:  # an API error or a timeout where the check expected an answer
                    raise CheckFailed(name, "no error", f"{type(e).__name__}: {getattr(e, 'message', e)}")
                print(f"ok {name}" + (f" ({note})" if note else ""), flush=True)
        except CheckFailed as failure:
            print(failure, flush=True)
            return 1
        finally:
            self.cleanup()
        return 0

    def cleanup(self):
        """Best effort: delete whatever this run still owns."""
        if not self.reachable:
            return
        for name in list(self.created_subs):
            try:
                self.subscriber.delete_subscription(subscription=name, **ONCE)
            except Exception:
                pass
        if not self.topic_deleted:
            try:
                self.publisher.delete_topic(topic=self.topic, **ONCE)
            except Exception:
                pass


def bench(count):
    publisher = pubsub_v1.PublisherClient(
        pubsub_v1.types.BatchSettings(max_messages=1000, max_bytes=2 * 1024 * 1024, max_latency=0.005)
    )
    topic = publisher.topic_path(PROJECT, f"bench-{uuid.uuid4().hex[:10]}")
    try:
        publisher.create_topic(name=topic, **ONCE)
    except Exception as e:
        print(f"FAIL bench: a topic created / {type(e).__name__}: {getattr(e, 'message', e)}")
        return 1
    payload = os.urandom(1024)
    try:
        t0 = time.monotonic()
        futures = [publisher.publish(topic, payload) for _ in range(count)]
        done, pending = concurrent.futures.wait(futures, timeout=60 + count / 100)
        seconds = time.monotonic() - t0
        failed = [f for f in done if f.exception() is not None]
        if pending or failed:
            example = failed[0].exception() if failed else "timeout"
            print(f"FAIL bench: {count} publishes acknowledged / "
                  f"{len(pending)} pending, {len(failed)} failed ({example})")
            return 1
        print(f"python publisher: {count} msgs in {seconds:.2f} s = {count / seconds:.0f} msg/s", flush=True)
        return 0
    finally:
        try:
            publisher.delete_topic(topic=topic, **ONCE)
        except Exception:
            pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", type=int, metavar="N", help="only measure the publisher: N messages of 1 KiB")
    args = parser.parse_args()
    address = emulator_address()
    if args.bench is not None:
        start_watchdog(90 + args.bench / 100, f"{args.bench} publishes")
        finish(bench(args.bench))
    start_watchdog(WATCHDOG_S, "all checks")
    finish(Conformance(address).run())


if __name__ == "__main__":
    main()
