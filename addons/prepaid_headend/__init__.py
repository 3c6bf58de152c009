"""prepaid_headend: the head-end (HES) side of the platform, in Tryton.

- ``dlms/``: the pure-Python DLMS/COSEM client (no trytond import).
- ``channel.py``: communication settings on ``prepaid.meter`` (secrets
  encrypted with the master key), invocation counters in the database.
- ``communication.py``: endpoints and credentials (MQTT broker), Key
  Custodian and Administrator settings.
- ``schedule.py: reading groups and schedules run by trytond-cron.
- ``job.py``: jobs executed by queue tasks, many associations at once.
- ``reading.py``: readings, events and the time-partitioning plan.
- ``billing_feed.py``: new load-profile captures of remote-prepaid meters
  become ``prepaid.remote.consumption`` rows (the input of billing).
- ``load_management.py``: customers' load-management settings (limits, daily
  periods) written into the meters' limiters, kept in step by cron.
- ``dcu.py``: data concentrators, their collectors, meter directories,
  received reports and events; ``dcu_backend.py`` the head-end's
  concentrator service on them, served by ``routes.py`` (registered with
  the models of ``dcu.py``: this package imports no trytond, so that its
  pure cores import alone).
- ``relay.py``, ``firmware.py``, ``command.py``: relay control, clock checks,
  firmware upgrades and the execution of ``prepaid.meter.command``;
  ``firmware_campaign.py`` one image to many meters in waves, paused when a
  wave fails more than its threshold allows.

The demo's channels to the simulated meters are set up by the demo package
outside the modules (``prepaid_demo.headend``).
"""
