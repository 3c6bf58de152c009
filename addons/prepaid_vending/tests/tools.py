"""Small builders of master data shared by the module's tests."""

import datetime as dt
import functools
import itertools

from trytond import backend
from trytond.modules.company.tests import create_company, set_company
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, with_transaction
from trytond.transaction import Transaction, TransactionError


def with_company(func):
    """with_transaction, working for a new company: the records of a utility
    (network, meters, tariffs ...) need one, as in Tryton's own tests"""

    @with_transaction()
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with set_company(create_company()):
            return func(*args, **kwargs)

    return wrapper


def dispatch(context, call, restarts=None, attempts=None, user=1):
    """call(transaction) in a transaction of the test database, run as
    trytond's dispatcher runs an RPC call; its result is returned.

    A TransactionError (call asked for a lock) rolls the transaction back and
    starts it again with what the error asks for (its type appended to
    restarts, when given).  The transaction is committed when call returns
    (call may commit or roll back itself first).  With attempts, a
    DatabaseOperationalError (serialisation failure) is retried too, as the
    cron retries it, and after that many starts in all a RuntimeError says it
    gave up; without, it propagates.  The concurrency tests' threads use it,
    so that they retry as real calls do.  ``user``: who runs it (admin)."""
    extras: dict = {}
    for _ in range(attempts) if attempts else itertools.count():
        try:
            with Transaction().start(DB_NAME, user, context=context, **extras) as tr:
                try:
                    return call(tr)
                except TransactionError as exc:
                    if restarts is not None:
                        restarts.append(type(exc))
                    tr.rollback()
                    exc.fix(extras)
        except backend.DatabaseOperationalError:
            if not attempts:
                raise
    raise RuntimeError(f'gave up after {attempts} attempts')


def committed(func, user=0, context=None):
    """func() in its own committed transaction (what a route or a worker
    reads must be committed), as root unless user is given"""
    return dispatch(context or {}, lambda transaction: func(), user=user)


def create_network(suffix=''):
    "A substation with one feeder and one transformer"
    pool = Pool()
    Substation = pool.get('prepaid.substation')
    Feeder = pool.get('prepaid.feeder')
    Transformer = pool.get('prepaid.transformer')
    substation = Substation(name='North', code=f'SS-N{suffix}')
    substation.save()
    feeder = Feeder(name='Feeder 1', code=f'F1{suffix}', substation=substation)
    feeder.save()
    transformer = Transformer(
        name='TX 1', code=f'TX1{suffix}', feeder=feeder, rated_kva=200
    )
    transformer.save()
    return transformer


def create_customer(name='Thandi Mokoena'):
    pool = Pool()
    Party = pool.get('party.party')
    Category = pool.get('prepaid.customer.category')
    (category,) = Category.search([('code', '=', 'RESIDENTIAL')])
    customer = Party(name=name, customer_category=category)
    customer.save()
    return customer


def create_meter(serial, **values):
    Meter = Pool().get('prepaid.meter')
    meter = Meter(serial=serial, **values)
    meter.save()
    return meter


def create_service_point(transformer, customer=None):
    ServicePoint = Pool().get('prepaid.service_point')
    point = ServicePoint(
        transformer=transformer,
        customer=customer,
        street='12 Jacaranda Street',
        city='Polokwane',
    )
    point.save()
    return point


TODAY = dt.date(2026, 3, 1)
