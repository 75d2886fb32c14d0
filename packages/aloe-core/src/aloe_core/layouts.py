"""Record layouts: one small function per public dataset format, raw dict -> :class:`Parsed`.

A layout only understands the shape of one format; it knows nothing about files, ids or record kinds.
It returns one of three families of content (see :data:`~aloe_data.sources.config.FORMAT_FAMILY`):

* ``mcqa``: ``{question, options: [{letter, text}], answer, context, explanation}``;
* ``chat``: ``{task, messages: [{role, content}]}``;
* ``preference``: ``{prompt: [{role, content}], chosen, rejected}``;

plus ``meta``: provenance worth keeping (original ids, subjects, exam years...).

Anything wrong with a row raises :class:`RowError` naming the field path in the raw row (``cop``,
``options.B``, ``conversations[2].from``), which the reader turns into a quarantined ``malformed`` row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aloe_core.schemas import ROLES


class RowError(ValueError):
    """A raw row cannot be normalised: ``field`` is the path in the raw row, ``message`` what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Parsed:
    """A normalised raw row: ``content`` of the layout's family, and provenance for ``meta``."""

    content: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


Layout = Callable[[Mapping[str, Any]], Parsed]

# -- field helpers -------------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number" if isinstance(value, int | float) else type(value).__name__)


def _describe(value: Any) -> str:
    return "an empty list" if value == [] else _type_name(value)


def require_str(
    raw: Mapping[str, Any], key: str, *, path: str | None = None, allow_empty: bool = False
) -> str:
    """``raw[key]`` as a string; missing, null, non-string or (unless allowed) blank -> RowError."""
    path = path or key
    value = raw.get(key)
    if value is None:
        raise RowError(path, "required field is missing")
    if not isinstance(value, str):
        raise RowError(path, f"must be a string, got {_type_name(value)}")
    if not allow_empty and not value.strip():
        raise RowError(path, "must not be empty")
    return value


def optional_str(raw: Mapping[str, Any], key: str, *, path: str | None = None) -> str | None:
    """``raw[key]`` as a string, or None when missing, null or blank; a non-string -> RowError."""
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RowError(path or key, f"must be a string, got {_type_name(value)}")
    return value if value.strip() else None


def join_context(value: Any, path: str) -> str | None:
    """A context given as a string or a list of paragraphs, joined with blank lines (None if empty)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if not isinstance(value, list):
        raise RowError(path, f"must be a string or a list of strings, got {_type_name(value)}")
    for i, paragraph in enumerate(value):
        if not isinstance(paragraph, str):
            raise RowError(f"{path}[{i}]", f"must be a string, got {_type_name(paragraph)}")
    paragraphs = [p.strip() for p in value if p.strip()]
    return "\n\n".join(paragraphs) or None


def _option_text(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # numeric answers ("12", "0.5") are legitimate option texts
    raise RowError(path, f"must be a string, got {_type_name(value)}")


def normalise_options(value: Any, path: str) -> list[dict[str, str]]:
    """Options as given ({letter: text}, [{letter, text}] or Arrow map pairs) -> ordered [{letter, text}].

    Null-valued entries are dropped: a struct column of a Parquet/Arrow file holds the union of all rows'
    letters, so a 3-option row read from it has ``D: null``.
    """
    if value is None:
        raise RowError(path, "required field is missing")
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list) and all(isinstance(o, Mapping) for o in value):
        for i, option in enumerate(value):
            if "letter" not in option or "text" not in option:
                raise RowError(f"{path}[{i}]", "must have `letter` and `text`")
        pairs = [(o["letter"], o["text"]) for o in value]
    elif isinstance(value, list) and all(isinstance(o, list | tuple) and len(o) == 2 for o in value):
        pairs = [tuple(o) for o in value]
    else:
        raise RowError(path, f"must be an object {{letter: text}}, got {_type_name(value)}")
    options = []
    for letter, text in pairs:
        if text is None:
            continue
        if not isinstance(letter, str) or not letter.strip():
            raise RowError(path, f"option letters must be non-empty strings, got {letter!r}")
        options.append({"letter": letter.strip(), "text": _option_text(text, f"{path}.{letter}")})
    if len(options) < 2:
        raise RowError(path, f"must have at least two options, got {len(options)}")
    letters = [o["letter"] for o in options]
    if len(set(letters)) != len(letters):
        raise RowError(path, f"option letters must be unique, got {letters}")
    return options


def answer_letter(value: Any, path: str, options: list[dict[str, str]]) -> str:
    """The correct option's letter, matched exactly or, failing that, case-insensitively."""
    if value is None:
        raise RowError(path, "required field is missing")
    if not isinstance(value, str):
        raise RowError(path, f"must be an option letter (string), got {_type_name(value)}")
    letters = [o["letter"] for o in options]
    letter = value.strip()
    if letter not in letters:
        by_case = {lt.casefold(): lt for lt in letters}
        letter = by_case.get(letter.casefold(), "")
    if not letter:
        raise RowError(path, f"{value!r} is not one of the option letters {letters}")
    return letter


def scalar_meta(raw: Mapping[str, Any], keys: Mapping[str, str]) -> dict[str, Any]:
    """Copy provenance fields ``{raw_key: meta_key}`` that are present and not null."""
    return {meta_key: raw[key] for key, meta_key in keys.items() if raw.get(key) is not None}


def _original_id(raw: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        value = raw.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return {"original_id": str(value)}
    return {}


def mcqa_content(
    question: str,
    options: list[dict[str, str]],
    answer: str,
    context: str | None = None,
    explanation: str | None = None,
) -> dict[str, Any]:
    return {
        "question": question.strip(),
        "options": options,
        "answer": answer,
        "context": context,
        "explanation": explanation.strip() if explanation else None,
    }


# -- multiple choice -----------------------------------------------------------------------------------


def prompt_engine_mcqa(raw: Mapping[str, Any]) -> Parsed:
    """HPAI-BSC prompt_engine: ``{id?, question, options{A..}, correct_answer, context?, explanation?}``.

    CareQA's ``exam_id``/``year``/``category`` go to meta.
    """
    question = require_str(raw, "question")
    options = normalise_options(raw.get("options"), "options")
    answer = answer_letter(raw.get("correct_answer"), "correct_answer", options)
    context = join_context(raw.get("context"), "context")
    explanation = optional_str(raw, "explanation")
    meta = {**_original_id(raw, "id"), **scalar_meta(raw, {k: k for k in ("exam_id", "year", "category")})}
    return Parsed(mcqa_content(question, options, answer, context, explanation), meta)


MEDMCQA_OPTIONS = (("A", "opa"), ("B", "opb"), ("C", "opc"), ("D", "opd"))


def medmcqa(raw: Mapping[str, Any]) -> Parsed:
    """MedMCQA as released on the HF hub (openlifescienceai/medmcqa).

    ``cop`` is the 0-based index (0-3) of the correct option among ``opa..opd``, as in that release;
    anything else (including the 1-based 1-4 of some copies) is rejected rather than guessed, since a
    1-based file read as 0-based would silently shift every answer.
    """
    question = require_str(raw, "question")
    options = []
    for letter, key in MEDMCQA_OPTIONS:
        if raw.get(key) is None:
            raise RowError(key, "required field is missing")
        options.append({"letter": letter, "text": _option_text(raw[key], key)})
    cop = raw.get("cop")
    if cop is None:
        raise RowError("cop", "required field is missing")
    if isinstance(cop, bool) or not isinstance(cop, int) or not 0 <= cop <= 3:
        raise RowError("cop", f"must be the 0-based index 0-3 of the correct option (opa..opd), got {cop!r}")
    meta = {
        **_original_id(raw, "id"),
        **scalar_meta(raw, {"subject_name": "subject", "topic_name": "topic", "choice_type": "choice_type"}),
    }
    return Parsed(mcqa_content(question, options, "ABCD"[cop], None, optional_str(raw, "exp")), meta)


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def medqa(raw: Mapping[str, Any]) -> Parsed:
    """MedQA (USMLE) JSONL: ``{question, options{A..}, answer_idx, answer, meta_info}``.

    ``answer`` (the correct option's text), when present, must match the option named by ``answer_idx``
    up to case and spacing; a mismatch means the row is corrupt and which one is right is unknown.
    """
    question = require_str(raw, "question")
    options = normalise_options(raw.get("options"), "options")
    letter = answer_letter(raw.get("answer_idx"), "answer_idx", options)
    answer_text = raw.get("answer")
    if answer_text is not None:
        if not isinstance(answer_text, str):
            raise RowError("answer", f"must be a string, got {_type_name(answer_text)}")
        option_text = next(o["text"] for o in options if o["letter"] == letter)
        if not _same_text(answer_text, option_text):
            raise RowError(
                "answer",
                f"{answer_text!r} does not match option {letter} ({option_text!r}) named by answer_idx",
            )
    meta = {**_original_id(raw, "id"), **scalar_meta(raw, {"meta_info": "meta_info"})}
    return Parsed(mcqa_content(question, options, letter), meta)


PUBMEDQA_OPTIONS = [
    {"letter": "A", "text": "yes"},
    {"letter": "B", "text": "no"},
    {"letter": "C", "text": "maybe"},
]


def pubmedqa(raw: Mapping[str, Any]) -> Parsed:
    """PubMedQA: the original ``ori_pqal.json`` items ``{QUESTION, CONTEXTS, LABELS?, final_decision,
    LONG_ANSWER, YEAR?, MESHES?}`` or the HF hub rows ``{pubid, question, context{contexts, labels},
    long_answer, final_decision}``, as an MCQA item with options A yes / B no / C maybe."""
    hub = "QUESTION" not in raw and "question" in raw
    question = require_str(raw, "question" if hub else "QUESTION")
    if hub:
        context_obj = raw.get("context")
        if not isinstance(context_obj, Mapping):
            raise RowError("context", f"must be an object with `contexts`, got {_type_name(context_obj)}")
        contexts, path, labels = context_obj.get("contexts"), "context.contexts", context_obj.get("labels")
    else:
        contexts, path, labels = raw.get("CONTEXTS"), "CONTEXTS", raw.get("LABELS")
    if contexts is None:
        raise RowError(path, "required field is missing")
    context = join_context(contexts, path)
    decision = raw.get("final_decision")
    choice = {"yes": "A", "no": "B", "maybe": "C"}.get(
        decision.strip().lower() if isinstance(decision, str) else ""
    )
    if choice is None:
        raise RowError("final_decision", f"must be one of yes, no, maybe; got {decision!r}")
    explanation = optional_str(raw, "long_answer" if hub else "LONG_ANSWER")
    meta = {**_original_id(raw, "pubid"), **scalar_meta(raw, {"YEAR": "year"})}
    if labels is not None:
        meta["context_labels"] = labels
    return Parsed(
        mcqa_content(question, [dict(o) for o in PUBMEDQA_OPTIONS], choice, context, explanation), meta
    )


# -- conversations -------------------------------------------------------------------------------------


def _content_text(content: Any, path: str) -> str:
    """Message content: a string, or OpenAI-style text parts ``[{type: text, text}]`` joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if (
                not isinstance(part, Mapping)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise RowError(f"{path}[{i}]", "only text parts {type: text, text} are supported")
            texts.append(part["text"])
        return "".join(texts)
    if content is None:
        raise RowError(path, "required field is missing")
    raise RowError(path, f"must be a string, got {_type_name(content)}")


def normalise_messages(value: Any, path: str) -> list[dict[str, str]]:
    """A list of ``{role, content}`` (extra keys dropped); roles must be system, user or assistant."""
    if value is None:
        raise RowError(path, "required field is missing")
    if not isinstance(value, list) or not value:
        raise RowError(path, f"must be a non-empty list of messages, got {_describe(value)}")
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, Mapping):
            raise RowError(
                f"{path}[{i}]", f"must be an object with role and content, got {_type_name(message)}"
            )
        role = message.get("role")
        if role not in ROLES:
            raise RowError(f"{path}[{i}].role", f"must be one of {list(ROLES)}, got {role!r}")
        messages.append(
            {"role": role, "content": _content_text(message.get("content"), f"{path}[{i}].content")}
        )
    return messages


def openai_chat(raw: Mapping[str, Any]) -> Parsed:
    """OpenAI chat format: ``{messages: [{role, content}], id?}``."""
    return Parsed(
        {"task": "chat", "messages": normalise_messages(raw.get("messages"), "messages")},
        _original_id(raw, "id"),
    )


SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "model": "assistant",
}


def sharegpt(raw: Mapping[str, Any]) -> Parsed:
    """ShareGPT: ``{conversations: [{from: system|human|user|gpt|assistant, value}], system?, id?}``."""
    turns = raw.get("conversations")
    if turns is None:
        raise RowError("conversations", "required field is missing")
    if not isinstance(turns, list) or not turns:
        raise RowError("conversations", f"must be a non-empty list of turns, got {_describe(turns)}")
    messages = []
    system = optional_str(raw, "system")
    if system is not None:
        messages.append({"role": "system", "content": system})
    for i, turn in enumerate(turns):
        if not isinstance(turn, Mapping):
            raise RowError(
                f"conversations[{i}]", f"must be an object with from and value, got {_type_name(turn)}"
            )
        speaker = turn.get("from")
        role = SHAREGPT_ROLES.get(speaker.strip().lower()) if isinstance(speaker, str) else None
        if role is None:
            raise RowError(
                f"conversations[{i}].from",
                f"unknown speaker {speaker!r}; expected one of {sorted(SHAREGPT_ROLES)}",
            )
        messages.append(
            {
                "role": role,
                "content": require_str(turn, "value", path=f"conversations[{i}].value", allow_empty=True),
            }
        )
    return Parsed({"task": "chat", "messages": messages}, _original_id(raw, "id"))


def alpaca(raw: Mapping[str, Any]) -> Parsed:
    """Alpaca: ``{instruction, input?, output}`` -> user: instruction (+ blank line + input),
    assistant: output."""
    instruction = require_str(raw, "instruction")
    extra = optional_str(raw, "input")
    output = require_str(raw, "output")
    user = instruction if extra is None else f"{instruction}\n\n{extra}"
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
    return Parsed({"task": "chat", "messages": messages}, _original_id(raw, "id"))


def prompt_engine_open(raw: Mapping[str, Any]) -> Parsed:
    """Open-ended prompt_engine items (OpenMedQA): ``{id?, question, correct_answer (text), context?}``."""
    question = require_str(raw, "question").strip()
    answer = require_str(raw, "correct_answer")
    context = join_context(raw.get("context"), "context")
    user = question if context is None else f"{context}\n\n{question}"
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return Parsed({"task": "open_qa", "messages": messages}, _original_id(raw, "id"))


# -- preference pairs ----------------------------------------------------------------------------------


def _answer_text(value: Any, path: str) -> str:
    """A chosen/rejected answer: a string, or a TRL-style message list whose last assistant turn is taken."""
    if isinstance(value, str):
        if not value.strip():
            raise RowError(path, "must not be empty")
        return value
    if isinstance(value, list):
        messages = normalise_messages(value, path)
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        if not answers:
            raise RowError(path, "has no assistant message")
        return answers[-1]
    if value is None:
        raise RowError(path, "required field is missing")
    raise RowError(path, f"must be a string or a list of messages, got {_type_name(value)}")


def _implicit_prompt(raw: Mapping[str, Any]) -> list[dict[str, str]]:
    """TRL's implicit-prompt form: chosen and rejected are whole conversations sharing all but the answer."""
    chosen, rejected = raw.get("chosen"), raw.get("rejected")
    if isinstance(chosen, list) and isinstance(rejected, list) and len(chosen) > 1:
        prefix = normalise_messages(chosen, "chosen")[:-1]
        if prefix == normalise_messages(rejected, "rejected")[:-1]:
            return prefix
        raise RowError(
            "prompt", "missing, and chosen and rejected do not share the same conversation before the answer"
        )
    raise RowError("prompt", "required field is missing")


def preference(raw: Mapping[str, Any]) -> Parsed:
    """Preference pairs: ``{prompt, chosen, rejected}``; prompt a string (one user turn) or messages."""
    prompt_value = raw.get("prompt")
    if prompt_value is None:
        prompt = _implicit_prompt(raw)
    elif isinstance(prompt_value, str):
        if not prompt_value.strip():
            raise RowError("prompt", "must not be empty")
        prompt = [{"role": "user", "content": prompt_value}]
    else:
        prompt = normalise_messages(prompt_value, "prompt")
    content = {
        "prompt": prompt,
        "chosen": _answer_text(raw.get("chosen"), "chosen"),
        "rejected": _answer_text(raw.get("rejected"), "rejected"),
    }
    # A category (e.g. safety_refusal, factual) lets training pick a stage's pairs (DPO data.where).
    return Parsed(content, {**_original_id(raw, "id"), **scalar_meta(raw, {"category": "category"})})


LAYOUTS: dict[str, Layout] = {
    "prompt_engine_mcqa": prompt_engine_mcqa,
    "prompt_engine_open": prompt_engine_open,
    "medmcqa": medmcqa,
    "medqa": medqa,
    "pubmedqa": pubmedqa,
    "openai_chat": openai_chat,
    "sharegpt": sharegpt,
    "alpaca": alpaca,
    "preference": preference,
}


# What each layout's rows look like at the top level, for guessing a source's layout from its first rows
# (:mod:`aloe_data.sources.sniff`): one or more (keys every row has, keys no row of the layout has).
LAYOUT_KEYS: dict[str, tuple[tuple[frozenset[str], frozenset[str]], ...]] = {
    "prompt_engine_mcqa": ((frozenset({"question", "options", "correct_answer"}), frozenset()),),
    "prompt_engine_open": ((frozenset({"question", "correct_answer"}), frozenset({"options"})),),
    "medmcqa": ((frozenset({"question", "opa", "opb", "cop"}), frozenset()),),
    "medqa": ((frozenset({"question", "options", "answer_idx"}), frozenset()),),
    "pubmedqa": (
        (frozenset({"QUESTION", "final_decision"}), frozenset()),
        (frozenset({"question", "context", "final_decision"}), frozenset()),
    ),
    "openai_chat": ((frozenset({"messages"}), frozenset()),),
    "sharegpt": ((frozenset({"conversations"}), frozenset()),),
    "alpaca": ((frozenset({"instruction", "output"}), frozenset()),),
    "preference": ((frozenset({"chosen", "rejected"}), frozenset()),),
}


def layouts_matching(keys: set[str] | frozenset[str]) -> list[str]:
    """The layouts whose top-level keys a row with ``keys`` has (see :data:`LAYOUT_KEYS`)."""
    return [
        name
        for name, variants in LAYOUT_KEYS.items()
        if any(required <= keys and not (forbidden & keys) for required, forbidden in variants)
    ]


def sniff_benchmark_format(raw: Mapping[str, Any]) -> str | None:
    """The benchmark format a raw row looks like, from its keys (None: none of them).

    Used by decontamination (aloe-data) and the eval harness (aloe-infer) to read folders that mix formats.
    """
    if {"opa", "opb", "cop"} <= raw.keys():
        return "medmcqa"
    if "QUESTION" in raw or ("question" in raw and isinstance(raw.get("context"), Mapping)):
        return "pubmedqa"
    if "answer_idx" in raw:
        return "medqa"
    if "question" in raw and "correct_answer" in raw:
        return "prompt_engine_mcqa" if raw.get("options") is not None else "prompt_engine_open"
    return None
