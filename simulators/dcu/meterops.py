"""The concentrator's own operations on a meter, through its COSEM objects.

These are the objects the meter serves over DLMS (``simulators.meter.cosem``)
called directly: the simulated G3 link is modelled in time and loss by
``g3.py``, so the concentrator's client does not need to encode APDUs. Only
the head-end's pass-through traffic is real DLMS (``concentrator.py``,
``gateway``).
"""

from __future__ import annotations

import datetime as dt
import hashlib

from simulators.meter import axdr
from simulators.meter.association import Meter
from simulators.meter.cosem import obis
from simulators.meter.xdlms import SUCCESS

CLOCK = obis("0.0.1.0.0.255")
DISCONNECT_CONTROL = obis("0.0.96.3.10.255")
IMAGE_TRANSFER = obis("0.0.44.0.0.255")

# image_transfer_status (class 18 attribute 6)
VERIFIED, VERIFY_FAILED, ACTIVATED, ACTIVATION_FAILED = 3, 4, 6, 7


class MeterRefused(Exception):
    """The meter answered an action with something else than success."""


def _act(meter: Meter, ln: bytes, method: int, param=None):
    result, data = meter.objects[ln].action(method, param)
    if result != SUCCESS:
        raise MeterRefused(f"method {method} of {ln.hex()} answered {result}")
    return data


# control_mode values (class 70 attribute 4): remote_reconnect closes the
# relay in mode 2, only readies it for the customer in mode 1.
MODE_DIRECT, MODE_BY_CUSTOMER = 2, 1


def _set(meter: Meter, ln: bytes, attr: int, value) -> None:
    result = meter.objects[ln].set(attr, value)
    if result != SUCCESS:
        raise MeterRefused(f"set {ln.hex()} attribute {attr} answered {result}")


def relay(meter: Meter, action: str) -> tuple[bool, int]:
    """disconnect / reconnect / arm through the meter's disconnect control
    (class 70); returns (output connected, control state) as read back.

    ``arm`` leaves an open relay ready for reconnection (the customer closes
    it with the meter's button): remote_reconnect under control mode 1, the
    meter's own mode put back afterwards."""
    if action == "disconnect":
        _act(meter, DISCONNECT_CONTROL, 1, axdr.i8(0))
    elif action == "reconnect":
        _act(meter, DISCONNECT_CONTROL, 2, axdr.i8(0))
    elif action == "arm":
        mode = meter.objects[DISCONNECT_CONTROL].read(4).value
        _set(meter, DISCONNECT_CONTROL, 4, axdr.enum(MODE_BY_CUSTOMER))
        try:
            _act(meter, DISCONNECT_CONTROL, 2, axdr.i8(0))
        finally:
            _set(meter, DISCONNECT_CONTROL, 4, axdr.enum(mode))
    else:
        raise ValueError(action)
    control = meter.objects[DISCONNECT_CONTROL]
    return control.read(2).value, control.read(3).value


def set_clock(meter: Meter, when: dt.datetime) -> None:
    result = meter.objects[CLOCK].set(2, axdr.datetime_data(when))
    if result != SUCCESS:
        raise MeterRefused(f"clock set answered {result}")


def image_block_size(meter: Meter) -> int:
    return meter.objects[IMAGE_TRANSFER].read(2).value


def image_status(meter: Meter) -> int:
    return meter.objects[IMAGE_TRANSFER].read(6).value


def image_resume_point(meter: Meter, identifier: str, size: int) -> int | None:
    """First block still missing of a transfer of this image already under
    way (after a reboot), or None when it has to start over."""
    img = meter.state.image
    if img.identifier != identifier.encode("ascii") or img.size != size:
        return None
    if img.status not in (1, VERIFY_FAILED):
        return None
    return meter.objects[IMAGE_TRANSFER].read(4).value


def image_initiate(meter: Meter, identifier: str, size: int) -> None:
    param = axdr.struct_(axdr.octets(identifier.encode("ascii")), axdr.u32(size))
    _act(meter, IMAGE_TRANSFER, 1, param)


def image_block(meter: Meter, number: int, data: bytes) -> None:
    _act(meter, IMAGE_TRANSFER, 2, axdr.struct_(axdr.u32(number), axdr.octets(data)))


def image_verify(meter: Meter) -> int:
    meter.objects[IMAGE_TRANSFER].action(3, axdr.i8(0))
    return image_status(meter)


def image_activate(meter: Meter) -> int:
    meter.objects[IMAGE_TRANSFER].action(4, axdr.i8(0))
    return image_status(meter)


def corrupt(block: bytes, salt: int) -> bytes:
    """The block as a noisy link delivers it: one byte changed."""
    if not block:
        return block
    i = hashlib.sha256(salt.to_bytes(8, "big")).digest()[0] % len(block)
    return block[:i] + bytes([block[i] ^ 0x5A]) + block[i + 1 :]
