"""Text-level mutations that turn a clean item into a planted defect (duplicates, PII, bad answers...).

Fields of an item are addressed by a small target string: ``"question"``, ``"long_answer"``,
``"prompt"``, ``"chosen"``, or ``"msg:<i>"`` for the i-th chat message.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace

from aloe_core.text import jaccard, normalize_for_matching, word_ngrams
from aloe_fixtures.corpus.items import ChatItem, Item, McqaItem, PreferenceItem, YesNoItem, matching_text
from aloe_fixtures.corpus.phrasing import pick, rint

# -- addressing fields ----------------------------------------------------------------------------------


def get_text(item: Item, target: str) -> str:
    if target.startswith("msg:"):
        return item.messages[int(target[4:])][1]  # type: ignore[union-attr]
    return getattr(item, target)


def set_text(item: Item, target: str, text: str) -> Item:
    if target.startswith("msg:"):
        assert isinstance(item, ChatItem), f"target {target} needs a chat item"
        i = int(target[4:])
        messages = list(item.messages)
        messages[i] = (messages[i][0], text)
        alpaca_input = item.alpaca_input if i != 0 else None
        return replace(item, messages=tuple(messages), alpaca_input=alpaca_input)
    return replace(item, **{target: text})


def question_target(item: Item) -> str:
    """The field holding the (last) question of an item."""
    if isinstance(item, McqaItem | YesNoItem):
        return "question"
    if isinstance(item, PreferenceItem):
        return "prompt"
    return f"msg:{max(i for i, (r, _) in enumerate(item.messages) if r == 'user')}"


def answer_target(item: Item) -> str:
    """The field holding the (last) answer of an item."""
    if isinstance(item, McqaItem):
        return "explanation"
    if isinstance(item, YesNoItem):
        return "long_answer"
    if isinstance(item, PreferenceItem):
        return "chosen"
    return f"msg:{len(item.messages) - 1}"


_WORD = re.compile(r"[A-Za-z]{3,}")


def surface_variant(rng: random.Random, text: str, punctuation: bool = True) -> str:
    """``text`` with one to three changes of case, spacing or (optionally) punctuation: same normalised "
    "text."""
    out = text
    for _ in range(rint(rng, 1, 3)):
        op = rng.randrange(4 if punctuation else 2)
        spaces = [m.start() for m in re.finditer(" ", out)]
        if op == 0:
            found = list(_WORD.finditer(out))
            if found:
                m = pick(rng, found)
                word = m.group()
                new = word.upper() if word != word.upper() else word.lower()
                out = out[: m.start()] + new + out[m.end() :]
        elif op == 1 and spaces:
            i = pick(rng, spaces)
            out = out[:i] + "  " + out[i + 1 :]
        elif op == 2 and out and out[-1] in ".?!:":
            out = out[:-1]
        elif op == 3 and spaces:
            i = pick(rng, spaces)
            if out[i - 1].isalnum():
                out = out[:i] + "," + out[i:]
        elif punctuation:
            out = out + "."
        else:
            out = out.replace(" ", "  ", 1)
    if out == text:  # two case flips of the same word can cancel out
        out = text.replace(" ", "  ", 1) if " " in text else f"{text}."
    assert normalize_for_matching(out) == normalize_for_matching(text), (text, out)
    return out


# -- near duplicates ------------------------------------------------------------------------------------

SYNONYMS = {
    "patient": "individual",
    "presents": "comes in",
    "most likely": "most probable",
    "treatment": "therapy",
    "therapy": "treatment",
    "doctor": "physician",
    "physician": "doctor",
    "shows": "reveals",
    "reveals": "shows",
    "typically": "usually",
    "usually": "typically",
    "commonly": "frequently",
    "often": "frequently",
    "medication": "medicine",
    "medicine": "medication",
    "important": "essential",
    "common": "frequent",
    "severe": "serious",
    "begin": "start",
    "start": "begin",
    "started": "begun",
    "symptoms": "complaints",
    "because": "since",
    "about": "approximately",
    "main": "principal",
    "key": "central",
    "classic": "typical",
    "characteristic": "typical",
    "examination": "assessment",
    "evaluation": "assessment",
    "best": "most accurately",
    "recent": "new",
    "used": "prescribed",
    "prescribed": "given",
    "causes": "produces",
    "risk": "chance",
    "increase": "raise",
    "reduce": "lower",
    "also": "additionally",
    "problem": "issue",
    "worried": "concerned",
    "explain": "describe",
    "quick": "brief",
    "mainly": "chiefly",
    "help": "assist",
    "need": "require",
}
FILLERS = ("also", "now", "currently", "really", "then", "still", "just", "clearly", "generally", "certainly")
_SYN = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, SYNONYMS), key=len, reverse=True)) + r")\b", re.IGNORECASE
)
_ALPHA_WORD = re.compile(r"\b[A-Za-z]{5,}\b")


def _match_case(src: str, new: str) -> str:
    return new[:1].upper() + new[1:] if src[:1].isupper() else new


def _synonym(rng: random.Random, text: str) -> str | None:
    found = list(_SYN.finditer(text))
    if not found:
        return None
    m = pick(rng, found)
    new = _match_case(m.group(), SYNONYMS[m.group().lower()])
    return text[: m.start()] + new + text[m.end() :]


def _insert_or_delete(rng: random.Random, text: str) -> str | None:
    spaces = [m.start() for m in re.finditer(r"(?<=[a-z]) (?=[a-z])", text)]
    if not spaces:
        return None
    i = pick(rng, spaces)
    if rng.random() < 0.6:
        return text[:i] + f" {pick(rng, FILLERS)}" + text[i:]
    small = [m for m in re.finditer(r" (the|a|an|and|very|that) ", text)]
    if not small:
        return text[:i] + f" {pick(rng, FILLERS)}" + text[i:]
    m = pick(rng, small)
    return text[: m.start()] + " " + text[m.end() :]


def _typo(rng: random.Random, text: str) -> str | None:
    found = list(_ALPHA_WORD.finditer(text))
    if not found:
        return None
    m = pick(rng, found)
    w = m.group()
    j = rint(rng, 1, len(w) - 3)
    op = rng.randrange(3)
    if op == 0:
        new = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    elif op == 1:
        new = w[:j] + w[j + 1 :]
    else:
        new = w[:j] + w[j] + w[j:]
    return text[: m.start()] + new + text[m.end() :]


EDITS = {"synonyms": _synonym, "insert_delete": _insert_or_delete, "typos": _typo}


def near_duplicate(
    rng: random.Random, item: Item, low: float = 0.88, high: float = 0.97
) -> tuple[Item, float, str] | None:
    """A reworded copy of ``item``: matching-text 5-gram Jaccard in [low, high], not an exact duplicate.

    Methods: ``synonyms`` (word swaps), ``insert_delete`` (a few words added or removed), ``typos`` (character
    edits), and for MCQA ``reorder_reword`` (options shuffled plus one rewording). Edits accumulate until the
    Jaccard falls below a random stop point in [0.90, 0.96]; None when the text is too short to stay >= low
    (the default 0.88 keeps planted pairs well above a 0.8 MinHash threshold).
    """
    method = pick(rng, (*EDITS, "reorder_reword") if isinstance(item, McqaItem) else tuple(EDITS))
    edit = EDITS["synonyms" if method == "reorder_reword" else method]
    target = _edit_target(rng, item)
    out = item
    if method == "reorder_reword":
        assert isinstance(item, McqaItem)
        order = list(range(len(item.options)))
        while order == sorted(order):
            rng.shuffle(order)
        out = item.reordered(order)
    stop = rng.uniform(0.90, 0.96)
    original = word_ngrams(matching_text(item), 5)
    for _ in range(40):
        text = get_text(out, target)
        changed = edit(rng, text) or _typo(rng, text)
        if changed is None:
            break
        out = set_text(out, target, changed)
        score = jaccard(original, word_ngrams(matching_text(out), 5))
        if score < low:
            break
        if score <= min(stop, high):
            return out, score, method
    return _lead_in(rng, item, original, low, high)


LEAD_INS = ("Briefly", "Quick question", "Please note", "One more thing", "In short", "To be clear", "Again")


def _lead_in(
    rng: random.Random, item: Item, original: set[str], low: float, high: float
) -> tuple[Item, float, str] | None:
    """Fallback for short texts, where any inner edit breaks too many 5-grams: put a few words in front of
    the text's first part. That only adds shingles (about one per added word), so the Jaccard stays high."""
    target = {McqaItem: "question", PreferenceItem: "prompt"}.get(type(item), "msg:0")
    text = get_text(item, target)
    for words in range(1, 5):
        lead = " ".join([*rng.sample(FILLERS, words - 1), pick(rng, LEAD_INS)])
        out = set_text(item, target, f"{lead[:1].upper()}{lead[1:]}: {text}")
        score = jaccard(original, word_ngrams(matching_text(out), 5))
        if score < low:
            return None
        if score <= high:
            return out, score, "insert_delete"
    return None


def _edit_target(rng: random.Random, item: Item) -> str:
    if isinstance(item, ChatItem):
        turns = [i for i, (r, _) in enumerate(item.messages) if r != "system"]
        return f"msg:{max(turns, key=lambda i: len(item.messages[i][1]))}"
    if isinstance(item, PreferenceItem):
        return "chosen" if len(item.chosen) > len(item.prompt) else "prompt"
    return "question"
