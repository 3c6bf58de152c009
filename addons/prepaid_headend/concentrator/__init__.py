"""The concentrator (DCU) interface of the head-end, without Tryton.

Protocol core (sans-io, no network):

- ``messages``: typed requests, orders, reports, status updates;
- ``soap``: envelopes of both services, checked against ``schema/dcu-1.xsd``;
- ``reports``: versioned report payloads (``schema/report-1.xsd``);
- ``files``: report files ("Loading Files"), bounded decompression;
- ``gateway``: the DLMS gateway pass-through (0xE6/0xE7) and WRAPPER frames;
- ``xmlsafe``: the hardened XML parser every input goes through;
- ``plan``: a collection plan from the head-end's reading schedules.

Transport, separate from the core:

- ``tls``: TLS contexts with client certificates and CRLs;
- ``client``: HTTPS clients of both services;
- ``wsgi``: the head-end's service as a WSGI application, with the backend
  interface the Tryton layer implements;
- ``httpd``: a threaded HTTPS WSGI server (tests and the simulator);
- ``dlms_gateway``: a DLMS transport through a concentrator's gateway.

The interface is described in docs/concentrators.md.
"""
