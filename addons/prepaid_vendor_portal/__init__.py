"""Third-party vendors: float accounts, the XMLVend 2.1 SOAP server, the vendor
portal and reconciliation (issue 13).

The pure-Python cores import nothing from trytond and are used without a
Tryton server: :mod:`.xmlvend` (the XMLVend 2.1 protocol), :mod:`.limits`
(may this terminal sell this now) and :mod:`.limits_text`,
:mod:`.commission`, :mod:`.settlement` (the daily file and statements),
:mod:`.reconcile` (the vendor's own file against ours), :mod:`.days` (the
business day) and :mod:`.money`.  This file must stay free of trytond imports
for them: the Tryton models (vendors, outlets, terminals, operators, the
float, the stored XMLVend answers, the sales batches, the commission plans,
the vendor sales in the books, the daily settlement files and the monthly
reconciliations with their disputes) are registered from
``tryton.cfg``, and the XMLVend SOAP route (``routes.py``, imported by
``terminal.py``) with them, the vendor portal's pages (``portal.py``,
imported by ``portal_user.py``; HTML in the pure ``portal_html.py``) too.
"""
