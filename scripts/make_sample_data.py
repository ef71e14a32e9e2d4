"""Write jobs/sample_data/companies.json: the fictional companies the offline stand-ins serve.

Deterministic (seeded), stdlib only: `python scripts/make_sample_data.py`. Every company lives
on the reserved `.example` top-level domain, so no name here can reach a real site. Each entry
holds the discovery record (People Data Labs' shape), how its website behaves, and the people
the email finder knows there.
"""

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "jobs" / "sample_data" / "companies.json"
COUNT = 240

PREFIXES = [
    "north",
    "blue",
    "bright",
    "clear",
    "iron",
    "silver",
    "swift",
    "true",
    "lumen",
    "cedar",
    "harbor",
    "summit",
    "pixel",
    "quanta",
    "vertex",
    "orbit",
    "willow",
    "granite",
    "signal",
    "copper",
    "meadow",
    "nova",
    "atlas",
    "beacon",
]
SUFFIXES = [
    "wind",
    "stack",
    "loop",
    "forge",
    "field",
    "path",
    "works",
    "grid",
    "line",
    "point",
    "ware",
    "mind",
    "leaf",
    "bridge",
    "scale",
    "craft",
]
KINDS = [
    "Analytics",
    "Labs",
    "Systems",
    "Cloud",
    "Software",
    "Health",
    "Logistics",
    "Partners",
    "Group",
    "Digital",
    "Robotics",
    "Finance",
]
INDUSTRIES = [
    ("computer software", 24),
    ("information technology and services", 18),
    ("internet", 10),
    ("marketing and advertising", 10),
    ("financial services", 9),
    ("hospital & health care", 8),
    ("retail", 7),
    ("construction", 6),
    ("logistics and supply chain", 8),
]
PLACES = [
    (
        "united states",
        [
            "new york",
            "california",
            "massachusetts",
            "texas",
            "illinois",
            "washington",
            "colorado",
            "georgia",
        ],
        70,
    ),
    ("canada", ["ontario", "british columbia", "quebec"], 10),
    ("united kingdom", ["england", "scotland"], 12),
    ("germany", ["berlin", "bavaria"], 8),
]
SIGNALS = [
    "hiring",
    "series a",
    "series b",
    "recently funded",
    "new cto",
    "expanding",
    "remote-first",
]
FIRST = [
    "Avery",
    "Jordan",
    "Riley",
    "Morgan",
    "Casey",
    "Quinn",
    "Harper",
    "Rowan",
    "Sasha",
    "Emerson",
    "Devon",
    "Kai",
    "Noor",
    "Mateo",
    "Ines",
    "Priya",
    "Tomas",
    "Lena",
]
LAST = [
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Castillo",
    "Nakamura",
    "Brennan",
    "Haddad",
    "Novak",
    "Fischer",
    "Adeyemi",
    "Sorensen",
    "Varga",
    "Kowalski",
    "Ibarra",
    "Chen",
    "Duarte",
]
AUDIENCES = ["finance teams", "clinics", "retailers", "builders", "marketers", "fleets"]
POSITIONS = [
    "VP Sales",
    "Head of Growth",
    "CTO",
    "CEO",
    "Director of Marketing",
    "Head of Revenue Operations",
    "COO",
]


def weighted(rng: random.Random, pairs: list[tuple[str, int]]) -> str:
    return rng.choices([p for p, _ in pairs], weights=[w for _, w in pairs])[0]


def company(rng: random.Random, index: int, taken: set[str]) -> dict:
    while True:
        word = rng.choice(PREFIXES) + rng.choice(SUFFIXES)
        kind = rng.choice(KINDS)
        domain = f"{word}-{kind.lower()}.example"
        if domain not in taken:
            taken.add(domain)
            break
    country, regions, _ = rng.choices(PLACES, weights=[w for *_, w in PLACES])[0]
    employees = int(rng.lognormvariate(4.6, 1.2))
    employees = max(5, min(5000, employees))
    site_variant = rng.choices(
        ["contact_form", "plain", "emails_on_page", "redirect", "missing"],
        weights=[40, 22, 20, 13, 5],
    )[0]
    people = []
    if rng.random() >= 0.08:
        for _ in range(rng.randint(1, 3)):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            personal = rng.random() < 0.8
            people.append(
                {
                    "value": f"{first.lower()}.{last.lower()}@{domain}"
                    if personal
                    else f"{rng.choice(['hello', 'sales', 'info'])}@{domain}",
                    "type": "personal" if personal else "generic",
                    "confidence": rng.randint(40, 99),
                    "first_name": first if personal else None,
                    "last_name": last if personal else None,
                    "position": rng.choice(POSITIONS) if personal else None,
                }
            )
    name = f"{word.capitalize()} {kind}"
    return {
        "record": {
            "id": f"cmp_{index:04d}_{word}",
            "name": name,
            "website": domain,
            "industry": weighted(rng, INDUSTRIES),
            "employee_count": employees,
            "size": size_label(employees),
            "founded": rng.randint(1995, 2024),
            "location": {"country": country, "region": rng.choice(regions)},
            "tags": sorted(rng.sample(SIGNALS, rng.choice([0, 0, 1, 1, 2, 3]))),
            "linkedin_url": f"linkedin.com/company/{word}-{kind.lower()}",
        },
        "site": {
            "variant": site_variant,
            "tagline": f"{name} builds {rng.choice(['tools', 'platforms', 'services'])} for "
            f"{rng.choice(AUDIENCES)}.",
            "page_emails": [f"contact@{domain}"] if site_variant == "emails_on_page" else [],
        },
        "people": people,
    }


def size_label(employees: int) -> str:
    for low, high in [(1, 10), (11, 50), (51, 200), (201, 500), (501, 1000), (1001, 5000)]:
        if employees <= high:
            return f"{low}-{high}"
    return "5001+"


def main() -> None:
    rng = random.Random(2026)
    taken: set[str] = set()
    entries = [company(rng, index, taken) for index in range(1, COUNT + 1)]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(entries)} companies to {OUT.name}")


if __name__ == "__main__":
    main()
