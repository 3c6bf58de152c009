"""Key changes move only through their buttons (issue 11 §3): a raw client
write of a pending key change's old or new parameters (SGC, KRN, key type,
tariff index) or of its state, by any role including the administrator, was
accepted, and Cancel then put the forged "old" values on the meter."""

from __future__ import annotations

import unittest

from trytond.model.exceptions import AccessError
from trytond.model.modelview import AccessButtonError
from trytond.modules.prepaid_vending.tests.staff import (
    STAFF_ROLES,
    acting_as,
    create_user,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction

from .tools import (
    create_meter,
    create_vending_key,
    restore_master_key,
    set_master_key,
)

ROLES = STAFF_ROLES
FORGED = {
    "old_sgc": "123456",
    "old_krn": 7,
    "old_key_type": "1",
    "old_tariff_index": "09",
    "new_krn": 7,
    "new_tariff_index": "09",
    "state": "confirmed",
}
PARAMS = ["sgc", "krn", "tariff_index", "key_type", "base_date"]


def meter_parameters(meter) -> tuple:
    Meter = Pool().get("prepaid.meter")
    meter = Meter(meter.id)
    return tuple(getattr(meter, f"sts_{n}") for n in PARAMS)


class KeyChangeWorkflowTestCase(unittest.TestCase):
    "A key change: no client write or delete; Confirm and Cancel still work"

    @classmethod
    def setUpClass(cls):
        cls._previous_master_key = set_master_key()
        activate_module("prepaid_sts")

    @classmethod
    def tearDownClass(cls):
        restore_master_key(cls._previous_master_key)

    def users(self) -> dict:
        User = Pool().get("res.user")
        users = {r: create_user(f"u_{r}", r) for r in ROLES}
        (users["admin user"],) = User.search([("login", "=", "admin")])
        return users

    def issue(self, meter):
        KeyChange = Pool().get("prepaid.sts.key_change")
        return KeyChange.issue(meter, {"krn": 2}, reason="KRN 2")

    @with_transaction()
    def test_no_role_rewrites_or_deletes_a_key_change(self):
        KeyChange = Pool().get("prepaid.sts.key_change")
        create_vending_key()
        create_vending_key(krn=2)
        meter = create_meter()
        change = self.issue(meter)
        names = [*FORGED, "new_sgc", "new_key_type"]
        before = KeyChange.read([change.id], names)
        for role, user in self.users().items():
            for name, value in FORGED.items():
                with self.subTest(role=role, field=name), acting_as(user):
                    with self.assertRaises(AccessError):
                        KeyChange.write([KeyChange(change.id)], {name: value})
            with self.subTest(role=role), acting_as(user):
                with self.assertRaises(AccessError):
                    KeyChange.delete([KeyChange(change.id)])
        self.assertEqual(KeyChange.read([change.id], names), before)

    @with_transaction()
    def test_refusal_does_not_depend_on_access_records(self):
        "A group given full access by mistake still rewrites nothing"
        pool = Pool()
        Access = pool.get("ir.model.access")
        KeyChange = pool.get("prepaid.sts.key_change")
        create_vending_key()
        create_vending_key(krn=2)
        change = self.issue(create_meter())
        engineer = create_user("engineer", "engineer")
        Access.create(
            [
                {
                    "model": "prepaid.sts.key_change",
                    "group": engineer.groups[0].id,
                    "perm_read": True,
                    "perm_write": True,
                    "perm_create": True,
                    "perm_delete": True,
                }
            ]
        )
        with acting_as(engineer):
            with self.assertRaisesRegex(AccessError, "old_krn cannot be changed"):
                KeyChange.write([KeyChange(change.id)], {"old_krn": 7})
            with self.assertRaisesRegex(AccessError, "cannot be deleted"):
                KeyChange.delete([KeyChange(change.id)])
            with self.assertRaisesRegex(AccessError, "not from the client"):
                KeyChange.create([{"meter": change.meter.id}])
        self.assertEqual(KeyChange(change.id).old_krn, 1)

    @with_transaction()
    def test_cancel_restores_the_original_values(self):
        "Cancel by an engineer puts back the values stored at issue"
        KeyChange = Pool().get("prepaid.sts.key_change")
        create_vending_key()
        create_vending_key(krn=2)
        meter = create_meter()
        original = meter_parameters(meter)
        change = self.issue(meter)
        engineer = create_user("engineer", "engineer")
        with acting_as(engineer):
            with self.assertRaises(AccessError):
                KeyChange.write([KeyChange(change.id)], {"old_krn": 7})
            KeyChange.cancel([KeyChange(change.id)])
        self.assertEqual(KeyChange(change.id).state, "cancelled")
        self.assertEqual(meter_parameters(meter), original)

    @with_transaction()
    def test_confirm_by_its_groups(self):
        "Confirm works for the operator; a cashier may not press it"
        KeyChange = Pool().get("prepaid.sts.key_change")
        create_vending_key()
        create_vending_key(krn=2)
        meter = create_meter()
        change = self.issue(meter)
        issued = meter_parameters(meter)
        with acting_as(create_user("cashier", "cashier")):
            with self.assertRaises(AccessButtonError):
                KeyChange.confirm([KeyChange(change.id)])
        self.assertEqual(KeyChange(change.id).state, "pending")
        with acting_as(create_user("operator", "operator")):
            KeyChange.confirm([KeyChange(change.id)])
        change = KeyChange(change.id)
        self.assertEqual(
            (change.state, change.old_krn, change.new_krn), ("confirmed", 1, 2)
        )
        self.assertEqual(meter_parameters(meter), issued)
        self.assertEqual(issued[1], 2)
