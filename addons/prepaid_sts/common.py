"""Selections shared by the STS models (codes as the engine spells them)."""

from __future__ import annotations

import os

from trytond import config
from trytond.i18n import gettext
from trytond.transaction import Transaction

from . import redaction  # noqa: F401 (keeps key material out of the RPC log)
from .engine.sta import ENV_TABLES


def use_configured_sts_tables() -> None:
    """Hand ``[prepaid] sts_tables`` of trytond.conf to the engine.

    The engine imports nothing from trytond and reads its table file from the
    ``PREPAID_STS_TABLES`` environment variable; a path set in trytond.conf
    takes that route, so the server, its workers and the ``prepaid-sts``
    command started from the server's environment use the same tables."""
    path = config.get("prepaid", "sts_tables", default="")
    if path:
        os.environ[ENV_TABLES] = path


use_configured_sts_tables()

#: The staff whose actions issue tokens and so derive decoder keys: sales,
#: engineering tokens, key changes, meter changes, verification, head-end
#: credit (root: cron, queued tasks).  The token log and the key-use audit
#: are written by the issuing code only (``fastpath.SystemWrite``).
TOKEN_ISSUING_GROUPS = (
    "prepaid_vending.group_operator",
    "prepaid_vending.group_cashier",
    "prepaid_vending.group_engineer",
    "prepaid_vending.group_manager",
    "prepaid_vending.group_admin",
    "prepaid_vending.group_api_terminal",
)

BASE_DATES = [
    ("93", "1993"),
    ("14", "2014"),
    ("35", "2035"),
]
KEY_TYPES = [
    ("0", "0 - Initialisation (DITK)"),
    ("1", "1 - Default (DDTK)"),
    ("2", "2 - Unique (DUTK)"),
    ("3", "3 - Common (DCTK)"),
]
EAS = [
    ("07", "EA07 - STA"),
    ("11", "EA11 - MISTY1"),
]
DKGAS = [
    ("02", "DKGA02 (64-bit vending key)"),
    ("04", "DKGA04 (160-bit vending key)"),
]
TOKEN_KINDS = [
    ("credit", "Credit"),
    ("fbe", "Free Basic Electricity"),
    ("key_change", "Key Change"),
    ("test", "Test (class 1)"),
    ("engineering", "Engineering (class 2)"),
]


def sts_error_message(error: Exception) -> str:
    """A user message for an engine error (the engine's text says what is wrong)."""
    return gettext("prepaid_sts.msg_engine_error", error=str(error))


def current_user_id() -> int:
    return Transaction().user
