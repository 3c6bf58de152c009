"""The company (utility) of STS and head-end records: the meter's decides.

Several utilities may share one installation, each with its own vending keys
(the same SGC number may exist in two of them with different keys).  A record
made for a meter (token, key use, key change, head-end job...) takes the
meter's company, never the user's: the key that signs a meter's token is
looked up in the meter's company, so no other utility's key can be used.

Wizards run without access checks (trytond) and their meter field holds
whatever id the client sent: :func:`require_meter_company` is their check
that the user works for the meter's company.  Cron and queue tasks run per
company (``ir.cron.companies`` sets the ``company`` context):
:func:`context_company_domain` restricts what they pick up to it.
"""

from __future__ import annotations

from trytond.i18n import gettext
from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.transaction import Transaction


def context_company_domain(field: str = "company") -> list:
    """Clause restricting a cron or queue search to the context's company;
    none without one (a cron registered for no company runs for all)."""
    company = Transaction().context.get("company")
    return [(field, "=", company)] if company is not None else []


def user_companies_domain(field: str = "company") -> list:
    """Clause restricting a search run without access checks to the
    companies the user works for (none for root)."""
    if Transaction().user == 0:
        return []
    User = Pool().get("res.user")
    return [(field, "in", list(User.get_companies()))]


def require_meter_company(meter) -> None:
    """Refuse a meter of a company the user does not work for (root passes).

    ``res.user.get_companies`` is what the record rules compare with, so a
    user sees and acts on the same companies."""
    if Transaction().user == 0 or meter is None:
        return
    User = Pool().get("res.user")
    company = meter.company
    if company is None or company.id not in User.get_companies():
        raise AccessError(
            gettext(
                "prepaid_sts.msg_meter_other_company",
                meter=meter.serial,
                company=company.rec_name if company else "-",
            )
        )


def fill_company_from(cls, column: str, target: str) -> None:
    """Migration: set the new company column of cls from the record its
    ``column`` points to (``target``: a model with a company), where empty."""
    pool = Pool()
    Target = pool.get(target)
    table, other = cls.__table__(), Target.__table__()
    cursor = Transaction().connection.cursor()
    cursor.execute(
        *table.update(
            [table.company],
            other.select(other.company, where=other.id == getattr(table, column)),
            where=table.company == None,  # noqa: E711
        )
    )
