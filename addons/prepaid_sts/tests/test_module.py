"""Generic Tryton module checks for prepaid_sts (views, access, fields, XML)."""

from trytond.tests.test_tryton import ModuleTestCase


class PrepaidStsTestCase(ModuleTestCase):
    "Test the prepaid_sts module"

    module = "prepaid_sts"


del ModuleTestCase
