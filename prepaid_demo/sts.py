"""STS for the demo utility: a DEMO vending key and commissioned keypad meters.

``setup_demo_vending`` (``prepaid_demo.vending``) calls
``Demo.extend_vending(meters, seed)`` with the demo meters where prepaid_sts
is activated; this part then

- stores a vending key (SGC ``DEMO_SGC``, KRN 1, key type 2, base date 2014,
  DKGA04, EA07) whose 160 key bits come from the demo seed.  It is a DEMO
  key, named so: anyone with the seed can derive it, so it must never load a
  real meter.  It goes through the key store's write-only ``key`` field like
  a custodian's entry, so it is stored encrypted with the master key;
- gives every keypad and smart prepaid meter without STS parameters a PAN
  (IIN 600727, the meter's 11-digit serial as DRN, Luhn check digit), the demo
  SGC and KRN, and the tariff index of its customer's tariff.  A smart meter
  takes its credit as STS tokens through the head-end (the token gateway of
  the simulated meter), so it needs them as much as a keypad meter does.

:func:`demo_decoder_key` derives a demo meter's decoder key from the seed, as a
meter manufacturer loads it at the factory: ``scripts/demo`` gives these keys
to the simulated meters so that they accept the tokens the head-end sends.

Meters already commissioned and a key already stored are left alone, so it
can run again.  Without a master key nothing is stored (the key could not be
encrypted) and the counts say so.
"""

from __future__ import annotations

import random

from trytond.model.exceptions import ValidationError
from trytond.modules.prepaid_sts import masterkey
from trytond.modules.prepaid_sts.engine import PanError, derive_decoder_key, make_pan
from trytond.pool import Pool
from trytond.transaction import Transaction, without_check_access

DEMO_SGC = "999910"
DEMO_KRN = 1
DEMO_IIN = "600727"
DEMO_KEY_NAME = "DEMO vending key (generated from the demo seed: never for real meters)"
#: Meter kinds that take STS tokens: keyed in, or sent by the head-end.
STS_METER_KINDS = ("sts_keypad", "smart_prepaid")
#: STS parameters of the demo key and of the meters it serves.
DEMO_KEY_PARAMETERS = {
    "sgc": DEMO_SGC,
    "krn": DEMO_KRN,
    "key_type": "2",
    "base_date": "14",
    "dkga": "04",
    "ea": "07",
}


def demo_vending_key(seed: int = 8000) -> bytes:
    """The demo's 20-byte DKGA04 vending key, derived from the seed only."""
    return random.Random(f"{seed}-sts-vending-key").randbytes(20)


def demo_pan(serial: str) -> str | None:
    """The PAN of a demo meter: its 11-digit serial as DRN; None otherwise."""
    try:
        return make_pan(DEMO_IIN, serial)
    except PanError:
        return None


def demo_decoder_key(meter, seed: int = 8000) -> bytes | None:
    """The decoder key of a demo meter commissioned by this module (derived
    from the seed, like the vending key); None for any other meter."""
    p = DEMO_KEY_PARAMETERS
    if not meter.sts_pan or (meter.sts_sgc, meter.sts_krn) != (p["sgc"], p["krn"]):
        return None
    return derive_decoder_key(
        demo_vending_key(seed),
        p["dkga"],
        meter.sts_pan,
        int(p["key_type"]),
        p["sgc"],
        meter.sts_tariff_index,
        p["krn"],
        p["base_date"],
        p["ea"],
    )


class Demo:
    "The STS part of the demo (see prepaid_demo.vending)"

    @classmethod
    def extend_vending(cls, meters, seed):
        counts = {}
        try:
            masterkey._configured_key()
        except masterkey.MasterKeyError:
            counts["sts_key"] = "not stored: no master key configured"
            counts["sts_meters_commissioned"] = 0
            return counts
        key = cls._setup_vending_key(seed)
        counts["sts_key"] = key.rec_name
        counts["sts_meters_commissioned"] = cls._commission_meters(meters)
        return counts

    @classmethod
    def _setup_vending_key(cls, seed: int):
        VendingKey = Pool().get("prepaid.sts.vending_key")
        p = DEMO_KEY_PARAMETERS
        # The demo utility's key (the demo runs in its company's context).
        company = Transaction().context.get("company")
        with without_check_access():
            keys = VendingKey.search(
                [
                    ("company", "=", company),
                    ("sgc", "=", p["sgc"]),
                    ("krn", "=", p["krn"]),
                    ("key_type", "=", p["key_type"]),
                    ("base_date", "=", p["base_date"]),
                    ("ea", "=", p["ea"]),
                ],
                limit=1,
            )
            if keys:
                (key,) = keys
            else:
                (key,) = VendingKey.create(
                    [{"name": DEMO_KEY_NAME, "company": company, **p}]
                )
            if not key.key_entered:
                # The key store's own path: the setter encrypts with the
                # master key and keeps only the ciphertext.
                VendingKey.write([key], {"key": demo_vending_key(seed).hex()})
        return key

    @classmethod
    def _commission_meters(cls, meters) -> int:
        "STS parameters on the STS meters that have none; returns how many"
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        Tariff = pool.get("prepaid.tariff")
        Date = pool.get("ir.date")
        today = Date.today()
        args = []
        for meter in meters:
            if meter.kind not in STS_METER_KINDS or meter.sts_pan:
                continue
            pan = demo_pan(meter.serial)
            if pan is None:
                continue
            try:
                tariff = Tariff.for_meter(meter, today)
            except ValidationError:  # no tariff for its category
                tariff = None
            args += [
                [meter],
                {
                    "sts_pan": pan,
                    "sts_sgc": DEMO_SGC,
                    "sts_krn": DEMO_KRN,
                    "sts_tariff_index": (tariff and tariff.sts_tariff_index) or "01",
                    "sts_key_type": DEMO_KEY_PARAMETERS["key_type"],
                    "sts_base_date": DEMO_KEY_PARAMETERS["base_date"],
                    "sts_ea": DEMO_KEY_PARAMETERS["ea"],
                },
            ]
        if args:
            with without_check_access():
                Meter.write(*args)
        return len(args) // 2
