"""The ICP profile, scoring against it, and the firmographic pre-rank."""

import os
import random
from typing import Any

import pytest
from pydantic import ValidationError

from jobs.models import Company, Contact, Enrichment, ScoreFactor, WebsiteInfo
from jobs.prospecting.icp import IcpProfile
from jobs.prospecting.score import rank_companies, score_company
from settings import SettingsError, load_settings

ICP = IcpProfile()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Only the variables a test sets reach load_settings."""
    for name in list(os.environ):
        if name.startswith("PW_") or name == "REDIS_URL":
            monkeypatch.delenv(name)
    return monkeypatch


def company(**fields: object) -> Company:
    base: dict[str, object] = {"id": "c-1", "name": "Acme", "domain": "acme.example"}
    return Company.model_validate(base | fields)


PERFECT = company(
    industry="Computer Software",
    employee_count=120,
    country="United States",
    tags=("hiring", "Recently-Funded", "series_a"),
)
POOR = company(industry="Mining & Metals", employee_count=20_000, country="Brazil")
FULL_ENRICHMENT = Enrichment(
    website=WebsiteInfo(url="https://acme.example/", status=200, has_contact_form=True),
    contact=Contact(email="jo@acme.example", first_name="Jo"),
)


def breakdown(factors: tuple[ScoreFactor, ...]) -> dict[str, tuple[float, float, str]]:
    return {f.name: (f.points, f.weight, f.reason) for f in factors}


def test_a_perfect_fit_earns_every_point() -> None:
    score = score_company(PERFECT, FULL_ENRICHMENT, ICP)

    assert score.total == 100
    assert breakdown(score.factors) == {
        "industry": (30, 30, "industry 'computer software' is a target"),
        "size": (25, 25, "120 employees: 51-200 band (100%)"),
        "region": (15, 15, "country 'united states' is a target"),
        "signals": (20, 20, "3 of 6 signals: hiring, recently funded, series a"),
        "website": (10, 10, "site reachable, contact form, contact email found"),
    }
    assert [f.name for f in score.factors] == ["industry", "size", "region", "signals", "website"]


def test_a_poor_fit_earns_nothing_and_says_why() -> None:
    score = score_company(POOR, Enrichment(website_error="TransientError: timed out"), ICP)

    assert score.total == 0
    assert breakdown(score.factors) == {
        "industry": (0, 30, "industry 'mining & metals' is not a target"),
        "size": (0, 25, "20000 employees: outside the target sizes"),
        "region": (0, 15, "location 'brazil' is not a target"),
        "signals": (0, 20, "0 of 6 signals"),
        "website": (0, 10, "site unreachable, no contact email"),
    }


def test_partial_fit_adds_fractions_and_rounds_half_up() -> None:
    # adjacent industry 15 + 11-50 band 0.7 * 25 = 17.5 + region 0 + hiring 40% of 20 = 8
    # + website: a contact but no site = 4  -> 44.5 -> 45 (round() would give 44)
    partial = company(
        industry="Staffing and Recruiting", employee_count=30, country="DE", tags=("hiring",)
    )
    enrichment = Enrichment(contact=Contact(email="a@acme.example"))

    score = score_company(partial, enrichment, ICP)

    points = {f.name: f.points for f in score.factors}
    assert points == {"industry": 15, "size": 17.5, "region": 0, "signals": 8, "website": 4}
    assert score.total == 45
    assert breakdown(score.factors)["industry"][2] == (
        "industry 'staffing and recruiting' is adjacent to a target"
    )


def test_missing_facts_score_zero_with_a_reason() -> None:
    score = score_company(company(), None, ICP)

    assert score.total == 0
    reasons = {f.name: f.reason for f in score.factors}
    assert reasons == {
        "industry": "industry unknown",
        "size": "size unknown",
        "region": "location unknown",
        "signals": "0 of 6 signals",
        "website": "not enriched yet",
    }


def test_without_enrichment_the_website_factor_earns_nothing() -> None:
    assert score_company(PERFECT, None, ICP).total == 90


def test_country_codes_and_regions_match() -> None:
    icp = IcpProfile(countries=["GB"], regions=["California"])

    assert icp.countries == ("united kingdom",)
    by_code = score_company(company(country="uk"), None, icp).factors[2]
    by_region = score_company(company(country="Mexico", region="california"), None, icp).factors[2]
    assert (by_code.points, by_code.reason) == (15, "country 'united kingdom' is a target")
    assert (by_region.points, by_region.reason) == (15, "region 'california' is a target")


def test_signals_cap_at_the_factor_weight() -> None:
    icp = IcpProfile(signals={"hiring": 80, "expanding": 80})
    signals = score_company(company(tags=("hiring", "expanding")), None, icp).factors[3]
    assert (signals.points, signals.weight) == (20, 20)


def test_custom_weights_change_the_breakdown() -> None:
    icp = IcpProfile(
        weights={"industry": 50, "size": 20, "region": 10, "signals": 10, "website": 10}
    )
    score = score_company(company(industry="internet", employee_count=600), None, icp)
    assert {f.name: f.points for f in score.factors}["industry"] == 50
    assert {f.name: f.points for f in score.factors}["size"] == 12  # 501-1000 band: 0.6
    assert score.total == 62


# --- the profile ----------------------------------------------------------------------------


def test_weights_must_add_up_to_100() -> None:
    with pytest.raises(ValidationError) as caught:
        IcpProfile(weights={"industry": 50, "size": 25, "region": 15, "signals": 20, "website": 10})
    message = str(caught.value)
    assert "weights must add up to 100, got 120" in message
    assert "industry 50 + size 25 + region 15 + signals 20 + website 10" in message


def test_a_bad_weight_from_the_environment_names_the_variable(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("PW_ICP__WEIGHTS__INDUSTRY", "40")
    with pytest.raises(SettingsError, match="PW_ICP__WEIGHTS: weights must add up to 100, got 110"):
        load_settings()


def test_the_profile_loads_from_json(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv(
        "PW_ICP",
        '{"industries": ["Computer Software", "computer  software"], "countries": ["USA"],'
        ' "min_score": 55, "size_bands": [{"min": 200, "max": 1000, "fraction": 1},'
        ' {"min": 50, "max": 199, "fraction": 0.5}]}',
    )
    icp = load_settings().icp
    assert icp.industries == ("computer software",)
    assert icp.countries == ("united states",)
    assert icp.min_score == 55
    assert [band.min for band in icp.size_bands] == [50, 200]  # sorted


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        (
            {"size_bands": [{"min": 10, "max": 5, "fraction": 1}]},
            "size band 10-5: max is below min",
        ),
        (
            {"size_bands": [{"min": 1, "max": 50, "fraction": 1}, {"min": 50, "fraction": 1}]},
            "size bands 1-50 and 50+ overlap",
        ),
        ({"size_bands": [{"min": 1, "fraction": 1.5}]}, "less than or equal to 1"),
        ({"signals": {"hiring": 0}}, "signal 'hiring': points must be in (0, 100], got 0"),
        ({"industries": []}, "industries is empty but the industry factor has weight"),
        ({"industries": ["internet"], "adjacent_industries": ["Internet"]}, "both target and"),
        ({"countries": [], "regions": []}, "countries and regions are empty"),
        ({"min_score": 101}, "less than or equal to 100"),
    ],
)
def test_insane_profiles_are_refused(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        IcpProfile.model_validate(fields)
    assert says in str(caught.value)


def test_the_discovery_filter_follows_the_profile() -> None:
    assert ICP.discovery_filter() == {
        "industries": [
            "computer software",
            "information technology and services",
            "internet",
            "marketing and advertising",
            "financial services",
            "computer and network security",
            "staffing and recruiting",
            "management consulting",
            "e-learning",
        ],
        "countries": ["united states", "canada", "united kingdom"],
        "min_employees": 1,
        "max_employees": 5000,
    }
    open_ended = IcpProfile(
        size_bands=[
            {"min": 0, "max": 20, "fraction": 0},  # earns nothing: not worth discovering
            {"min": 50, "max": 500, "fraction": 1},
            {"min": 501, "fraction": 0.5},
        ]
    ).discovery_filter()
    assert (open_ended["min_employees"], open_ended["max_employees"]) == (50, None)


# --- ranking --------------------------------------------------------------------------------


def test_ranking_puts_the_best_fit_first_and_breaks_ties_by_id() -> None:
    best = PERFECT.model_copy(update={"id": "z-best"})
    good = company(id="m-good", industry="internet", employee_count=300, country="canada")
    tie_b = company(id="b-tie", industry="internet")
    tie_a = company(id="a-tie", industry="internet")
    worst = POOR.model_copy(update={"id": "0-worst"})

    ranked = rank_companies([worst, tie_b, good, tie_a, best], ICP)

    assert [c.id for c in ranked] == ["z-best", "m-good", "a-tie", "b-tie", "0-worst"]


def test_ranking_is_deterministic_whatever_the_input_order() -> None:
    rng = random.Random(7)
    industries = ["internet", "computer software", "mining", None]
    companies = [
        company(
            id=f"co-{n:03d}",
            industry=rng.choice(industries),
            employee_count=rng.choice([None, 5, 40, 150, 900, 9000]),
            country=rng.choice(["US", "Canada", "France", None]),
            tags=tuple(rng.sample(["hiring", "series b", "expanding", "b2b"], k=rng.randint(0, 2))),
        )
        for n in range(60)
    ]
    expected = [c.id for c in rank_companies(companies, ICP)]
    for _ in range(5):
        shuffled = companies[:]
        rng.shuffle(shuffled)
        assert [c.id for c in rank_companies(shuffled, ICP)] == expected
    totals = [score_company(c, None, ICP).total for c in rank_companies(companies, ICP)]
    assert totals == sorted(totals, reverse=True)
