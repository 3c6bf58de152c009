"""Checks of a CA certificate file named in the settings (a path on the server).

The path is typed by a user, and the server opens it: without checks it
reads any file the server may read (``/etc/shadow``) and says through its
errors whether it exists.  A CA file is accepted only when it is

1. an absolute path that, once symbolic links are resolved, lies in one of
   the allowed folders (checked first, so nothing is learnt about the rest
   of the file system);
2. a regular file of at most MAX_CA_FILE bytes that the server can read;
3. PEM holding at least one X.509 certificate and nothing else (no key).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

from cryptography import x509

MAX_CA_FILE = 1024 * 1024
#: Where operating systems keep CA certificates; deployments add their own
#: folder with ``[prepaid] tls_ca_dirs``.
DEFAULT_CA_DIRS = (
    "/etc/ssl/certs",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
    "/etc/pki/ca-trust/source/anchors",
    "/etc/pki/tls/certs",
)
PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


class CaFileError(ValueError):
    """The CA file is refused; the message says why, never what it holds."""


def check_ca_file(path: str, allowed_dirs: Sequence[str]) -> str:
    """The resolved path of an acceptable CA file, or CaFileError."""
    if not path or not os.path.isabs(path) or "\0" in path:
        raise CaFileError("give the absolute path of the CA file")
    real = os.path.realpath(path)
    folders = [os.path.realpath(d) for d in allowed_dirs if d and os.path.isabs(d)]
    if not any(os.path.commonpath([real, d]) == d for d in folders):
        raise CaFileError(
            "the CA file must be in one of these folders: " + ", ".join(folders)
        )
    try:
        if not stat.S_ISREG(os.stat(real).st_mode):
            raise CaFileError("the CA file is not a regular file")
        with open(real, "rb") as handle:
            # The file may have been swapped since the stat: check what is open.
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise CaFileError("the CA file is not a regular file")
            data = handle.read(MAX_CA_FILE + 1)
    except CaFileError:
        raise
    except OSError as exc:
        raise CaFileError(
            f"the server cannot read the CA file ({exc.strerror})"
        ) from None
    if len(data) > MAX_CA_FILE:
        raise CaFileError(f"the CA file is larger than {MAX_CA_FILE} bytes")
    if PEM_CERTIFICATE not in data or b"PRIVATE KEY" in data:
        raise CaFileError("the CA file must hold PEM certificates only")
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CaFileError("the CA file holds no valid PEM certificate") from None
    return real
