"""Benchmark of the STS token engine: tokens per second, one core.

Measures generation with a known decoder key and with key derivation per token
(a different meter each time, so the derivation cache never hits), for DKGA02
and DKGA04, EA07 and EA11: through the ``prepaid-sts batch`` command in a
subprocess (wall time including interpreter start-up and JSON in/out) and
in-process for reference.  Prints medians of several runs.

    .venv/bin/python bench/sts_tokens.py [--n 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE = "trytond.modules.prepaid_sts.engine.cli"
VK02 = "abababababababab"
VK04 = "abababababababab949494949494949401234567"
KEY07 = "87f3ecbb2e46b48f"
KEY11 = "929bd3a415c9420a05ec5ee9f3ce91c3"


def scenarios() -> dict[str, dict]:
    return {
        "EA07 known key": {"ea": "07", "decoder_key": KEY07},
        "EA11 known key": {"ea": "11", "decoder_key": KEY11},
        "DKGA02+EA07 derive": {"ea": "07", "dkga": "02", "vk": VK02},
        "DKGA04+EA07 derive": {"ea": "07", "dkga": "04", "vk": VK04},
        "DKGA04+EA11 derive": {"ea": "11", "dkga": "04", "vk": VK04},
    }


def _pan(i: int) -> str:
    from trytond.modules.prepaid_sts.engine import make_pan

    return make_pan("600727", f"{i:011d}")


def batch_lines(spec: dict, n: int, offset: int) -> str:
    out = []
    for i in range(n):
        req = {
            "op": "token",
            "token_class": 0,
            "subclass": 0,
            "ea": spec["ea"],
            "tid": 5_000_000 + i,
            "rnd": i & 15,
            "amount": f"{(i % 5000) + 1}.5",
        }
        if "decoder_key" in spec:
            req["decoder_key"] = spec["decoder_key"]
        else:
            req.update(
                vending_key=spec["vk"],
                dkga=spec["dkga"],
                pan=_pan(offset + i),
                key_type=2,
                sgc="123456",
                tariff_index="01",
                krn=1,
                base_date="14",
            )
        out.append(json.dumps(req))
    return "\n".join(out) + "\n"


def run_batch(payload: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", MODULE, "batch"],
        input=payload,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    elapsed = time.perf_counter() - start
    if '"error"' in proc.stdout:
        raise SystemExit("batch reported errors: " + proc.stdout[:300])
    return elapsed


def in_process(spec: dict, n: int, offset: int) -> float:
    from trytond.modules.prepaid_sts.engine import credit_token, derive_decoder_key

    amounts = [Decimal(f"{(i % 5000) + 1}.5") for i in range(n)]
    pans = None if "decoder_key" in spec else [_pan(offset + i) for i in range(n)]
    ea = spec["ea"]
    start = time.perf_counter()
    if pans is None:
        key = bytes.fromhex(spec["decoder_key"])
        for i in range(n):
            credit_token(key, ea, 0, 0, amount=amounts[i], tid=5_000_000 + i)
    else:
        vk = bytes.fromhex(spec["vk"])
        dkga = spec["dkga"]
        for i in range(n):
            key = derive_decoder_key(vk, dkga, pans[i], 2, "123456", "01", 1, "14", ea)
            credit_token(key, ea, 0, 0, amount=amounts[i], tid=5_000_000 + i)
    return time.perf_counter() - start


def startup() -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", MODULE, "batch"],
        input="",
        capture_output=True,
        cwd=ROOT,
        check=True,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="tokens per run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    n, runs = args.n, args.runs
    start_s = statistics.median(startup() for _ in range(runs))
    print(f"batch start-up (empty input), median of {runs}: {start_s * 1000:.0f} ms")
    print(
        f"{'scenario':24} {'batch tok/s':>12} {'batch excl. start-up':>21} "
        f"{'in-process tok/s':>17}"
    )
    for name, spec in scenarios().items():
        # Different meters for every run so that derivation caches never hit.
        payloads = [batch_lines(spec, n, r * n) for r in range(runs)]
        times = [run_batch(p) for p in payloads]
        batch_rate = statistics.median(n / t for t in times)
        steady = statistics.median(n / max(t - start_s, 1e-9) for t in times)
        proc_rate = statistics.median(
            n / in_process(spec, n, (runs + r) * n) for r in range(runs)
        )
        print(f"{name:24} {batch_rate:12,.0f} {steady:21,.0f} {proc_rate:17,.0f}")
    print(f"(n = {n} tokens per run, median of {runs} runs, one core)")


if __name__ == "__main__":
    main()
