"""Draft writers: the deterministic template, and the LLM writer's prompt and answer parsing."""

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from jobs.clients.llm import ChatClient
from jobs.errors import PermanentError
from jobs.models import Company, Contact, Enrichment, WebsiteInfo
from jobs.outreach.drafting import (
    OPT_OUT,
    SUBJECT_MAX,
    VARIANTS,
    DraftWriter,
    LlmWriter,
    OutreachBrief,
    TemplateWriter,
    parse_answer,
    prompt,
    variant_index,
)
from jobs.prospecting.icp import IcpProfile
from jobs.prospecting.score import score_company

COMPANY = Company(
    id="co-42",
    name="Acme Analytics",
    domain="acme.example",
    industry="computer software",
    employee_count=120,
    country="united states",
    tags=("hiring", "series a"),
)
WEBSITE = WebsiteInfo(
    url="https://acme.example/", status=200, title="Acme | Analytics for dentists"
)
CONTACT = Contact(email="jo@acme.example", first_name="jo", position="VP Sales")


def brief(
    company: Company = COMPANY,
    contact: Contact = CONTACT,
    website: WebsiteInfo | None = WEBSITE,
    value_proposition: str = "we help revenue teams book more meetings with less research",
) -> OutreachBrief:
    enrichment = Enrichment(website=website, contact=contact)
    return OutreachBrief(
        company=company,
        contact=contact,
        score=score_company(company, enrichment, IcpProfile()),
        website=website,
        sender_name="Alex Rivera",
        sender_company="Demo Co",
        value_proposition=value_proposition,
    )


# --- the template ---------------------------------------------------------------------------


async def test_the_template_is_deterministic() -> None:
    first = await TemplateWriter().write(brief())
    again = await TemplateWriter().write(brief())
    assert first == again
    assert first.model_dump_json() == again.model_dump_json()
    assert variant_index("co-42") == variant_index("co-42")


async def test_the_template_personalises() -> None:
    draft = await TemplateWriter().write(brief())

    assert draft.to == "jo@acme.example"
    assert draft.writer == "template"
    assert "Acme Analytics" in draft.subject
    assert draft.body.startswith("Hi Jo,\n\n")  # provider casing fixed
    assert "your Series A and that you're hiring" in draft.body  # the signals, news first
    assert "At Demo Co, we help revenue teams book more meetings" in draft.body
    assert draft.body.endswith(f"Best,\nAlex Rivera\nDemo Co\n\n{OPT_OUT}")
    assert len(draft.body.split()) < 150
    assert "\n" not in draft.subject


async def test_every_variant_is_personal_and_ends_the_same_way() -> None:
    seen: dict[int, str] = {}
    for n in range(200):
        company = COMPANY.model_copy(update={"id": f"co-{n}"})
        draft = await TemplateWriter().write(brief(company))
        seen.setdefault(variant_index(company.id), draft.subject)
        assert "Acme Analytics" in draft.subject
        assert "acme.example" in draft.body or "Reading up on Acme Analytics" in draft.body
        assert draft.body.endswith(OPT_OUT)
    assert sorted(seen) == list(range(len(VARIANTS)))  # the hash spreads over every variant
    assert len(set(seen.values())) == len(VARIANTS)


async def test_the_website_title_is_used_when_there_is_one() -> None:
    company = COMPANY.model_copy(update={"id": next_id_for_variant(0)})
    with_title = await TemplateWriter().write(brief(company))
    without = await TemplateWriter().write(brief(company, website=None))
    assert 'I was looking at acme.example ("Analytics for dentists") and noticed' in with_title.body
    assert "I was looking at acme.example and noticed" in without.body


async def test_fallbacks_without_a_name_or_signals() -> None:
    plain = COMPANY.model_copy(update={"tags": ()})
    draft = await TemplateWriter().write(brief(plain, contact=Contact(email="info@acme.example")))
    assert draft.body.startswith("Hi there,\n\n")
    assert "your work in computer software" in draft.body

    unknown = plain.model_copy(update={"industry": "mining"})
    draft = await TemplateWriter().write(brief(unknown, contact=Contact(email="x@acme.example")))
    assert "what Acme Analytics is building" in draft.body


async def test_hostile_and_huge_inputs_are_tamed() -> None:
    company = COMPANY.model_copy(
        update={"name": "Evil\r\nBcc: everyone@example.com " + "x" * 500, "tags": ()}
    )
    contact = Contact(email="a@acme.example", first_name="Jo\x00\nhn")
    draft = await TemplateWriter().write(brief(company, contact, value_proposition="y " * 800))

    assert "\r" not in draft.subject and "\n" not in draft.subject
    assert len(draft.subject) <= SUBJECT_MAX
    assert "\x00" not in draft.body
    assert len(draft.body.split()) < 250


async def test_writers_satisfy_the_protocol() -> None:
    writer: DraftWriter = TemplateWriter()
    assert (await writer.write(brief())).subject


def next_id_for_variant(wanted: int) -> str:
    return next(f"co-{n}" for n in range(1000) if variant_index(f"co-{n}") == wanted)


# --- the LLM writer -------------------------------------------------------------------------

GOOD = (
    "Subject: Hiring SDRs at Acme?\n\n"
    "Hi Jo,\n\nSaw that Acme Analytics is hiring. We help teams book more meetings.\n\n"
    "Worth a chat?\n\nAlex Rivera"
)


Answering = tuple[list[str], list[httpx.Request], LlmWriter]


@pytest.fixture
async def answering() -> AsyncIterator[Answering]:
    """A writer whose model answers with the strings pushed onto the first list."""
    answers: list[str] = []
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        message = {"role": "assistant", "content": answers.pop(0)}
        return httpx.Response(200, json={"choices": [{"message": message}]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        chat = ChatClient(
            client, base_url="http://127.0.0.1:8080", api_key=None, model="llama3", timeout=5
        )
        yield answers, seen, LlmWriter(chat)


async def test_llm_writer_parses_a_good_answer(answering: Answering) -> None:
    answers, seen, writer = answering
    answers.append(GOOD)

    draft = await writer.write(brief())

    assert draft.writer == "llm:llama3"
    assert draft.to == "jo@acme.example"
    assert draft.subject == "Hiring SDRs at Acme?"
    assert draft.body.startswith("Hi Jo,\n\nSaw that Acme Analytics is hiring.")
    assert draft.body.endswith(f"Alex Rivera\n\n{OPT_OUT}")

    messages = orjson.loads(seen[0].content)["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "Subject:" in messages[0]["content"] and "Alex Rivera" in messages[0]["content"]
    user = messages[1]["content"]
    for fact in (
        "Acme Analytics (acme.example)",
        "Recipient first name: Jo",
        "hiring, series a",
        "Website title: Acme | Analytics for dentists",
        "VP Sales",
        "Demo Co",
    ):
        assert fact in user


@pytest.mark.parametrize(
    "answer",
    [
        "```\nSubject: Hello\n\nHi Jo, a proper body of some length here.\n```",
        "**Subject:** Hello\n\nHi Jo, a proper body of some length here.",
        "subject:   Hello  \r\n\r\n\r\n\r\nHi Jo, a proper body of some length here.",
    ],
)
def test_parse_answer_tolerates_light_formatting(answer: str) -> None:
    assert parse_answer(answer) == ("Hello", "Hi Jo, a proper body of some length here.")


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ("Hi Jo, here is an email without a subject line at all.", "no 'Subject:' first line"),
        ("Sure! Here is your email:\nSubject: Hi\n\nHi Jo, body body body.", "no 'Subject:'"),
        ("Subject:\n\nHi Jo, a body with no subject to go with it.", "empty subject"),
        ("Subject: Hello there", "body of 0 characters"),
        ("Subject: Hello\n\nHi.", "body of 3 characters"),
    ],
)
async def test_llm_writer_refuses_unusable_answers(
    answering: Answering, answer: str, says: str
) -> None:
    answers, _, writer = answering
    answers.append(answer)
    with pytest.raises(PermanentError, match=r"^llm: unusable draft") as caught:
        await writer.write(brief())
    assert says in str(caught.value)


async def test_llm_output_is_cut_to_sane_lengths(answering: Answering) -> None:
    answers, _, writer = answering
    answers.append("Subject: " + "long " * 100 + "\n\n" + "word " * 2000)

    draft = await writer.write(brief())

    assert len(draft.subject) <= SUBJECT_MAX
    assert len(draft.body) <= 1_500 + len(OPT_OUT) + 2
    assert draft.body.endswith(OPT_OUT)


async def test_an_error_page_checkpointed_earlier_is_never_quoted() -> None:
    company = COMPANY.model_copy(update={"id": next_id_for_variant(0)})
    error_page = WebsiteInfo(url="https://acme.example/", status=404, title="404 Not Found")
    draft = await TemplateWriter().write(brief(company, website=error_page))
    assert "Not Found" not in draft.body
    assert "I was looking at acme.example and noticed" in draft.body
    facts = "\n".join(message.content for message in prompt(brief(website=error_page)))
    assert "Not Found" not in facts and "Website title" not in facts
