"""STS token entry for the token gateway (class 115), on the project's STS engine.

The engine (``trytond.modules.prepaid_sts.engine``) is imported lazily so the
simulator still starts (answering "execution failure") where it is missing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .model import (
    ALARM_TAMPER,
    EV_TAMPER_CLEARED,
    EV_TOKEN_ACCEPTED,
    EV_TOKEN_REJECTED,
    MeterState,
)

# token_status status codes (class 115 attr 6), as the contract fixes them.
STATUS_OK = 3
STATUS_FORMAT_FAILURE = 4
STATUS_AUTHENTICATION_FAILURE = 5
STATUS_VALIDATION_FAILURE = 6
STATUS_EXECUTION_FAILURE = 7


class EngineUnavailable(RuntimeError):
    """The STS engine module is not importable (yet)."""


@dataclass(frozen=True)
class DecodedToken:
    token_class: int
    subclass: int
    tid: int | None
    amount: float | None  # class 0 sub 0: kWh; class 2 sub 0: W
    crc_ok: bool


def decode(token: str, decoder_key: bytes, ea: str) -> DecodedToken:
    """Decode with the project's STS engine (imported lazily)."""
    try:
        from trytond.modules.prepaid_sts.engine import decode_token
    except ImportError as exc:  # engine missing from this installation
        raise EngineUnavailable(str(exc)) from exc
    raw = decode_token(token, decoder_key, ea)
    amount = None if raw.amount is None else float(raw.amount)
    return DecodedToken(
        raw.token_class, raw.subclass, raw.tid, amount, bool(raw.crc_ok)
    )


def enter_token(state: MeterState, token: bytes, when: dt.datetime) -> int:
    """Process one token entered through class 115 method 1; return status."""
    state.last_token = bytes(token)
    state.token_time = when
    text = token.decode("ascii", "replace")
    if len(text) != 20 or not text.isdigit():
        return _finish(state, STATUS_FORMAT_FAILURE)
    if state.config.decoder_key is None:
        return _finish(state, STATUS_EXECUTION_FAILURE)
    try:
        decoded = decode(text, state.config.decoder_key, state.config.sts_ea)
    except EngineUnavailable:
        return _finish(state, STATUS_EXECUTION_FAILURE)
    except ValueError as exc:
        # TokenFormatError: not a token at all; other engine errors come from
        # the meter's own configuration (key length, EA) -> execution failure.
        kind_name = type(exc).__name__
        failed = "Format" in kind_name
        return _finish(
            state, STATUS_FORMAT_FAILURE if failed else STATUS_EXECUTION_FAILURE
        )
    if not decoded.crc_ok:
        return _finish(state, STATUS_AUTHENTICATION_FAILURE)
    if decoded.tid is None:
        return _finish(state, STATUS_EXECUTION_FAILURE)  # class 1 / key change
    if state.tid_rejected(decoded.tid):
        return _finish(state, STATUS_VALIDATION_FAILURE)
    kind = (decoded.token_class, decoded.subclass)
    if kind == (0, 0) and decoded.amount is not None:
        state.add_credit_wh(decoded.amount * 1000.0)
    elif kind == (2, 1):
        state.advance()
        state.credit_wh = 0.0
    elif kind == (2, 0) and decoded.amount is not None:
        state.advance()
        state.limiter_threshold_active_w = int(decoded.amount)
    elif kind == (2, 5):
        state.alarm_register &= ~ALARM_TAMPER
        state.log_event(EV_TAMPER_CLEARED)
    else:
        return _finish(state, STATUS_EXECUTION_FAILURE)
    state.remember_tid(decoded.tid)
    return _finish(state, STATUS_OK)


def _finish(state: MeterState, status: int) -> int:
    state.token_status.status = status
    # data bit-string: bit n set = step n passed (format, auth, validation, exec).
    passed = {3: 4, 4: 0, 5: 1, 6: 2, 7: 3}[status]
    state.token_status.data = "1" * passed + "0" * (4 - passed)
    state.log_event(EV_TOKEN_ACCEPTED if status == STATUS_OK else EV_TOKEN_REJECTED)
    return status
