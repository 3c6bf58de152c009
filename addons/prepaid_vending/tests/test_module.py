from trytond.tests.test_tryton import ModuleTestCase


class PrepaidVendingTestCase(ModuleTestCase):
    "Test the prepaid_vending module"

    module = "prepaid_vending"


del ModuleTestCase
