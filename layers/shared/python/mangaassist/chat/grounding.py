"""Grounding: the catalog products a message is about, as facts in the prompt, and which of them
an answer cites.

The products closest to the message (and to the session's last user message, so "and the next
volume?" still finds the series) are put in the system prompt as a ``<products>`` block, one
numbered line per product. Every model is told to use only those facts. The answer cites a
product when it names it: by its number (``[2]``), its id or its title. The offline provider
restates the lines it finds relevant, so it cites by title; Bedrock's models are asked to cite
by number.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from mangaassist.prompts import chat_instructions
from mangaassist.search import Hit

TOP_K = 5
FACT_FIELDS = (("title", "title"), ("author", "author"), ("genres", "genres"), ("price", "price"),
               ("release_date", "release date"), ("product_id", "product_id"))
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


@dataclass(frozen=True)
class Product:
    number: int
    product_id: str
    title: str
    fields: dict

    def line(self) -> str:
        facts = []
        for field, label in FACT_FIELDS:
            value = self.fields.get(field) if field != "product_id" else self.product_id
            if value in (None, "", []):
                continue
            if field == "price" and self.fields.get("currency"):
                value = f"{value} {self.fields['currency']}"
            facts.append(f"{label}: {', '.join(map(str, value)) if isinstance(value, list) else value}")
        return f"[{self.number}] " + " | ".join(facts)


def language(text: str, requested: str | None) -> str:
    return requested or ("ja" if JAPANESE.search(text) else "en")


def products(hits: list[Hit]) -> list[Product]:
    return [Product(i, hit.id, str(hit.fields.get("title") or hit.id), hit.fields) for i, hit in enumerate(hits, 1)]


def system_prompt(found: list[Product], locale: str, version: str = "v1") -> str:
    lines = "\n".join(product.line() for product in found) or "(no matching products)"
    return f"{chat_instructions(version, locale)}\n<products>\n{lines}\n</products>"


def cited(answer: str, found: list[Product]) -> list[dict]:
    """The products the answer names, in the order of the facts."""
    folded = answer.casefold()
    return [{"product_id": p.product_id, "title": p.title} for p in found
            if f"[{p.number}]" in answer or p.product_id.casefold() in folded or p.title.casefold() in folded]
