"""Figures of the MQTT path (prints medians; no assertion).

    .venv/bin/python -m trytond.modules.prepaid_headend.mqtt.bench [--count N]

- codec: encode and decode of one message (median of runs of 1000);
- broker: N messages published at QoS 1 in one ``publish_many`` (all PUBACKs
  awaited) and received by a subscriber on Mosquitto 127.0.0.1:1883.
  Mosquitto queues at most ``max_queued_messages`` (default 1000) per
  subscriber and drops the rest, even at QoS 1: N stays below it here, and a
  production broker serving the ingest needs a larger limit (see the report).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
import uuid

from . import (
    BrokerSettings,
    EventMessage,
    Publisher,
    Subscriber,
    decode,
    encode,
    events_filter,
    events_topic,
)


def sample(serial: str = 'SIM0', code: int = 53) -> EventMessage:
    return EventMessage(
        serial=serial,
        timestamp=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        source='DC-0007',
        kind='event',
        code=code,
        text="Limiter threshold exceeded",
        registers={'1.0.1.8.0.255': 1234.5},
    )


def bench_codec(runs: int = 5, size: int = 1000) -> tuple[float, float]:
    message = sample()
    payload = encode(message)
    enc, dec = [], []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(size):
            encode(message)
        enc.append((time.perf_counter() - start) / size)
        start = time.perf_counter()
        for _ in range(size):
            decode(payload)
        dec.append((time.perf_counter() - start) / size)
    return statistics.median(enc), statistics.median(dec)


def bench_broker(count: int, runs: int = 3) -> list[float]:
    broker = BrokerSettings(timeout=30)
    rates = []
    for _ in range(runs):
        site = f"bench{uuid.uuid4().hex[:8]}"
        items = [
            (events_topic(site, f"M{i % 50}"), encode(sample(f"M{i % 50}", i)))
            for i in range(count)
        ]
        with Subscriber(broker, [events_filter(site)]) as sub, Publisher(broker) as pub:
            start = time.perf_counter()
            pub.publish_many(items)
            published = time.perf_counter() - start
            got = 0
            while got < count:
                batch = sub.get_batch(count, 2)
                if not batch:
                    break
                got += len(batch)
            received = time.perf_counter() - start
        print(
            f"  {count} msgs: publish+PUBACK {count / published:,.0f}/s, "
            f"end to end {got / received:,.0f}/s ({got} received)"
        )
        rates.append(got / received)
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=900)
    options = parser.parse_args(argv)
    enc, dec = bench_codec()
    print(f"codec: encode {enc * 1e6:.1f} us, decode {dec * 1e6:.1f} us (median)")
    print("broker (QoS 1, Mosquitto 127.0.0.1:1883):")
    rates = bench_broker(options.count)
    print(f"median end-to-end rate {statistics.median(rates):,.0f} msg/s")
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
