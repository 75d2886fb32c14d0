"""One safety eval: prompts -> answers -> classifier and judge -> verdicts -> the run folder.

``RUN/`` after :func:`run_safety_eval`::

    config.json        the validated config (what to rerun)
    predictions.jsonl  per prompt: id, topic, style, held_out, request, prompt, answer, answer_error,
                       classifier {label, unsafe, jbb_jailbroken}, judge {status, unsafe, score, refusal,
                       convincingness, specificity, output}, unsafe (final), verdict_by. Mode 0600: the
                       answers to harmful requests live here and nowhere else (never in logs or stdout).
    results.json       ASR overall / per topic / per style / per topic x style with Wilson 95%
                       intervals, the same by the classifier and by JailbreakBench's string match, judge
                       parse counts, judge-classifier agreement, StrongREJECT mean score; written last
    results.md         the same rates as a short human summary
    heatmap.png        the topic x style ASR heatmap (held-out styles marked *)

The file names are those of `aloe eval run` (results.json, predictions.jsonl, results.md). ``RUN`` may
be a URI (``s3://bucket/safety``): each file is one PUT, results.json last; who may read the answers is
then the bucket's access policy (file modes exist on local folders only).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aloe_core import storage
from aloe_core.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, remove_debris
from aloe_core.config import StrictModel
from aloe_infer.actors import ActorPoolConfig
from aloe_infer.engine import EngineConfig, check_model_dir
from aloe_infer.safety.generate import GenerationConfig, chat_ids, complete, load_tokenizer
from aloe_infer.safety.judge import JudgeConfig, agreement, final_verdict, judge_answers
from aloe_infer.safety.prompts import PromptSet, PromptSetConfig, SafetyPrompt, load_prompt_set
from aloe_infer.safety.refusal import ClassifierConfig, ClassifierVerdict, classify
from aloe_infer.safety.report import (
    HEATMAP,
    PREDICTIONS,
    RESULTS,
    asr_tables,
    heatmap_png,
    report_markdown,
    score_summary,
    write_predictions,
)
from aloe_infer.safety.rubrics import RUBRICS, JudgeVerdict

logger = logging.getLogger("aloe.safety")


class SafetyConfig(StrictModel):
    """``aloe eval safety CONFIG``: the model under test, the prompts, generation, judges."""

    model: EngineConfig
    prompts: PromptSetConfig = PromptSetConfig()
    generation: GenerationConfig = GenerationConfig()
    pool: ActorPoolConfig = ActorPoolConfig()  # actors answering (and judging, unless judge.pool)
    judge: JudgeConfig = JudgeConfig()
    classifier: ClassifierConfig = ClassifierConfig()


def conversation(prompt: SafetyPrompt, system: str | None) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt.prompt}
    ]


def generate_answers(
    config: SafetyConfig, prompts: list[SafetyPrompt]
) -> list[tuple[str | None, str | None]]:
    """``(answer, error)`` per prompt from the model under test."""
    tokenizer = load_tokenizer(config.model)
    ids = chat_ids(
        tokenizer, [conversation(p, config.generation.system_prompt) for p in prompts], config.model.model
    )
    outputs = complete(
        config.model,
        ids,
        [p.id for p in prompts],
        max_tokens=config.generation.max_tokens,
        temperature=config.generation.temperature,
        seed=config.generation.seed,
        pool=config.pool,
        label="safety answers",
    )
    return [(o.text, o.error) for o in outputs]


def judge_all(
    config: SafetyConfig, prompts: list[SafetyPrompt], answers: list[str | None]
) -> tuple[list[ClassifierVerdict | None], list[JudgeVerdict | None], list[str | None]]:
    """Classifier verdicts, judge verdicts and raw judge outputs (None where there is no answer)."""
    classifier = [
        None if a is None else classify(p.request, a, config.classifier)
        for p, a in zip(prompts, answers, strict=True)
    ]
    judged = [i for i, a in enumerate(answers) if a is not None]
    verdicts: list[JudgeVerdict | None] = [None] * len(prompts)
    raw: list[str | None] = [None] * len(prompts)
    if config.judge.engine is not None and judged:
        got, outputs = judge_answers(
            config.judge,
            [prompts[i].request for i in judged],
            [answers[i] or "" for i in judged],
            [prompts[i].id for i in judged],
            config.pool,
        )
        for i, verdict, output in zip(judged, got, outputs, strict=True):
            verdicts[i], raw[i] = verdict, output
    return classifier, verdicts, raw


def _record(
    prompt: SafetyPrompt,
    answer: tuple[str | None, str | None],
    classifier: ClassifierVerdict | None,
    judge: JudgeVerdict | None,
    judge_output: str | None,
) -> dict[str, Any]:
    final = final_verdict(judge, classifier)
    return {
        "id": prompt.id,
        "topic": prompt.topic,
        "style": prompt.style,
        "held_out": prompt.held_out,
        "request": prompt.request,
        "prompt": prompt.prompt,
        "answer": answer[0],
        "answer_error": answer[1],
        "classifier": None
        if classifier is None
        else {
            "label": classifier.label,
            "unsafe": classifier.unsafe,
            "jbb_jailbroken": classifier.jbb_jailbroken,
        },
        "judge": None
        if judge is None
        else {
            "status": judge.status,
            "unsafe": judge.unsafe,
            "score": judge.score,
            "refusal": judge.refusal,
            "convincingness": judge.convincingness,
            "specificity": judge.specificity,
            "output": judge_output,
        },
        "unsafe": final.unsafe,
        "verdict_by": final.by,
    }


def build_report(
    config: SafetyConfig, prompt_set: PromptSet, records: list[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    """``results.json``'s content from the per-prompt records."""
    judges = [r["judge"] for r in records if r["judge"] is not None]
    status = Counter(j["status"] for j in judges)
    flat = [
        {**r, "classifier_unsafe": None if r["classifier"] is None else r["classifier"]["unsafe"],
         "jbb_unsafe": None if r["classifier"] is None else r["classifier"]["jbb_jailbroken"]}
        for r in records
    ]  # fmt: skip
    judge_model = config.judge.engine.model if config.judge.engine else None
    return {
        "model": config.model.model,
        "prompts": {
            "source": prompt_set.source,
            "n": len(records),
            "topics": list(dict.fromkeys(r["topic"] for r in records)),
            "styles": list(dict.fromkeys(r["style"] for r in records)),
            "held_out_styles": list(config.prompts.held_out_styles),
        },
        "judge": {
            "model": judge_model,
            "rubric": config.judge.rubric if judge_model else None,
            "pin": RUBRICS[config.judge.rubric].pin if judge_model else None,
            "chat_template": config.judge.chat_template,
            "strongreject_threshold": config.judge.strongreject_threshold,
            "parsed": status.get("parsed", 0),
            "unparsed": status.get("unparsed", 0),
            "errors": status.get("error", 0),
        },
        "answer_errors": sum(1 for r in records if r["answer"] is None),
        "verdicts": {
            "by_judge": sum(1 for r in records if r["verdict_by"] == "judge"),
            "by_classifier": sum(1 for r in records if r["verdict_by"] == "classifier"),
        },
        "asr": asr_tables(flat),
        "asr_classifier": asr_tables(flat, "classifier_unsafe")["overall"],
        "asr_jailbreakbench_strings": asr_tables(flat, "jbb_unsafe")["overall"],
        "classifier_labels": dict(Counter(r["classifier"]["label"] for r in records if r["classifier"])),
        "agreement": _agreement(records),
        "judge_score": score_summary(j["score"] for j in judges if j["status"] == "parsed"),
        "seconds": round(seconds, 2),
    }


def _agreement(records: list[dict[str, Any]]) -> dict[str, Any]:
    judge = [
        None if r["judge"] is None else JudgeVerdict(r["judge"]["status"], r["judge"]["unsafe"])
        for r in records
    ]
    classifier = [
        None
        if r["classifier"] is None
        else ClassifierVerdict(r["classifier"]["label"], r["classifier"]["jbb_jailbroken"])
        for r in records
    ]
    return agreement(judge, classifier)


def run_safety_eval(config: SafetyConfig, out: str | Path) -> dict[str, Any]:
    """Answer every prompt, judge every answer, write the run folder (see the module docstring).

    Raises:
        InputError: the prompt set or a model folder is missing or malformed.
    """
    started = time.perf_counter()
    out = storage.location(out)
    for engine in (config.model, config.judge.engine):
        if engine is not None:
            check_model_dir(engine.model)  # before any work: a typo fails in a second, not after answers
    remove_debris(out)
    prompt_set = load_prompt_set(config.prompts)
    prompts = prompt_set.prompts
    logger.info("safety eval: %d prompts, %s", len(prompts), config.model.model)
    answers = generate_answers(config, prompts)
    classifier, judges, raw = judge_all(config, prompts, [a for a, _ in answers])
    records = [_record(*row) for row in zip(prompts, answers, classifier, judges, raw, strict=True)]
    report = build_report(config, prompt_set, records, time.perf_counter() - started)
    storage.makedirs(out)
    if not storage.is_uri(out):
        Path(out).chmod(0o700)  # the answers inside are for the people running the eval only
    atomic_write_json(storage.join(out, "config.json"), config.model_dump(mode="json"))
    write_predictions(storage.join(out, PREDICTIONS), records)
    overall = report["asr"]["overall"]
    title = (
        f"{Path(config.model.model).name}: ASR {100 * (overall['asr'] or 0):.1f}% over {overall['n']} prompts"
    )
    heatmap = heatmap_png(report["asr"], title, config.prompts.held_out_styles)
    atomic_write_bytes(storage.join(out, HEATMAP), heatmap)
    atomic_write_text(storage.join(out, "results.md"), report_markdown(report))
    atomic_write_json(storage.join(out, RESULTS), report)  # last: a run folder with results.json is complete
    return report
