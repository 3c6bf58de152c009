"""STS token entry for the token gateway (class 115), on the project's STS engine.

The engine (``trytond.modules.prepaid_sts.engine``) is written in parallel; it is
imported lazily and its result read by duck typing so small API differences do
not break the meter.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

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
    tid: int
    value: float  # class 0: kWh; class 2 sub 0: W; otherwise raw value


def _engine_decode() -> Any:
    try:
        from trytond.modules.prepaid_sts.engine import decode_token
    except ImportError as exc:  # engine not written yet
        raise EngineUnavailable(str(exc)) from exc
    return decode_token


def _first(obj: Any, names: tuple[str, ...]) -> Any:
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    raise AttributeError(f"decoded token has none of {names}")


def decode(token: str, decoder_key: bytes, ea: str) -> DecodedToken:
    """Decode with the engine; raise ValueError subclasses on failure."""
    raw = _engine_decode()(token, decoder_key, ea)
    cls = int(_first(raw, ("token_class", "cls", "klass", "class_", "tclass")))
    sub = int(_first(raw, ("subclass", "sub_class", "token_subclass")))
    tid = int(_first(raw, ("tid", "tid_minutes")))
    value: float
    try:
        value = float(_first(raw, ("amount_kwh", "kwh")))
    except AttributeError:
        try:
            value = int(_first(raw, ("amount_tenths",))) / 10.0
        except AttributeError:
            value = float(_first(raw, ("amount", "value", "value16")))
    return DecodedToken(cls, sub, tid, value)


def _is_crc_error(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(word in text for word in ("crc", "auth", "key", "decrypt"))


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
    except Exception as exc:  # engine errors: CRC mismatch or unknown class
        status = (
            STATUS_AUTHENTICATION_FAILURE
            if _is_crc_error(exc) or isinstance(exc, ValueError)
            else STATUS_EXECUTION_FAILURE
        )
        return _finish(state, status)
    if state.tid_rejected(decoded.tid):
        return _finish(state, STATUS_VALIDATION_FAILURE)
    kind = (decoded.token_class, decoded.subclass)
    if kind == (0, 0):
        state.add_credit_wh(decoded.value * 1000.0)
    elif kind == (2, 1):
        state.advance()
        state.credit_wh = 0.0
    elif kind == (2, 0):
        state.limiter_threshold_active_w = int(decoded.value)
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
