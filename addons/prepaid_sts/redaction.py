"""Keep key material out of trytond's request log.

trytond logs every RPC call with its arguments (at INFO with ``-v``: strings
cut to 17 characters, which is a whole 64-bit vending key in hex; at DEBUG:
everything).  It redacts the values of mapping keys that contain "password",
"token" or "secret" (``trytond.tools.logging``), but the vending key, the DLMS
block cipher and authentication keys travel as ``key``, ``*_cipher_key`` and
``authentication_key``.  Adding "key" to trytond's list redacts them wherever
they appear in a ``create``, ``write`` or wizard call.  It also hides harmless
values such as ``key_type`` from the log: a fair price for never logging a key.
"""

from trytond.tools import logging as trytond_logging

SENSITIVE_NAME_PARTS = ("key",)


def redact_key_material() -> None:
    # trytond offers no hook for this; its module-level set is the one place
    # that decides, so extend it rather than wrap the dispatcher.
    trytond_logging._SENSITIVE_KEYS.update(SENSITIVE_NAME_PARTS)


redact_key_material()
