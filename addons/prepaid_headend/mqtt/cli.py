"""``prepaid-mqtt-ingest``: store the events meters and concentrators push.

    prepaid-mqtt-ingest -c trytond.conf -d DB [--site SITE] [--host H]
        [--port P] [--batch-size 500] [--batch-wait 1.0] [--duration S]
        [--max-messages N] [--user admin] [--client-id ID] [-v]

Subscribes (QoS 1) to ``prepaid/<site>/meters/+/events`` with a persistent
session and manual acknowledgements: each batch is stored in one transaction
(``mqtt_bridge.store_messages``) and acknowledged after the commit, so
messages that arrive while the command is stopped, or a batch interrupted by
a crash, are delivered (again) on the next start; duplicates are skipped.
Broker settings and site come from the head-end's communication settings
(back office) unless given here.  Runs until SIGTERM/SIGINT, or
``--duration`` seconds, or ``--max-messages`` received.  Exit status 0; 1
when the database or the broker cannot be used or a batch cannot be stored.

This module is the pure part of the command (options, signals, the loop):
the database side (user, broker settings, the ``store``) is given to
:func:`main` by the Tryton layer, ``prepaid_headend/mqtt_ingest.py`` (the
console script), so the ``mqtt`` package imports neither trytond nor the
module's Tryton code.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from .client import BrokerSettings, Inbound, MqttError, Subscriber
from .ingest import BatchResult, IngestError, IngestStats, ingest_loop
from .topics import TopicError, events_filter

EXIT_OK, EXIT_ERROR = 0, 1

Store = Callable[[Sequence[Inbound]], BatchResult]
# Opens the database named by the options: (store for ingest_loop, broker, site)
OpenDatabase = Callable[[argparse.Namespace], tuple[Store, BrokerSettings, str]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='prepaid-mqtt-ingest',
        description="Store the meter events pushed over MQTT in the head-end.",
    )
    parser.add_argument(
        '-c',
        '--config',
        default=os.environ.get('TRYTOND_CONFIG'),
        help="trytond configuration file (default $TRYTOND_CONFIG)",
    )
    parser.add_argument('-d', '--database', required=True, help="database name")
    parser.add_argument('--user', default='admin', help="login used to store")
    parser.add_argument('--site', help="topic site (default: configuration)")
    parser.add_argument('--host', help="broker host (default: configuration)")
    parser.add_argument('--port', type=int, help="broker port (default: config.)")
    parser.add_argument('--client-id', help="MQTT client id of the session")
    parser.add_argument('--batch-size', type=int, default=500)
    parser.add_argument(
        '--batch-wait',
        type=float,
        default=1.0,
        help="seconds to wait for a first message of a batch",
    )
    parser.add_argument('--duration', type=float, help="stop after S seconds")
    parser.add_argument(
        '--max-messages', type=int, help="stop after N messages received"
    )
    parser.add_argument('-v', '--verbose', action='store_true')
    return parser


def main(argv: Sequence[str] | None, open_database: OpenDatabase) -> int:
    options = build_parser().parse_args(argv)
    if options.batch_size < 1 or options.batch_wait <= 0:
        print("prepaid-mqtt-ingest: batch size and wait must be > 0", file=sys.stderr)
        return EXIT_ERROR
    logging.basicConfig(
        level=logging.INFO if options.verbose else logging.WARNING,
        format='%(asctime)s %(levelname)s %(name)s %(message)s',
    )
    try:
        store, broker, site = open_database(options)
        filters = [events_filter(site)]
    except (TopicError, LookupError) as error:
        print(f"prepaid-mqtt-ingest: {error}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as error:  # unknown database, bad configuration
        print(f"prepaid-mqtt-ingest: {error}", file=sys.stderr)
        return EXIT_ERROR

    stop = threading.Event()
    previous = _install_signals(stop)
    try:
        return _run(options, store, broker, site, filters, stop)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run(options, store, broker, site, filters, stop) -> int:
    try:
        subscriber = Subscriber(
            broker,
            filters,
            client_id=options.client_id or f"prepaid-ingest-{options.database}-{site}",
            clean_session=False,
            manual_ack=True,
        )
        subscriber.start()
    except MqttError as error:
        print(f"prepaid-mqtt-ingest: {error}", file=sys.stderr)
        return EXIT_ERROR
    print(f"prepaid-mqtt-ingest: subscribed to {filters[0]} on {broker.host}")
    stats = IngestStats()
    try:
        stats = ingest_loop(
            subscriber,
            store,
            duration=options.duration,
            max_messages=options.max_messages,
            batch_size=options.batch_size,
            batch_wait=options.batch_wait,
            stop=stop,
        )
    except IngestError as error:
        print(f"prepaid-mqtt-ingest: {error}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        subscriber.stop()
    print(f"prepaid-mqtt-ingest: {stats.summary()}")
    return EXIT_OK


def _install_signals(stop: threading.Event) -> dict[int, object]:
    "Stop after the current batch on SIGTERM/SIGINT; return the old handlers"
    if threading.current_thread() is not threading.main_thread():
        return {}  # signals can only be handled on the main thread

    def handler(signum, frame) -> None:
        stop.set()

    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, handler)
    return previous
