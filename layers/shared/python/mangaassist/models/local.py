"""An offline, deterministic provider that only restates facts found in its prompt.

Used by ``make run`` and tests (``MODEL_PROVIDER=local``). It never writes a title, price or
number that is not in the prompt: its sentences are fixed templates without figures, and every
fact is copied verbatim.

Grounded answers. Facts are read from the user messages, and from the system prompt's tagged
blocks only (the rest of a system prompt is instructions, and its JSON is an output schema):
- ``<tag>...</tag>`` blocks: each line inside is a fact; a one-line block is a fact labelled
  by its tag (``<title>One Piece</title>``);
- JSON blocks (objects, or arrays holding objects), flattened to ``label: value`` facts with
  numbers exactly as written;
- ``key: value`` lines (a label of at most four words, an ASCII colon plus space or a "："), and
  bulleted or numbered lines ("- ", "・", "[1] ", "2. ").
What is left of the last user message is the question ("Question: ..." lines included). When
there are at most MAX_FACTS facts (a record, an order), all are restated in order; otherwise the
facts sharing the most words (or, for Japanese, character pairs) with the question are. The
answer is in Japanese when the question is.

JSON tasks. For features in JSON_TASKS (review moderation) the answer is the task's JSON
output over the text inside ``<review>``/``<text>``/``<content>`` tags of the last user message,
or the whole message when it has no such block.

Token counts are approximations: one token per 4 ASCII characters (the usual rule of thumb for
English) plus one per other character (Claude spends about one token per kana or kanji).
"""
from __future__ import annotations

import json
import math
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Generator
from dataclasses import dataclass

from mangaassist.models.base import (
    DEFAULT_FEATURE,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    Completion,
    CompletionStream,
    ModelError,
    message_text,
)
from mangaassist.models.moderation_lexicon import local_moderation
from mangaassist.models.pricing import estimate_cost

MODEL_ID = "local.grounded-v1"
PROVIDER = "local"
MAX_FACTS = 8
TOKEN = re.compile(r"[ -~]{1,4}|[^ -~]", re.S)  # what approx_tokens counts as one token

def _reasons(content: str) -> dict:
    from mangaassist.recommendations.reasons import local_reasons  # loads only where recommendations run

    return local_reasons(content)


JSON_TASKS: dict[str, Callable[[str], dict]] = {"moderation": local_moderation, "review_moderation": local_moderation,
                                                "recommend": _reasons}

TEMPLATES = {
    "en": {
        "found": "Based on the information provided:",
        "closest": "I couldn't find that exactly in the information provided. Here is what it says:",
        "nothing": "I don't have enough information to answer that. Could you tell me which title or volume you mean?",
    },
    "ja": {
        "found": "ご提供いただいた情報によると、次のとおりです。",
        "closest": "該当する情報は見つかりませんでしたが、次の情報があります。",
        "nothing": "お答えするための情報が見つかりませんでした。タイトルや巻数を教えていただけますか？",
    },
}
QUESTION_LABELS = {"question", "q", "query", "user question", "質問"}
STOPWORDS = frozenset(
    "a an and are be can do does for from how i in is it me my of on or please tell that the this to what "
    "when where which who why with you your about much many".split()
)
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
TAG = re.compile(r"</?[A-Za-z][\w-]*[^>]*>")
BLOCK = re.compile(r"<([A-Za-z][\w-]*)[^>]*>(.*?)</\1>", re.S)
SUBJECT = re.compile(r"<(review|text|content)>(.*?)</\1>", re.S)
MARKER = re.compile(r"(?:[-*•・]|\[\d+\]|\d+[.)])\s+")
KEY_VALUE = re.compile(r"([^:：?？!！。]{1,40}?)\s*(?::\s+|：\s*)(\S.*)")
# Numbers stay as written: "5.00" is not re-rendered as 5.0, nor "1e3" as 1000.0.
JSON_LITERAL = json.JSONDecoder(parse_int=str, parse_float=str)


@dataclass(frozen=True)
class Fact:
    label: str | None
    value: str

    def __str__(self) -> str:
        return f"{self.label}: {self.value}" if self.label else self.value


@dataclass(frozen=True)
class Fault:
    """An injected model failure: ``code`` as Bedrock names it, raised on the next call, or for a
    stream after ``after_chunks`` chunks were sent (a mid-stream failure)."""

    code: str
    after_chunks: int = 0


# Failures the local stack injects (POST /_local/faults with a "model:<id>" target): the offline
# stand-in for a throttled or failing Bedrock model, so fallback, circuit breakers, 503s and
# mid-stream resets can be exercised offline. One fault per call, in order.
_faults: dict[str, list[Fault]] = {}
_faults_lock = threading.Lock()


def inject_fault(model_id: str, fault: Fault, count: int = 1) -> None:
    with _faults_lock:
        _faults.setdefault(model_id, []).extend([fault] * count)


def clear_faults(model_id: str | None = None) -> None:
    with _faults_lock:
        if model_id is None:
            _faults.clear()
        else:
            _faults.pop(model_id, None)


def pending_faults() -> dict[str, int]:
    with _faults_lock:
        return {model_id: len(faults) for model_id, faults in _faults.items() if faults}


def _next_fault(model_id: str) -> Fault | None:
    with _faults_lock:
        faults = _faults.get(model_id)
        return faults.pop(0) if faults else None


class LocalProvider:
    """``latency_ms`` passes before the answer starts, then ``tokens_per_second`` paces it (0: at
    once), so end-to-end timings on the local stack mean something."""

    provider = PROVIDER

    def __init__(self, model_id: str = MODEL_ID, *, latency_ms: int = 0, tokens_per_second: float = 0.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.model_id = model_id
        self.latency_ms = latency_ms
        self.tokens_per_second = tokens_per_second
        self._sleep = sleep

    def converse(self, messages: list[dict], *, system: str | None = None, max_tokens: int = DEFAULT_MAX_TOKENS,
                 temperature: float = DEFAULT_TEMPERATURE, feature: str = DEFAULT_FEATURE) -> Completion:
        fault = _next_fault(self.model_id)
        if fault is not None:
            raise ModelError(fault.code, "injected by the local stack", self.model_id)
        completion = self._answer(messages, system, max_tokens, feature)
        self._pace(completion.output_tokens)
        return completion

    def _pace(self, tokens: int) -> None:
        delay = self.latency_ms / 1000 + (tokens / self.tokens_per_second if self.tokens_per_second else 0.0)
        if delay:
            self._sleep(delay)

    def _answer(self, messages: list[dict], system: str | None, max_tokens: int, feature: str) -> Completion:
        started = time.perf_counter()
        user_texts = [message_text(m) for m in messages if m["role"] == "user"]
        task = JSON_TASKS.get(feature)
        if task:
            answer = json.dumps(task(_subject(user_texts[-1] if user_texts else "")), ensure_ascii=False)
        else:
            answer = grounded_answer(system, user_texts)
        text, stop_reason = _truncate(answer, max_tokens)
        input_tokens = approx_tokens("\n".join([system or "", *(message_text(m) for m in messages)]))
        output_tokens = approx_tokens(text)
        return Completion(text=text, stop_reason=stop_reason, input_tokens=input_tokens, output_tokens=output_tokens,
                          latency_ms=round((time.perf_counter() - started) * 1000), model_id=self.model_id,
                          provider=PROVIDER,
                          estimated_cost_usd=estimate_cost(self.model_id, input_tokens, output_tokens))

    def converse_stream(self, messages: list[dict], *, system: str | None = None,
                        max_tokens: int = DEFAULT_MAX_TOKENS, temperature: float = DEFAULT_TEMPERATURE,
                        feature: str = DEFAULT_FEATURE) -> CompletionStream:
        fault = _next_fault(self.model_id)
        if fault is not None and not fault.after_chunks:
            raise ModelError(fault.code, "injected by the local stack", self.model_id)
        return CompletionStream(self._stream(self._answer(messages, system, max_tokens, feature), fault),
                                model_id=self.model_id)

    def _stream(self, completion: Completion, fault: Fault | None) -> Generator[str, None, Completion]:
        """The answer a token at a time (one per four ASCII characters or per other character),
        paced like a model; an injected fault fires after its chunks."""
        if self.latency_ms:
            self._sleep(self.latency_ms / 1000)
        pause = 1 / self.tokens_per_second if self.tokens_per_second else 0.0
        for sent, token in enumerate(TOKEN.findall(completion.text)):
            if fault is not None and sent == fault.after_chunks:
                raise ModelError(fault.code, "injected by the local stack mid-stream", self.model_id)
            if pause:
                self._sleep(pause)
            yield token
        return completion


def approx_tokens(text: str) -> int:
    ascii_chars = sum(1 for c in text if c.isascii())
    return math.ceil(ascii_chars / 4) + len(text) - ascii_chars


def grounded_answer(system: str | None, user_texts: list[str]) -> str:
    """An answer to the last user message from the facts in the user messages and in the
    system prompt's tagged blocks (the rest of a system prompt is instructions, not facts)."""
    facts = _block_facts(system or "")[0]
    question = ""
    for text in user_texts:
        found, question = extract_facts(text)
        facts += found
    language = "ja" if JAPANESE.search(question or "\n".join(user_texts)) else "en"
    templates = TEMPLATES[language]
    if not facts:
        return templates["nothing"]
    header, chosen = templates["found"], facts
    if len(facts) > MAX_FACTS:
        wanted = _terms(question)
        scores = [2 * len(wanted & _terms(f.label or "")) + len(wanted & _terms(f.value)) for f in facts]
        best = sorted((i for i, score in enumerate(scores) if score), key=lambda i: -scores[i])[:MAX_FACTS]
        if best:
            chosen = [facts[i] for i in sorted(best)]
        else:
            header, chosen = templates["closest"], facts[:MAX_FACTS]
    return "\n".join([header, *(f"- {fact}" for fact in chosen)])


def extract_facts(text: str, *, passages: bool = False) -> tuple[list[Fact], str]:
    """The facts in a text, and the rest of it (its question or instruction). With ``passages``
    every plain line is a fact too (the inside of a tagged block)."""
    facts, outside = _block_facts(text)
    found, outside = _json_facts(outside)
    facts += found
    rest: list[str] = []
    for line in outside.splitlines():
        line = line.strip()
        if not line or line.startswith("```") or TAG.fullmatch(line):
            continue
        marker = MARKER.match(line)
        body = line[marker.end():] if marker else line
        pair = KEY_VALUE.fullmatch(body)
        label = pair.group(1).strip() if pair else ""
        if pair and label.casefold() in QUESTION_LABELS:
            rest.append(pair.group(2))
        elif pair and len(label.split()) <= 4:
            facts.append(Fact(label, pair.group(2).strip()))
        elif marker or passages:
            facts.append(Fact(None, body))
        else:
            rest.append(line)
    return facts, " ".join(rest)


def _block_facts(text: str) -> tuple[list[Fact], str]:
    """Facts inside ``<tag>...</tag>`` blocks, and the text outside them. A one-line block is a
    fact labelled by its tag (``<title>One Piece</title>``)."""
    facts: list[Fact] = []
    outside: list[str] = []
    position = 0
    for block in BLOCK.finditer(text):
        outside.append(text[position:block.start()])
        position = block.end()
        inner = block.group(2).strip()
        if "\n" in inner or BLOCK.search(inner):
            facts += extract_facts(inner, passages=True)[0]
        elif inner:
            facts.append(Fact(block.group(1), inner))
    outside.append(text[position:])
    return facts, "\n".join(outside)


def _json_facts(text: str) -> tuple[list[Fact], str]:
    """Facts from the JSON blocks in a text, and the text without them."""
    facts: list[Fact] = []
    kept: list[str] = []
    position = 0
    for match in re.finditer(r"[{\[]", text):
        if match.start() < position:
            continue
        try:
            value, end = JSON_LITERAL.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, dict) for v in value)):
            facts += _flatten(value, None)
            kept.append(text[position:match.start()])
            position = end
    kept.append(text[position:])
    return facts, "\n".join(kept)


def _flatten(value, label: str | None) -> list[Fact]:
    if isinstance(value, dict):
        return [fact for key, item in value.items() for fact in _flatten(item, f"{label}.{key}" if label else key)]
    if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        return [
            Fact(label, ", ".join(f"{key}: {_scalar(item)}" for key, item in element.items()))
            if isinstance(element, dict) else Fact(label, _scalar(element))
            for element in value
        ]
    return [Fact(label, _scalar(value))]


def _scalar(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(_scalar(item) for item in value)
    return json.dumps(value, ensure_ascii=False)  # true/false/null and nested values


def _terms(text: str) -> set[str]:
    """Content words of English text, and character pairs of Japanese (which has no spaces)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    terms = {w[:-1] if len(w) > 3 and w.endswith("s") else w
             for w in re.findall(r"[a-z0-9]+", text) if len(w) > 1 and w not in STOPWORDS}
    for run in re.findall(r"[\u3040-\u30ff\u3400-\u9fff]+", text):
        pairs = {run[i:i + 2] for i in range(len(run) - 1)} or {run}
        terms |= {p for p in pairs if not re.fullmatch(r"[\u3040-\u309f]+", p)}  # hiragana pairs are particles
    return terms


def _subject(text: str) -> str:
    block = SUBJECT.search(text)
    return block.group(2).strip() if block else text


def _truncate(text: str, max_tokens: int) -> tuple[str, str]:
    if approx_tokens(text) <= max_tokens:
        return text, "end_turn"
    budget = float(max_tokens)
    for end, c in enumerate(text):  # noqa: B007 (where the budget ran out is the answer)
        budget -= 0.25 if c.isascii() else 1
        if budget < 0:
            return text[:end], "max_tokens"
    return text, "max_tokens"
