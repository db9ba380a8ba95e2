"""Writing raw signal payloads to a Kafka topic (load generation, tests, forwarding)."""

from __future__ import annotations

from typing import Iterable, Sequence

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def ensure_topic(brokers: Sequence[str], topic: str, partitions: int = 1, timeout: float = 15.0) -> None:
    """Create ``topic`` if it does not exist."""
    admin = AdminClient({"bootstrap.servers": ",".join(brokers)})
    if topic in admin.list_topics(timeout=timeout).topics:
        return
    for _, fut in admin.create_topics([NewTopic(topic, num_partitions=partitions,
                                                replication_factor=1)]).items():
        try:
            fut.result(timeout=timeout)
        except KafkaException as e:
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise


def produce(brokers: Sequence[str], topic: str, payloads: Iterable[bytes], timeout: float = 60.0) -> int:
    """Send payloads to ``topic``; returns how many were acknowledged (raises on delivery errors)."""
    p = Producer({"bootstrap.servers": ",".join(brokers), "linger.ms": 20,
                  "batch.num.messages": 10000, "queue.buffering.max.messages": 500000,
                  "compression.type": "lz4", "enable.idempotence": False})
    failures: list = []
    acked = [0]

    def on_delivery(err, _msg):
        if err is not None:
            failures.append(err)
        else:
            acked[0] += 1

    n = 0
    for payload in payloads:
        while True:
            try:
                p.produce(topic, value=payload, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        n += 1
        if n % 10000 == 0:
            p.poll(0)
    remaining = p.flush(timeout)
    if remaining or failures:
        raise KafkaException(f"{remaining} messages unsent, {len(failures)} failed "
                             f"(first: {failures[0] if failures else 'timeout'})")
    return acked[0]
