"""Outreach's pure pieces: reply classification (rules and the LLM in JSON mode), the message's
headers and ids, reply parsing, and how SMTP failures are sorted."""

from pathlib import Path

import httpx
import orjson
import pytest

from jobs.clients.llm import ChatClient
from jobs.outreach.classify import LlmClassifier, ReplyFacts, RuleClassifier
from jobs.outreach.message import (
    SenderIdentity,
    build_message,
    draft_token,
    list_unsubscribe,
    message_id,
    referenced_ids,
)
from jobs.outreach.replies import ReplyRequest, parse_reply
from jobs.outreach.smtp import (
    DeliveryUnknown,
    Mailer,
    SmtpConfig,
    SmtpDeferred,
    SmtpRejected,
)
from tests.support.smtp_server import FaultySink
from worker.local.embedded import free_port
from worker.local.mailsink import MailSink


def facts(text: str, subject: str = "Re: hi", **extra: str) -> ReplyFacts:
    return ReplyFacts(sender="pat@acme.example", subject=subject, text=text, **extra)


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (facts("Sounds great, can we talk Thursday?"), "interested"),
        (facts("Thanks but we're not interested right now."), "not_interested"),
        (facts("I'm out of the office until the 12th."), "out_of_office"),
        (facts("hi", auto_submitted="auto-replied"), "out_of_office"),
        (facts("Please remove me from your list."), "unsubscribe"),
        (facts("STOP emailing me"), "unsubscribe"),
        (facts("x", content_type="multipart/report; report-type=delivery-status"), "bounce"),
        (facts("x", subject="Undeliverable: Quick question"), "bounce"),
    ],
)
async def test_rules_classify_each_kind(reply: ReplyFacts, kind: str) -> None:
    found = await RuleClassifier().classify(reply)
    assert (found.kind, found.classifier) == (kind, "rules")


def chat(answer: str, seen: list[dict[str, object]]) -> ChatClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(orjson.loads(request.content))
        body = {"choices": [{"message": {"role": "assistant", "content": answer}}]}
        return httpx.Response(200, json=body)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ChatClient(http, base_url="http://127.0.0.1:9/v1", api_key=None, model="m", timeout=5)


async def test_the_llm_classifies_in_json_mode_and_falls_back_on_a_bad_answer() -> None:
    seen: list[dict[str, object]] = []
    answer = '{"kind": "not_interested", "reason": "declined", "confidence": 0.9}'
    found = await LlmClassifier(chat(answer, seen)).classify(facts("We'll pass."))
    assert (found.kind, found.classifier) == ("not_interested", "llm:m")
    assert seen[0]["response_format"] == {"type": "json_object"}

    fallback = await LlmClassifier(chat("not json", seen)).classify(facts("unsubscribe"))
    assert (fallback.kind, fallback.classifier) == ("unsubscribe", "rules (llm answer unusable)")
    # A delivery report is a bounce by its headers: the model is not asked.
    asked = len(seen)
    report = facts("x", content_type="multipart/report")
    assert (await LlmClassifier(chat(answer, seen)).classify(report)).kind == "bounce"
    assert len(seen) == asked


def test_ids_and_unsubscribe_headers() -> None:
    token = draft_token("pw", "c1", "1-0")
    assert token == draft_token("pw", "c1", "1-0") != draft_token("pw", "c1", "2-0")
    assert message_id(token, "Alex@Demo.example") == f"<{token}@demo.example>"
    plain = SenderIdentity(name="Alex", address="alex@demo.example")
    value, post = list_unsubscribe(plain, token)
    assert value == f"<mailto:alex@demo.example?subject=unsubscribe%20{token}>" and post is None
    assert referenced_ids("<a@x> <b@x>", "<b@x>\r\n <c@x>", None) == ["<a@x>", "<b@x>", "<c@x>"]
    message = build_message(
        plain,
        to="pat@acme.example",
        subject="Hi",
        body="Hello",
        message_id_value="<m@x>",
        draft_key=token,
    )
    assert message["Message-ID"] == "<m@x>" and message["Reply-To"] is None


def test_reply_parsing_takes_ids_sender_and_a_stable_id() -> None:
    headers = "From: Pat <Pat@Acme.example>\r\nIn-Reply-To: <m1@x>\r\nReferences: <m0@x> <m1@x>\r\n"
    reply_id, refs, parsed = parse_reply(ReplyRequest(headers=headers, text="ok"))
    assert refs == ["<m1@x>", "<m0@x>"]
    assert parsed.sender == "pat@acme.example"
    assert reply_id == parse_reply(ReplyRequest(headers=headers, text="ok"))[0]


def mailer(port: int) -> Mailer:
    return Mailer(SmtpConfig(host="127.0.0.1", port=port, security="none", timeout_s=2))


async def test_smtp_failures_are_sorted_by_what_they_say_about_delivery(tmp_path: Path) -> None:
    message = build_message(
        SenderIdentity(name="A", address="a@demo.example"),
        to="pat@acme.example",
        subject="Hi",
        body="Hello",
        message_id_value="<m@demo.example>",
        draft_key="t",
    )
    send = {"sender": "a@demo.example", "recipient": "pat@acme.example"}
    with pytest.raises(SmtpDeferred):  # nothing listens: not delivered, try again
        await mailer(free_port()).send(message, **send)
    handler = FaultySink(
        tmp_path, data_replies=["451 4.3.0 later"], reject={"gone@acme.example": "550 no"}
    )
    with MailSink(tmp_path, handler) as sink:
        with pytest.raises(SmtpDeferred, match="451"):
            await mailer(sink.port).send(message, **send)
        with pytest.raises(SmtpRejected) as rejected:
            await mailer(sink.port).send(
                message, sender="a@demo.example", recipient="gone@acme.example"
            )
        assert rejected.value.hard_bounce
        assert (await mailer(sink.port).send(message, **send)).startswith("250")
        assert handler.delivered == 1
    assert issubclass(DeliveryUnknown, Exception)
