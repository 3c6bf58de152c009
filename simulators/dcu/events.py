"""The concentrator's own events (reported in ``dc_events``): (group, code).

The table with their details is in docs/concentrators.md section 8.
"""

# Concentrator events: (group, code). Groups as PRIME's S17 report orders
# them (1 standard, 4 communication, 5 meter registration); 6 firmware is ours.
EV_BOOT = (1, 1)
EV_CLOCK_SET = (1, 2)
EV_METER_CLOCK_SET = (1, 4)
EV_METER_DRIFT_TOO_LARGE = (1, 5)
EV_DELIVERY_FAILING = (4, 16)
EV_DELIVERY_REFUSED = (4, 17)
EV_OUTBOX_OVERFLOW = (4, 18)
EV_BACKHAUL_RESTORED = (4, 19)
EV_DELIVERY_HELD = (4, 20)  # the head-end does not authorise us: kept, retried
EV_METER_JOINED = (5, 1)
EV_METER_REMOVED = (5, 2)
EV_METER_LOST = (5, 3)
EV_METER_PENDING = (5, 5)
EV_IMAGE_REFUSED = (6, 2)
EV_METER_UPGRADED = (6, 3)
EV_METER_UPGRADE_FAILED = (6, 4)
EV_METER_ROLLED_BACK = (6, 5)
EV_DC_UPGRADED = (6, 6)
EV_DC_ROLLED_BACK = (6, 7)
EV_CAMPAIGN_RESUMED = (6, 8)
EV_CAMPAIGN_QUEUED = (6, 9)  # a firmware order waits for the running campaign
EV_ACTIVATION_MISSED = (6, 10)  # a meter not reached when its image was due
