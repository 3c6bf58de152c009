"""The access of every role to the vendor models (the float's position,
draw counter, reservations and sold marks), as written down in
prepaid_vending's access_matrix.py, with the vendor portal installed."""

import unittest

from trytond.modules.prepaid_vending.tests.access_matrix import AccessMatrixChecks


class AccessMatrixTestCase(AccessMatrixChecks, unittest.TestCase):
    module = 'prepaid_vendor_portal'
