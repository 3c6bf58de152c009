"""The demo utility and the company set-up of the demo and the tests.

Not a Tryton module: code that fills a database with demo data, run by
``scripts/setup_demo.py`` (and so ``scripts/demo``), ``prepaid-import --demo``
and the tests, inside a trytond transaction of their own process.  It stays
out of the runtime modules because it imports proteus and Tryton's test tools
(``company``) and because a server has no use for it.

- ``company``: the utility company with its books (proteus, the same wizards
  a person uses);
- ``vending``: the network, customers and meters, and the sales set-up;
- ``sts``: the DEMO vending key and the meters' STS parameters;
- ``headend``: the channels to the simulated meters of ``prepaid-meter-sim``;
- ``concentrators``: the two simulated concentrators with demo meters and
  the TLS terminator in front of trytond's concentrator route (a process of
  ``scripts/demo``: ``python -m prepaid_demo.concentrators``).

The ``sts`` and ``headend`` parts run only where their module is activated.
"""
