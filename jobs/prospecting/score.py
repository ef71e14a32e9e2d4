"""Scoring a company against the ICP, and ranking before enrichment. Pure functions; no I/O.

Each factor earns a fraction of its weight and says why, so a score can be read (and argued
with) by the person approving the draft.
"""

from typing import Literal

from jobs.models import Company, Enrichment, Score, ScoreFactor
from jobs.prospecting.icp import IcpProfile, normalise, normalise_country

# What a website factor's parts are worth, as fractions of its weight.
SITE_REACHABLE = 0.4
SITE_CONTACT_FORM = 0.2
SITE_CONTACT_EMAIL = 0.4

FactorName = Literal["industry", "size", "region", "signals", "website"]


def score_company(company: Company, enrichment: Enrichment | None, icp: IcpProfile) -> Score:
    factors = (
        _industry(company, icp),
        _size(company, icp),
        _region(company, icp),
        _signals(company, icp),
        _website(enrichment, icp),
    )
    return Score(total=_total(factors), factors=factors)


def rank_companies(companies: list[Company], icp: IcpProfile) -> list[Company]:
    """Best first on firmographics alone (nothing is enriched yet); ties go to the smaller id so
    the same discovery answer always yields the same order."""

    def key(company: Company) -> tuple[float, str]:
        # Points order finer than the integer total; each is rounded to 2 places, so equal
        # companies compare equal rather than by float noise.
        points = sum(f.points for f in score_company(company, None, icp).factors)
        return (-round(points, 2), company.id)

    return sorted(companies, key=key)


def _factor(name: FactorName, fraction: float, weight: float, reason: str) -> ScoreFactor:
    return ScoreFactor(
        name=name,
        points=round(weight * fraction, 2),
        weight=weight,
        reason=reason,
    )


def _total(factors: tuple[ScoreFactor, ...]) -> int:
    # Half rounds up (42.5 -> 43), unlike round()'s banker's rounding; the epsilon absorbs float
    # sums such as 42.499999.
    total = int(sum(f.points for f in factors) + 0.5 + 1e-9)
    return max(0, min(100, total))


def _industry(company: Company, icp: IcpProfile) -> ScoreFactor:
    weight = icp.weights.industry
    if not company.industry or not normalise(company.industry):
        return _factor("industry", 0, weight, "industry unknown")
    industry = normalise(company.industry)
    if industry in icp.industries:
        return _factor("industry", 1, weight, f"industry {industry!r} is a target")
    if industry in icp.adjacent_industries:
        return _factor("industry", 0.5, weight, f"industry {industry!r} is adjacent to a target")
    return _factor("industry", 0, weight, f"industry {industry!r} is not a target")


def _size(company: Company, icp: IcpProfile) -> ScoreFactor:
    weight, employees = icp.weights.size, company.employee_count
    if employees is None:
        return _factor("size", 0, weight, "size unknown")
    for band in icp.size_bands:
        if band.contains(employees):
            reason = f"{employees} employees: {band.label()} band ({band.fraction:.0%})"
            return _factor("size", band.fraction, weight, reason)
    return _factor("size", 0, weight, f"{employees} employees: outside the target sizes")


def _region(company: Company, icp: IcpProfile) -> ScoreFactor:
    weight = icp.weights.region
    country = normalise_country(company.country) if company.country else ""
    region = normalise(company.region) if company.region else ""
    if country and country in icp.countries:
        return _factor("region", 1, weight, f"country {country!r} is a target")
    if region and region in icp.regions:
        return _factor("region", 1, weight, f"region {region!r} is a target")
    if not (country or region):
        return _factor("region", 0, weight, "location unknown")
    where = ", ".join(part for part in (region, country) if part)
    return _factor("region", 0, weight, f"location {where!r} is not a target")


def _signals(company: Company, icp: IcpProfile) -> ScoreFactor:
    weight = icp.weights.signals
    tags = {normalise(tag) for tag in company.tags}
    # In the profile's order, so the reason reads the same for the same company.
    matched = [signal for signal in icp.signals if signal in tags]
    if not matched:
        return _factor("signals", 0, weight, f"0 of {len(icp.signals)} signals")
    fraction = min(sum(icp.signals[signal] for signal in matched), 100) / 100
    reason = f"{len(matched)} of {len(icp.signals)} signals: {', '.join(matched)}"
    return _factor("signals", fraction, weight, reason)


def _website(enrichment: Enrichment | None, icp: IcpProfile) -> ScoreFactor:
    weight = icp.weights.website
    if enrichment is None:
        return _factor("website", 0, weight, "not enriched yet")
    site = enrichment.website
    fraction, found = 0.0, []
    if site is not None and site.status < 400:
        fraction += SITE_REACHABLE
        found.append("site reachable")
    else:
        found.append("site unreachable")
    if site is not None and site.has_contact_form:
        fraction += SITE_CONTACT_FORM
        found.append("contact form")
    if enrichment.contact is not None or (site is not None and site.emails):
        fraction += SITE_CONTACT_EMAIL
        found.append("contact email found")
    else:
        found.append("no contact email")
    return _factor("website", min(fraction, 1.0), weight, ", ".join(found))
