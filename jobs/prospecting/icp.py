"""The ideal customer profile: what a good prospect looks like, and how much each trait counts.

Settings load it from the environment as JSON (`PW_ICP='{"min_score": 50}'`), so every field has
a default that makes a sensible profile for a B2B SaaS seller, and a bad profile fails at start
with a message saying what is wrong.
"""

import re
from itertools import pairwise
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FACTORS = ("industry", "size", "region", "signals", "website")

_SEPARATORS = re.compile(r"[\s_-]+")

# Providers spell countries differently ("US", "usa", "United States"): one spelling for all.
COUNTRY_ALIASES = {
    "us": "united states",
    "usa": "united states",
    "u.s.": "united states",
    "u.s.a.": "united states",
    "united states of america": "united states",
    "uk": "united kingdom",
    "gb": "united kingdom",
    "great britain": "united kingdom",
    "ca": "canada",
    "de": "germany",
    "fr": "france",
    "nl": "netherlands",
    "the netherlands": "netherlands",
    "ie": "ireland",
    "au": "australia",
}


def normalise(value: str) -> str:
    """A name as the profile compares it: lowercase, one space between words ("Series-A")."""
    return _SEPARATORS.sub(" ", value).strip().lower()


def normalise_country(value: str) -> str:
    name = normalise(value)
    return COUNTRY_ALIASES.get(name, name)


class _Section(BaseModel):
    # Each field's docstring is its description: docs/settings.md is generated from them.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class SizeBand(_Section):
    """Companies with min..max employees (max None: no upper bound) earn `fraction` of the size
    factor's weight."""

    min: int = Field(ge=0)
    max: int | None = Field(default=None, ge=0)
    fraction: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> "SizeBand":
        if self.max is not None and self.max < self.min:
            raise ValueError(f"size band {self.min}-{self.max}: max is below min")
        return self

    def contains(self, employees: int) -> bool:
        return self.min <= employees and (self.max is None or employees <= self.max)

    def label(self) -> str:
        return f"{self.min}+" if self.max is None else f"{self.min}-{self.max}"


class FactorWeights(_Section):
    """The most points each factor can give; they add up to 100, so a score reads as a percent."""

    industry: float = Field(default=30, ge=0, le=100)
    """Points for a target industry (half for an adjacent one)."""
    size: float = Field(default=25, ge=0, le=100)
    """Points for a company in a size band, times the band's fraction."""
    region: float = Field(default=15, ge=0, le=100)
    """Points for a country or region of the profile."""
    signals: float = Field(default=20, ge=0, le=100)
    """Points for the company's tags matching the profile's signals."""
    website: float = Field(default=10, ge=0, le=100)
    """Points for a reachable website (40 %), a contact form (20 %) and a contact email (40 %)."""

    @model_validator(mode="after")
    def _sum_to_100(self) -> "FactorWeights":
        parts = {name: getattr(self, name) for name in FACTORS}
        total = sum(parts.values())
        if abs(total - 100) > 1e-6:
            spelled = " + ".join(f"{name} {value:g}" for name, value in parts.items())
            raise ValueError(f"weights must add up to 100, got {total:g} ({spelled})")
        return self


DEFAULT_SIZE_BANDS = (
    SizeBand(min=1, max=10, fraction=0.2),
    SizeBand(min=11, max=50, fraction=0.7),
    SizeBand(min=51, max=200, fraction=1.0),
    SizeBand(min=201, max=500, fraction=0.9),
    SizeBand(min=501, max=1000, fraction=0.6),
    SizeBand(min=1001, max=5000, fraction=0.3),
)


class IcpProfile(_Section):
    industries: tuple[str, ...] = (
        "computer software",
        "information technology and services",
        "internet",
        "marketing and advertising",
        "financial services",
    )
    """Target industries: the industry factor's full points."""
    adjacent_industries: tuple[str, ...] = (
        "computer and network security",
        "staffing and recruiting",
        "management consulting",
        "e-learning",
    )
    """Adjacent industries: half the industry factor's points."""
    size_bands: tuple[SizeBand, ...] = DEFAULT_SIZE_BANDS
    """Employee-count bands: `min`, `max` (null: no bound) and the `fraction` of the size
    factor's points a company in the band earns."""
    countries: tuple[str, ...] = ("united states", "canada", "united kingdom")
    """Countries that earn the region factor's full points."""
    regions: tuple[str, ...] = ()
    """Regions (state, province) that earn them too: a company matches on either."""
    signals: dict[str, float] = Field(
        default_factory=lambda: {
            "hiring": 40.0,
            "recently funded": 40.0,
            "series a": 30.0,
            "series b": 30.0,
            "new cto": 25.0,
            "expanding": 25.0,
        }
    )
    """Signal tag to points out of 100; the signals factor earns min(sum of matched, 100)
    percent."""
    weights: FactorWeights = FactorWeights()
    """The most points each factor can give; they add up to 100, so a score reads as a
    percent."""
    min_score: int = Field(default=40, ge=0, le=100)
    """A prospect scoring under this is skipped (`below_min_score`)."""

    @field_validator("industries", "adjacent_industries", "regions")
    @classmethod
    def _names(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return _unique([normalise(value) for value in values])

    @field_validator("countries")
    @classmethod
    def _countries(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return _unique([normalise_country(value) for value in values])

    @field_validator("signals")
    @classmethod
    def _signals(cls, values: dict[str, float]) -> dict[str, float]:
        cleaned: dict[str, float] = {}
        for tag, points in values.items():
            name = normalise(tag)
            if not name:
                raise ValueError("signal names must not be empty")
            if not 0 < points <= 100:
                raise ValueError(f"signal {name!r}: points must be in (0, 100], got {points:g}")
            cleaned[name] = points
        return cleaned

    @field_validator("size_bands")
    @classmethod
    def _bands(cls, bands: tuple[SizeBand, ...]) -> tuple[SizeBand, ...]:
        ordered = tuple(sorted(bands, key=lambda band: band.min))
        for before, after in pairwise(ordered):
            if before.max is None or before.max >= after.min:
                raise ValueError(f"size bands {before.label()} and {after.label()} overlap")
        return ordered

    @model_validator(mode="after")
    def _consistent(self) -> "IcpProfile":
        overlap = set(self.industries) & set(self.adjacent_industries)
        if overlap:
            raise ValueError(f"industries both target and adjacent: {', '.join(sorted(overlap))}")
        if self.weights.industry and not self.industries:
            raise ValueError("industries is empty but the industry factor has weight")
        if self.weights.size and not any(band.fraction for band in self.size_bands):
            raise ValueError("no size band earns points but the size factor has weight")
        if self.weights.region and not (self.countries or self.regions):
            raise ValueError("countries and regions are empty but the region factor has weight")
        return self

    def discovery_filter(self) -> dict[str, Any]:
        """What discovery should ask for: companies this profile can score above zero on the
        firmographic factors. Regions are left to scoring (providers disagree on their names)."""
        wanted = [band for band in self.size_bands if band.fraction > 0]
        min_employees = min((band.min for band in wanted), default=None)
        max_employees: int | None = None
        if wanted and all(band.max is not None for band in wanted):
            max_employees = max(band.max for band in wanted if band.max is not None)
        return {
            "industries": [*self.industries, *self.adjacent_industries],
            "countries": list(self.countries),
            "min_employees": min_employees or None,
            "max_employees": max_employees,
        }


def _unique(values: list[str]) -> tuple[str, ...]:
    if any(not value for value in values):
        raise ValueError("names must not be empty")
    return tuple(dict.fromkeys(values))
