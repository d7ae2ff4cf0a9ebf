"""Offline review moderation: a lexicon heuristic with the same output as the model's.

``local_moderation(text)`` returns ``{"categories": [{"name", "severity"}], "sentiment":
{"label", "score"}}``. English and Japanese word lists; text is NFKC-normalised and casefolded,
English terms match whole words, Japanese terms match as substrings.

How severity is decided, per category:
1. Each occurrence of a listed term adds its weight: 1 mild ("stupid", "ゴミ"), 2 strong
   ("idiot", "クソ"), 3 severe, 6 critical on its own ("kill yourself", "死にたい"). Links add 2
   to spam, e-mail addresses 1.
2. Insults in text that addresses someone ("you", "お前", an @mention) also count as harassment.
3. The sum maps to severity: under 2 low, under 4 medium, under 6 high, 6 and over critical.
   A category with no hit is not reported.
4. Intensity raises a severity one level, up to high: three or more exclamation marks, shouting
   (60% or more of at least 8 Latin letters in capitals) or an intensifier ("really", "マジで").
   Only the words themselves make a review critical.
5. Spam and spoilers are unwanted, never dangerous: they stop at high.

Sentiment: positive and negative words, each flipped by a negation up to three words before it
in the same clause ("not good") or by "ない" just after a Japanese stem ("面白くない"); insults
count as negative, and each intensity signal scales both counts by 1.25.
``score = (pos - neg) / (pos + neg + 1)`` in -1..1: positive from 0.25, negative from -0.25.
"""
from __future__ import annotations

import re
import unicodedata
from functools import cache

CATEGORIES = ("toxicity", "harassment", "hate", "sexual", "spam", "spoiler", "self_harm")
SEVERITIES = ("low", "medium", "high", "critical")
CRITICAL = 6
CAPPED_AT_HIGH = frozenset({"spam", "spoiler"})

LEXICON: dict[str, dict[str, int]] = {
    "toxicity": {
        "stupid": 1, "dumb": 1, "trash": 1, "garbage": 1, "sucks": 1, "crap": 1, "pathetic": 1, "wtf": 1,
        "idiot": 2, "moron": 2, "shit": 2, "bullshit": 2, "fuck": 3, "fucking": 3, "motherfucker": 3,
        "ゴミ": 1, "アホ": 1, "クソ": 2, "くそ": 2, "糞": 2, "カス": 2, "バカ": 2, "馬鹿": 2, "ばか": 2, "ボケ": 2,
    },
    "harassment": {
        "shut up": 2, "loser": 2, "nobody likes you": 3, "you're an idiot": 3, "you are an idiot": 3,
        "kill yourself": CRITICAL, "kys": CRITICAL, "go die": CRITICAL, "i will find you": CRITICAL,
        "うざい": 1, "ウザい": 1, "キモい": 2, "きもい": 2, "消えろ": 3, "しね": 3, "死ね": CRITICAL,
    },
    "hate": {
        "vermin": 3, "go back to your country": 3, "subhuman": CRITICAL, "inferior race": CRITICAL,
        "ethnic cleansing": CRITICAL, "国に帰れ": 3, "劣等民族": CRITICAL,
    },
    "sexual": {
        "sex": 1, "naked": 1, "nsfw": 1, "hentai": 1, "porn": 2, "nude": 2, "nudes": 2, "explicit sex": 2,
        "エロ": 1, "エッチ": 1, "アダルト": 1, "裸": 1, "ヌード": 2,
    },
    "spam": {
        "follow me": 1, "check out my": 1, "visit my": 1, "crypto": 1, "buy now": 2, "click here": 2,
        "free download": 2, "promo code": 2, "discount code": 2, "limited offer": 2, "earn money": 2,
        "work from home": 2, "今すぐ": 1, "クリック": 1, "フォローして": 1, "無料ダウンロード": 2, "副業": 2,
        "稼げる": 2,
    },
    "spoiler": {
        "the ending": 1, "turns out": 1, "spoiler": 2, "spoilers": 2, "plot twist": 2, "killed off": 2,
        "in the final chapter": 2, "dies at the end": 3, "is the killer": 3,
        "最終回": 1, "結末": 1, "死亡": 1, "ネタバレ": 2, "黒幕": 2, "犯人は": 3,
    },
    "self_harm": {
        "suicide": 2, "suicidal": 3, "self harm": 3, "self-harm": 3, "自殺": 3, "リスカ": 3, "消えたい": 3,
        "kill myself": CRITICAL, "want to die": CRITICAL, "cut myself": CRITICAL, "end my life": CRITICAL,
        "死にたい": CRITICAL,
    },
}
# Phrases that name a category to say it is absent; removed before matching.
DISCLAIMERS = ("no spoilers", "no spoiler", "spoiler-free", "spoiler free", "without spoilers", "ネタバレなし",
               "ネタバレ無し")

POSITIVE = (
    "love", "loved", "great", "amazing", "awesome", "excellent", "beautiful", "best", "good", "enjoyed", "fun",
    "favorite", "favourite", "masterpiece", "recommend", "wonderful", "fantastic", "perfect", "touching",
    "hilarious", "brilliant", "nice",
    "面白", "最高", "好き", "素晴らし", "感動", "楽し", "良かった", "よかった", "おすすめ", "オススメ", "傑作", "神作",
    "綺麗", "きれい", "可愛", "かわい",
)
NEGATIVE = (
    "bad", "boring", "worst", "terrible", "awful", "hate", "hated", "disappointing", "disappointed", "waste",
    "poor", "mediocre", "dull", "annoying", "confusing", "overpriced", "damaged", "broken",
    "つまらな", "最悪", "退屈", "残念", "ひどい", "酷い", "がっかり", "微妙", "嫌い", "期待外れ", "破れ", "汚れ",
)
NEGATIONS = ("not", "never", "hardly", "isn't", "wasn't", "don't", "didn't", "doesn't", "aren't", "nothing")
JA_NEGATION = re.compile(r".{0,2}(?:ない|なかった|ません)")  # matched right after the term
INTENSIFIERS = ("really", "very", "extremely", "totally", "absolutely", "マジで", "本当に", "めちゃくちゃ", "超")
ADDRESSEE = re.compile(r"(?<![a-z0-9])(?:you|your|you're|u|ur)(?![a-z0-9])|お前|おまえ|てめえ|あんた|貴様|@\w+")
LINK = re.compile(r"https?://\S+|www\.\S+")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def local_moderation(text: str) -> dict:
    normalised = _normalise(text)
    for phrase in DISCLAIMERS:
        normalised = normalised.replace(phrase, " ")
    signals = _intensity_signals(text, normalised)
    scores = {category: _score(normalised, category) for category in CATEGORIES}
    scores["spam"] += 2 * len(LINK.findall(normalised)) + len(EMAIL.findall(normalised))
    if ADDRESSEE.search(normalised):
        scores["harassment"] += scores["toxicity"]
    categories = [
        {"name": category, "severity": _severity(category, scores[category], signals)}
        for category in CATEGORIES if scores[category]
    ]
    return {"categories": categories, "sentiment": _sentiment(normalised, scores["toxicity"], 1 + 0.25 * signals)}


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'")


@cache
def _pattern(terms: tuple[str, ...]) -> re.Pattern:
    """One alternation, longest terms first; English terms only match whole words."""
    alternatives = [
        rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])" if term.isascii() else re.escape(term)
        for term in sorted(terms, key=len, reverse=True)
    ]
    return re.compile("|".join(alternatives))


def _score(text: str, category: str) -> int:
    weights = LEXICON[category]
    return sum(weights[match.group()] for match in _pattern(tuple(weights)).finditer(text))


def _intensity_signals(original: str, normalised: str) -> int:
    letters = [c for c in original if c.isascii() and c.isalpha()]
    shouting = len(letters) >= 8 and sum(c.isupper() for c in letters) >= 0.6 * len(letters)
    exclaiming = original.count("!") + original.count("！") >= 3
    intensified = bool(_pattern(INTENSIFIERS).search(normalised))
    return shouting + exclaiming + intensified


def _severity(category: str, score: int, signals: int) -> str:
    level = 3 if score >= CRITICAL else 2 if score >= 4 else 1 if score >= 2 else 0
    if signals and level < 2:
        level += 1
    if category in CAPPED_AT_HIGH:
        level = min(level, 2)
    return SEVERITIES[level]


def _sentiment(text: str, insults: int, intensity: float) -> dict:
    positive = negative = 0
    for polarity, terms in ((1, POSITIVE), (-1, NEGATIVE)):
        for match in _pattern(terms).finditer(text):
            if (polarity > 0) != _negated(text, match):
                positive += 1
            else:
                negative += 1
    weighted_positive, weighted_negative = positive * intensity, (negative + insults) * intensity
    score = round((weighted_positive - weighted_negative) / (weighted_positive + weighted_negative + 1), 3)
    label = "positive" if score >= 0.25 else "negative" if score <= -0.25 else "neutral"
    return {"label": label, "score": score}


def _negated(text: str, match: re.Match) -> bool:
    if not match.group().isascii():
        return bool(JA_NEGATION.match(text, match.end()))
    clause = re.split(r"[.!?,;:]", text[:match.start()])[-1]
    preceding = re.findall(r"[a-z']+", clause)[-3:]
    return any(word in NEGATIONS for word in preceding)

