"""Balances kept as the sum of their history lines (debts, remote accounts)."""

from decimal import Decimal

from sql.aggregate import Sum
from trytond import backend
from trytond.tools import grouped_slice
from trytond.transaction import Transaction

CENT = Decimal('0.01')


def line_balances(Line, parent_field: str, ids: list[int]) -> dict[int, Decimal]:
    "The sum of Line.amount per parent id, zero for parents without lines"
    line = Line.__table__()
    parent = getattr(line, parent_field)
    cursor = Transaction().connection.cursor()
    result = dict.fromkeys(ids, Decimal(0).quantize(CENT))
    for sub in grouped_slice(ids, backend.MAX_QUERY_PARAMS):
        cursor.execute(
            *line.select(
                parent, Sum(line.amount), where=parent.in_(list(sub)), group_by=[parent]
            )
        )
        for parent_id, total in cursor:
            result[parent_id] = Decimal(str(total or 0)).quantize(CENT)
    return result
