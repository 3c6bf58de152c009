"""Channels for the demo's simulated meters.

``scripts/demo`` starts ``prepaid-meter-sim --meters 20 --port 4061`` (the
first port can be chosen: ``--meter-port``): meter
*i* listens on 127.0.0.1:4061+i with the simulator's defaults (WRAPPER framing,
HLS-GMAC client SAP 1, the public test keys EK 000102...0F and AK D0D1...DF of
the DLMS UA examples, LLS password 12345678, HLS-MD5 secret ``Gurux``).
:func:`setup_demo_channels` gives the first ``count`` smart-prepaid meters (by
serial) channels pointing at those ports, with HLS-GMAC and the test keys stored
encrypted like any other keys (the master key must be configured), all in one
reading group with a daily schedule.  The same happens automatically when the
demo data is created (``Demo.extend_meters``), which also gives the
residential category a load-management setting (10 kW, 6 kW at the evening
peak): the meter's "Write Load Limit" button puts it into a simulated meter's
limiter, and so does the load-management cron, which the demo runs.

On every start of the demo, :func:`point_demo_channels` moves the channels to
the simulator's first port of this run, and :func:`simulator_meters` tells the
simulator which STS decoder key each of its meters holds (the key of the demo
meter on that port), so that a smart meter accepts the credit tokens of a
sale like a real one loaded at the factory.
"""

from __future__ import annotations

import datetime as dt

from trytond.modules.prepaid_headend.dlms.session import (
    DEFAULT_AUTHENTICATION_KEY,
    DEFAULT_BLOCK_CIPHER_KEY,
)
from trytond.modules.prepaid_sts import masterkey
from trytond.pool import Pool
from trytond.transaction import without_check_access

from .sts import demo_decoder_key

DEMO_GROUP = "Demo meters (simulator)"
DEMO_HOST = '127.0.0.1'
DEMO_FIRST_PORT = 4061
DEMO_COUNT = 20


def setup_demo_channels(
    first_port: int = DEMO_FIRST_PORT,
    count: int = DEMO_COUNT,
    host: str = DEMO_HOST,
    meters=None,
) -> list:
    """Point the first ``count`` smart-prepaid meters at the simulator."""
    pool = Pool()
    Meter = pool.get('prepaid.meter')
    Group = pool.get('prepaid.headend.meter_group')
    Schedule = pool.get('prepaid.headend.schedule')
    with without_check_access():
        if meters is None:
            meters = Meter.search(
                [('kind', '=', 'smart_prepaid')], order=[('serial', 'ASC')], limit=count
            )
        else:
            meters = sorted(
                (m for m in meters if m.kind == 'smart_prepaid'), key=lambda m: m.serial
            )[:count]
        groups = Group.search([('name', '=', DEMO_GROUP)], limit=1)
        if groups:
            group = groups[0]
        else:
            (group,) = Group.create([{'name': DEMO_GROUP}])
            Schedule.create(
                [
                    {
                        'name': "Daily read of the demo meters",
                        'group': group.id,
                        'frequency': 'daily',
                        'read_registers': True,
                        'profile_hours': 24,
                        'read_billing': True,
                        'read_events': True,
                        'sync_clock': True,
                    }
                ]
            )
        for index, meter in enumerate(meters):
            Meter.write(
                [meter],
                {
                    'hes_host': host,
                    'hes_port': first_port + index,
                    'hes_framing': 'wrapper',
                    'hes_auth': 'hls-gmac',
                    'hes_client_address': 1,
                    'hes_server_address': 1,
                    'hes_group': group.id,
                    'hes_block_cipher_key': DEFAULT_BLOCK_CIPHER_KEY.hex(),
                    'hes_authentication_key': DEFAULT_AUTHENTICATION_KEY.hex(),
                },
            )
    return list(meters)


def demo_channel_meters() -> list:
    "The meters of the demo's reading group, by serial (the simulator's order)"
    pool = Pool()
    Meter = pool.get('prepaid.meter')
    with without_check_access():
        return Meter.search(
            [('hes_group.name', '=', DEMO_GROUP), ('hes_host', '=', DEMO_HOST)],
            order=[('serial', 'ASC')],
        )


def point_demo_channels(first_port: int = DEMO_FIRST_PORT) -> int:
    """Point the demo channels at the simulator's meters from first_port on
    (meter i of the group at first_port + i); returns how many moved."""
    Meter = Pool().get('prepaid.meter')
    args = []
    for index, meter in enumerate(demo_channel_meters()):
        if meter.hes_port != first_port + index:
            args += [[meter], {'hes_port': first_port + index}]
    if args:
        with without_check_access():
            Meter.write(*args)
    return len(args) // 2


def simulator_meters(
    first_port: int = DEMO_FIRST_PORT, count: int = DEMO_COUNT, seed: int = 8000
) -> list[dict]:
    """What each simulated meter must hold to stand for the demo meter whose
    channel points at it: one entry per simulator meter (port first_port + i),
    with the serial and STS decoder key (hex) of that meter, or None where no
    demo meter (or no STS data) goes with the port."""
    by_port = {m.hes_port: m for m in demo_channel_meters()}
    table = []
    for index in range(count):
        meter = by_port.get(first_port + index)
        key = demo_decoder_key(meter, seed) if meter else None
        table.append(
            {
                'port': first_port + index,
                'serial': meter.serial if meter else None,
                'decoder_key': key.hex() if key else None,
            }
        )
    return table


def setup_demo_load_management() -> int:
    "The residential category's load limits, once; returns how many created"
    pool = Pool()
    Category = pool.get('prepaid.customer.category')
    Setting = pool.get('prepaid.load_management')
    with without_check_access():
        categories = Category.search(
            [('code', '=', 'RESIDENTIAL'), ('load_management', '=', None)], limit=1
        )
        if not categories:
            return 0
        (setting,) = Setting.create(
            [
                {
                    'name': "Residential 10 kW, 6 kW at the evening peak",
                    'normal_limit': 10_000,
                    'emergency_limit': 2_000,
                    'periods': [
                        (
                            'create',
                            [
                                {
                                    'start_time': dt.time(17, 0),
                                    'end_time': dt.time(21, 0),
                                    'limit': 6_000,
                                }
                            ],
                        )
                    ],
                }
            ]
        )
        Category.write(categories, {'load_management': setting.id})
    return 1


class Demo:
    "The head-end part of the demo (see prepaid_demo.vending)"

    @classmethod
    def extend_meters(cls, meters, rng):
        counts = {}
        counts['load_management'] = setup_demo_load_management()
        try:
            masterkey._configured_key()
        except masterkey.MasterKeyError:
            # Keys cannot be stored encrypted: leave the channels to
            # setup_demo_channels() once a master key is configured.
            counts['headend_channels'] = 0
            return counts
        counts['headend_channels'] = len(setup_demo_channels(meters=meters))
        return counts
