"""Write the sample data set the offline stand-ins serve (`python scripts/make_sample_data.py`).

- `jobs/sample_data/companies.json`: fictional companies exactly as a People Data Labs-style
  company search returns them, so the stand-in can serve them verbatim.
- `jobs/sample_data/sites.json`, keyed by domain: what the stand-ins need beyond that record:
  how the company's website behaves and the people a Hunter-style email finder knows there.

Deterministic (one seeded generator, stdlib only). Every site is on the reserved `.example`
top-level domain (RFC 2606), so no name here can reach a real site.
"""

import json
import math
import random
import string
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "jobs" / "sample_data"
COUNT = 240
NO_EMAILS = round(COUNT * 0.08)  # the email finder knows nobody there
MISSING_SITE = round(COUNT * 0.05)  # the website answers 404
REDIRECT_SITE = round(COUNT * 0.12)  # / answers 301 to /home

PREFIXES = "north blue bright clear iron silver swift true lumen cedar harbor summit pixel quanta \
vertex orbit willow granite signal copper meadow nova atlas beacon tidal amber".split()
SUFFIXES = "wind stack loop forge field path works grid line point ware mind leaf bridge scale \
craft spring gate".split()
KINDS = "Analytics Labs Systems Cloud Software Health Logistics Partners Group Digital \
Robotics Finance Builders Retail".split()
INDUSTRIES = {
    "computer software": 22,
    "information technology and services": 16,
    "internet": 9,
    "marketing and advertising": 10,
    "financial services": 9,
    "hospital & health care": 8,
    "retail": 7,
    "construction": 6,
    "logistics and supply chain": 7,
    # adjacent to the default ICP, so half-points scoring has something to work on
    "computer and network security": 3,
    "staffing and recruiting": 2,
    "management consulting": 2,
}
# country -> (weight, {region: [localities]})
PLACES: dict[str, tuple[int, dict[str, list[str]]]] = {
    "united states": (
        72,
        {
            "new york": ["new york", "brooklyn", "rochester"],
            "california": ["san francisco", "los angeles", "san diego", "oakland"],
            "massachusetts": ["boston", "cambridge"],
            "texas": ["austin", "dallas", "houston"],
            "illinois": ["chicago"],
            "washington": ["seattle", "bellevue"],
            "colorado": ["denver", "boulder"],
            "georgia": ["atlanta"],
        },
    ),
    "canada": (10, {"ontario": ["toronto", "ottawa"], "british columbia": ["vancouver"]}),
    "united kingdom": (11, {"england": ["london", "manchester"], "scotland": ["edinburgh"]}),
    "germany": (7, {"berlin": ["berlin"], "bavaria": ["munich"]}),
}
# (fewest, most, weight): every size band from 5 to 5000 people, small companies the most common
BANDS = [(5, 10, 6), (11, 50, 25), (51, 200, 32), (201, 500, 18), (501, 1000, 10), (1001, 5000, 9)]
CONTINENTS = {"canada": "north america", "united states": "north america"}
SIGNALS = ["hiring", "recently funded", "new cto", "expanding", "remote-first"]
STAGES = ["series a", "series b"]  # a company is at one stage at most
FIRST = "Avery Jordan Riley Morgan Casey Quinn Harper Rowan Sasha Emerson Devon Kai Noor Mateo \
Ines Priya Tomas Lena Oren Talia".split()
LAST = "Okafor Lindqvist Moreau Castillo Nakamura Brennan Haddad Novak Fischer Adeyemi Sorensen \
Varga Kowalski Ibarra Duarte Marlowe Quillfeather Ashgrove".split()
# position -> (Hunter seniority, Hunter department)
POSITIONS = {
    "VP Sales": ("executive", "sales"),
    "Head of Growth": ("senior", "marketing"),
    "CTO": ("executive", "executive"),
    "CEO": ("executive", "executive"),
    "Director of Marketing": ("senior", "marketing"),
    "Head of Revenue Operations": ("senior", "sales"),
    "COO": ("executive", "executive"),
}
# Each company's address pattern, as Hunter reports it per domain.
PATTERNS = ["{first}.{last}", "{first}", "{f}{last}", "{first}{last}"]
ROLE_BOXES = ["hello", "sales", "info", "team"]
AUDIENCES = ["finance teams", "clinics", "retailers", "builders", "marketers", "fleets", "schools"]
OFFERS = ["tools", "a platform", "services", "software"]


def pdl_id(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=28))


def size_label(employees: int) -> str:
    for low, high in [(1, 10), (11, 50), (51, 200), (201, 500), (501, 1000), (1001, 5000)]:
        if employees <= high:
            return f"{low}-{high}"
    return "5001-10000"


def tags(rng: random.Random) -> list[str]:
    chosen = rng.sample(SIGNALS, rng.choice([0, 0, 1, 1, 2, 3]))
    if rng.random() < 0.3:
        chosen.append(rng.choice(STAGES))
    return sorted(chosen)


def record(rng: random.Random, word: str, kind: str, domain: str) -> dict[str, Any]:
    weights = list(INDUSTRIES.values())
    country = rng.choices(list(PLACES), weights=[w for w, _ in PLACES.values()])[0]
    region = rng.choice(sorted(PLACES[country][1]))
    locality = rng.choice(PLACES[country][1][region])
    low, high = rng.choices(BANDS, weights=[w for *_, w in BANDS])[0][:2]
    employees = round(math.exp(rng.uniform(math.log(low), math.log(high))))
    display = f"{word.capitalize()} {kind}"
    return {
        "id": pdl_id(rng),
        "name": display.lower(),  # PDL lowercases names; display_name keeps the casing
        "display_name": display,
        "website": domain,
        "industry": rng.choices(list(INDUSTRIES), weights=weights)[0],
        "employee_count": employees,
        "size": size_label(employees),
        "founded": rng.randint(1995, 2024),
        "location": {
            "name": f"{locality}, {region}, {country}",
            "locality": locality,
            "region": region,
            "country": country,
            "continent": CONTINENTS.get(country, "europe"),
        },
        "tags": tags(rng),
        "linkedin_url": f"linkedin.com/company/{domain.removesuffix('.example')}",
    }


def contacts(rng: random.Random, domain: str) -> list[dict[str, Any]]:
    pattern = rng.choice(PATTERNS)
    found: dict[str, dict[str, Any]] = {}
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.8:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            local = pattern.format(first=first.lower(), last=last.lower(), f=first[0].lower())
            position = rng.choice(sorted(POSITIONS))
            seniority, department = POSITIONS[position]
            status = rng.choices(["valid", "accept_all", "invalid"], weights=[80, 15, 5])[0]
            person = {"type": "personal", "first_name": first, "last_name": last}
            person |= {"position": position, "seniority": seniority, "department": department}
        else:
            local, status = rng.choice(ROLE_BOXES), "accept_all"
            person = {"type": "generic", "first_name": None, "last_name": None, "position": None}
        email = f"{local}@{domain}"
        found[email] = {
            "value": email,
            "confidence": rng.randint(40, 99),
            "verification": {"status": status},
            **person,
        }
    return list(found.values())


def site(
    rng: random.Random, domain: str, display: str, variant: str, known: bool
) -> dict[str, Any]:
    people = contacts(rng, domain) if known else []
    page_emails: list[str] = []
    if rng.random() < 0.3:
        page_emails.append(f"{rng.choice(['contact', 'hello', 'sales'])}@{domain}")
        named = [p["value"] for p in people if p["type"] == "personal"]
        if named and rng.random() < 0.3:
            page_emails.append(named[0])
    return {
        "variant": variant,
        "contact_form": rng.random() < 0.55,
        "page_emails": page_emails,
        "emails_as": rng.choice(["mailto", "text"]),
        "tagline": f"{display} builds {rng.choice(OFFERS)} for {rng.choice(AUDIENCES)}.",
        "contacts": people,
    }


def main() -> None:
    rng = random.Random(2026)
    names = sorted({(p + s, k) for p in PREFIXES for s in SUFFIXES for k in KINDS})
    picked = rng.sample(names, COUNT)
    # Exact shares rather than coin flips, so every behaviour is present in the data set.
    order = list(range(COUNT))
    rng.shuffle(order)
    missing = set(order[:MISSING_SITE])
    redirect = set(order[MISSING_SITE : MISSING_SITE + REDIRECT_SITE])
    silent = set(rng.sample(range(COUNT), NO_EMAILS))
    companies, sites = [], {}
    for index, (word, kind) in enumerate(picked):
        domain = f"{word}-{kind.lower()}.example"
        companies.append(record(rng, word, kind, domain))
        variant = "missing" if index in missing else "redirect" if index in redirect else "page"
        display = f"{word.capitalize()} {kind}"
        sites[domain] = site(rng, domain, display, variant, known=index not in silent)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "companies.json").write_text(json.dumps(companies, indent=1) + "\n")
    (OUT / "sites.json").write_text(json.dumps(sites, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(companies)} companies and their sites to {OUT}")


if __name__ == "__main__":
    main()
