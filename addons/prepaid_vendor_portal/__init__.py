"""Third-party vendors: float accounts, the XMLVend 2.1 SOAP server, the vendor
portal and reconciliation (issue 13).

Only the pure-Python cores exist so far (no trytond import): :mod:`.xmlvend`
(the XMLVend 2.1 protocol), :mod:`.limits` (may this terminal sell this now),
:mod:`.commission`, :mod:`.settlement` (the daily file and statements),
:mod:`.reconcile` (the vendor's own file against ours), :mod:`.days` (the
business day) and :mod:`.money`.  The Tryton models, the trytond route and the
portal come later, which is why this package has no ``tryton.cfg`` and no
``trytond.modules`` entry point yet: trytond must not try to load an incomplete
module.
"""
