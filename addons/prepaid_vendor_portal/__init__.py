"""Third-party vendors: float accounts, the XMLVend 2.1 SOAP server, the vendor
portal and reconciliation (issue 13).

Only the pure-Python protocol core exists so far: :mod:`.xmlvend` (no trytond
import).  The Tryton models, the trytond route and the portal come later, which
is why this package has no ``tryton.cfg`` and no ``trytond.modules`` entry point
yet: trytond must not try to load an incomplete module.
"""
