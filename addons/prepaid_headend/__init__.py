"""prepaid_headend: the head-end (HES) side of the platform, in Tryton.

- ``dlms/``: the pure-Python DLMS/COSEM client (no trytond import).
- ``channel.py``: communication settings on ``prepaid.meter`` (secrets
  encrypted with the master key), invocation counters in the database.
- ``schedule.py``: reading groups and schedules run by trytond-cron.
- ``job.py``: jobs executed by queue tasks, many associations at once.
- ``reading.py``: readings, events and the time-partitioning plan.
- ``billing_feed.py``: new load-profile captures of remote-prepaid meters
  become ``prepaid.remote.consumption`` rows (the input of billing).
- ``load_management.py``: customers' load-management settings (limits, daily
  periods) written into the meters' limiters, kept in step by cron.
- ``relay.py``, ``firmware.py``, ``command.py``: relay control, clock checks,
  firmware upgrades and the execution of ``prepaid.meter.command``.
- ``demo.py``: ``setup_demo_channels(first_port=4061, count=20)`` points the
  first 20 smart-prepaid demo meters at ``prepaid-meter-sim --meters 20
  --port 4061`` (127.0.0.1:4061-4080, WRAPPER, HLS-GMAC, DLMS UA test keys);
  ``point_demo_channels`` and ``simulator_meters`` follow the port the demo
  runs the simulator on and give each simulated meter its decoder key.
"""
