"""The errors of the sale, shared by the pipeline, its locks and its RPC adapter."""

from trytond.exceptions import UserError


class VendError(UserError):
    "A vend refused before anything was written"
