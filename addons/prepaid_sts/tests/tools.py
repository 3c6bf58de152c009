"""Fixtures shared by the prepaid_sts database tests (public STS test keys).

Key material comes from the public vectors of tests/data/sts_vectors.json
(STS 531-1-07 Ed 2.2 CTSA01/CTSA05 as transcribed by
mohamedkhamis/STSCompliancePOS, and NectarAPI/tokens-service for DKGA02; see
docs/sts.md section 3).
"""

from __future__ import annotations

import os

from trytond.modules.prepaid_sts import masterkey
from trytond.pool import Pool

#: DKGA04 160-bit test vending key (STS 531-1-07 CTSA01).
VK_DKGA04 = "abababababababab949494949494949401234567"
#: DKGA02 64-bit test vending key (STS 531-1-0-02 CTSA01, NectarAPI tests).
VK_DKGA02 = "abababababababab"
PAN = "600727000000000009"


def set_master_key() -> str | None:
    """Install a fresh master key in the environment; return the previous one."""
    previous = os.environ.get(masterkey.ENV_NAME)
    os.environ[masterkey.ENV_NAME] = masterkey.generate_master_key()
    return previous


def restore_master_key(previous: str | None) -> None:
    if previous is None:
        os.environ.pop(masterkey.ENV_NAME, None)
    else:
        os.environ[masterkey.ENV_NAME] = previous


def create_vending_key(
    sgc="201457", krn=1, base_date="14", dkga="04", key=VK_DKGA04, key_type="2"
):
    VendingKey = Pool().get("prepaid.sts.vending_key")
    (record,) = VendingKey.create(
        [
            {
                "name": f"Test VK {sgc}/{krn}/{base_date}",
                "sgc": sgc,
                "krn": krn,
                "key_type": key_type,
                "base_date": base_date,
                "dkga": dkga,
                "ea": "07",
                "key": key,
            }
        ]
    )
    return record


def create_meter(serial="M1", sgc="201457", krn=1, ti="01", base_date="14", pan=PAN):
    Meter = Pool().get("prepaid.meter")
    (meter,) = Meter.create(
        [
            {
                "serial": serial,
                "kind": "sts_keypad",
                "sts_pan": pan,
                "sts_sgc": sgc,
                "sts_krn": krn,
                "sts_tariff_index": ti,
                "sts_key_type": "2",
                "sts_base_date": base_date,
                "sts_ea": "07",
            }
        ]
    )
    return meter
