"""Throughput and footprint of the meter simulator (prints figures, asserts nothing).

Run: ``.venv/bin/python -m simulators.meter.bench [--meters 1000] [--seconds 1]``.
Client and server share the machine, so the figures are end-to-end.
"""

from __future__ import annotations

import argparse
import logging
import resource
import socket
import statistics
import time
from collections.abc import Callable

from . import framing
from .model import MeterConfig
from .server import MeterSimulator

AARQ_LLS = bytes.fromhex(
    "6036A1090607608574050801018A0207808B0760857405080201AC0A8008313233343536"
    "3738BE10040E01000000065F1F040000181F0100"
)
RLRQ = b"\x62\x03\x80\x01\x00"
GET_ENERGY = b"\xc0\x01\xc1\x00\x03\x01\x00\x01\x08\x00\xff\x02\x00"
EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")


def _exchange(sock: socket.socket, apdu: bytes, sap: int = 32) -> bytes:
    sock.sendall(framing.wrap(sap, 1, apdu))
    head = b""
    while len(head) < 8:
        head += sock.recv(8 - len(head))
    n = int.from_bytes(head[6:8], "big")
    body = b""
    while len(body) < n:
        body += sock.recv(n - len(body))
    return body


def _rate(fn: Callable[[], None], seconds: float) -> float:
    count, end = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < end:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def _median(fn: Callable[[], float], runs: int = 3) -> float:
    return statistics.median(fn() for _ in range(runs))


def bench_lls(port: int, seconds: float) -> tuple[float, float]:
    def associate() -> None:
        with socket.create_connection(("127.0.0.1", port)) as s:
            _exchange(s, AARQ_LLS)
            _exchange(s, RLRQ)

    assoc = _median(lambda: _rate(associate, seconds))
    with socket.create_connection(("127.0.0.1", port)) as s:
        _exchange(s, AARQ_LLS)
        reads = _median(lambda: _rate(lambda: _exchange(s, GET_ENERGY), seconds))
    return assoc, reads


def bench_gmac(port: int, seconds: float) -> tuple[float, float]:
    import structlog
    from dlms_cosem import cosem, enumerations
    from dlms_cosem.client import DlmsClient
    from dlms_cosem.io import BlockingTcpIO, TcpTransport
    from dlms_cosem.security import HighLevelSecurityGmacAuthentication

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR)
    )
    energy = cosem.CosemAttribute(
        enumerations.CosemInterface.REGISTER, cosem.Obis(1, 0, 1, 8, 0), 2
    )
    ic = [1]

    def client() -> DlmsClient:
        io = BlockingTcpIO(host="127.0.0.1", port=port)
        c = DlmsClient(
            transport=TcpTransport(
                client_logical_address=1, server_logical_address=1, io=io
            ),
            authentication=HighLevelSecurityGmacAuthentication(challenge_length=32),
            encryption_key=EK,
            authentication_key=AK,
            client_system_title=b"BENCH001",
            client_initial_invocation_counter=ic[0],
        )
        return c

    def associate() -> None:
        c = client()
        with c.session():
            pass
        ic[0] = c.client_invocation_counter + 1

    assoc = _median(lambda: _rate(associate, seconds))
    c = client()
    c.connect()
    c.associate()
    reads = _median(lambda: _rate(lambda: c.get(energy), seconds))
    c.release_association()
    c.disconnect()
    return assoc, reads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args(argv)

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    sim = MeterSimulator([MeterConfig(index=i) for i in range(args.meters)]).start()
    startup = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        port = sim.port(0)
        print(f"start {args.meters} meters: {startup:.2f} s")
        print(
            f"memory: {(rss1 - rss0) / 1024:.1f} MiB for {args.meters} meters "
            f"({(rss1 - rss0) / args.meters:.1f} KiB per meter)"
        )
        assoc, reads = bench_lls(port, args.seconds)
        print(
            f"LLS wrapper (raw client): {assoc:.0f} associations/s, {reads:.0f} reads/s"
        )
        assoc, reads = bench_gmac(port, args.seconds)
        print(
            f"HLS-GMAC wrapper (dlms-cosem client): {assoc:.0f} associations/s, "
            f"{reads:.0f} reads/s"
        )
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
