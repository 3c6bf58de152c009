"""Key material never reaches trytond's RPC log (see redaction.py)."""

import pytest
from trytond.modules.prepaid_sts import common  # noqa: F401 (installs the redaction)
from trytond.tools.logging import format_args

VENDING_KEY = "abababababababab"  # 16 hex digits: short enough to be logged whole
DLMS_KEY = "000102030405060708090a0b0c0d0e0f"


@pytest.mark.parametrize("verbose", [False, True])
def test_vending_key_write_is_redacted(verbose):
    logged = str(format_args(([7], {"key": VENDING_KEY}), {}, verbose))
    assert VENDING_KEY[:8] not in logged
    assert "[7]" in logged  # the rest of the call is still logged


@pytest.mark.parametrize("verbose", [False, True])
def test_dlms_keys_in_a_wizard_call_are_redacted(verbose):
    data = {
        "start": {
            "block_cipher_key": DLMS_KEY,
            "authentication_key": DLMS_KEY,
            "password": "lls-secret",
        }
    }
    logged = str(format_args((12, data, "enter"), {}, verbose))
    assert DLMS_KEY[:8] not in logged
    assert "lls-secret" not in logged
    assert "'enter'" in logged


@pytest.mark.parametrize("verbose", [False, True])
def test_meter_write_only_secrets_are_redacted(verbose):
    values = {"hes_block_cipher_key": DLMS_KEY, "hes_authentication_key": DLMS_KEY}
    logged = str(format_args(([3], values), {}, verbose))
    assert DLMS_KEY[:8] not in logged
