"""DEITA scoring against a plain one-prompt-at-a-time transformers reference, on the tiny model."""

from __future__ import annotations

import importlib.util
import itertools
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from aloe_core.config import validate_config
from aloe_core.errors import AloeError, ConfigError, MissingExtraError
from aloe_core.schemas import dumps_meta, loads_meta, record_id, to_table
from aloe_data.pipeline.config import OutputConfig
from aloe_data.pipeline.single import run_stage_on_files
from aloe_data.scoring.prompts import PromptFitter, conversation_turns, share_budget
from aloe_data.stages.deita import DeitaBatchScorer, DeitaScoreConfig, DeitaScoreStage, load_scoring_model

# DEITA's Llama scorer templates, copied here from deita/selection/scorer/llama_scorer.py on purpose: the
# library must use them verbatim.
COMPLEXITY = (
    "You are a helpful assistant. Please identify the complexity score of the following user query. \n"
    "##Query: {instruction}  \n##Complexity: "
)
QUALITY = (
    "You are a helpful assistant. Please identify the quality score of the Response corresponding to the "
    "Question. \n #Question#:\n{instruction}\n#Response#:\n{output} \n##Quality: "
)
QUESTIONS = [
    "What is the first-line drug for type 2 diabetes?",
    "Which electrolyte disturbance is typical of Addison disease, and why does it occur?",
    "Explain how warfarin works.",
    "List three causes of acute kidney injury in hospitalised adults and how to tell them apart.",
    "What does an elevated troponin mean?",
    "Why are ACE inhibitors avoided in pregnancy?",
]
ANSWERS = [
    "Metformin, unless contraindicated.",
    "Hyperkalaemia and hyponatraemia, because aldosterone deficiency impairs sodium retention and "
    "potassium excretion in the distal nephron.",
    "It inhibits vitamin K epoxide reductase, lowering factors II, VII, IX and X.",
    "Prerenal (hypovolaemia), intrinsic (acute tubular necrosis) and postrenal (obstruction); urine "
    "sodium, sediment and ultrasound separate them.",
    "Myocardial injury.",
    "They cause fetal renal dysgenesis and oligohydramnios.",
]


def chat(messages: list[tuple[str, str]], n: int) -> dict:
    msgs = [{"role": role, "content": content} for role, content in messages]
    return {
        "id": record_id("sft", "hand", {"m": msgs}, str(n)),
        "source": "hand",
        "task": "chat",
        "messages": msgs,
        "mcqa": None,
        "meta": dumps_meta({"n": n}),
    }


def sample_rows() -> list[dict]:
    rows = [
        chat([("user", q), ("assistant", a)], i)
        for i, (q, a) in enumerate(zip(QUESTIONS, ANSWERS, strict=True))
    ]
    rows.append(
        chat(
            [
                ("system", "You are a careful clinician."),
                ("user", QUESTIONS[0]),
                ("assistant", ANSWERS[0]),
                ("user", QUESTIONS[2]),
                ("assistant", ANSWERS[2]),
            ],
            len(rows),
        )
    )
    return rows


@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    """DEITA's computation for one prompt: no batching, no padding, logits after the last token."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    digits = [tokenizer.convert_tokens_to_ids(d) for d in "123456"]

    def score(prompt: str) -> float:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            logits = model(ids).logits[0, -1, digits].double()
        return float((torch.softmax(logits, 0) * torch.arange(1, 7, dtype=torch.float64)).sum())

    score.tokenizer = tokenizer
    return score


@pytest.fixture(scope="module")
def scorer(tiny_model_dir):
    # A small token budget forces several micro-batches with different padding.
    return DeitaBatchScorer(
        DeitaScoreConfig(complexity_model=str(tiny_model_dir), max_batch_tokens=300), "sft"
    )


def test_turns_follow_deita_pairs():
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2a"},
        {"role": "user", "content": "q2b"},
        {"role": "assistant", "content": "a2"},
        {"role": "user", "content": "q3"},
    ]
    assert [(t.instruction, t.response) for t in conversation_turns(messages)] == [
        ("q1", "a1"),
        ("q2a\n\nq2b", "a2"),
        ("q3", ""),
    ]


def test_batched_scores_equal_one_prompt_at_a_time_reference(scorer, reference):
    rows = sample_rows()
    results = scorer.score_rows(rows)
    assert scorer.complexity is scorer.quality  # one folder: loaded once
    for row, result in zip(rows, results, strict=True):
        msgs = row["messages"]
        pairs = [
            (m["content"], n["content"])
            for m, n in itertools.pairwise(msgs)
            if m["role"] == "user" and n["role"] == "assistant"
        ]
        expected_c = [reference(COMPLEXITY.format(instruction=q)) for q, _ in pairs]
        expected_q = [reference(QUALITY.format(instruction=q, output=a)) for q, a in pairs]
        assert result["turns"] == len(pairs)
        assert result["complexity"] == pytest.approx(expected_c, abs=1e-4)
        assert result["quality"] == pytest.approx(expected_q, abs=1e-4)
        expected = sum(c * q for c, q in zip(expected_c, expected_q, strict=True))
        assert result["score"] == pytest.approx(expected, abs=1e-4)
        assert result["truncated"] is False
    multi = results[-1]
    assert multi["turns"] == 2
    # DEITA's multi-turn combination: the sum of per-turn complexity x quality.
    combined = sum(c * q for c, q in zip(multi["complexity"], multi["quality"], strict=True))
    assert multi["score"] == pytest.approx(combined, abs=1e-5)
    assert len({round(r["score"], 3) for r in results}) > 3  # the tiny model does tell prompts apart


def test_separate_quality_model_folder_is_loaded_on_its_own(tiny_model_dir, tmp_path, scorer):
    other = shutil.copytree(tiny_model_dir, tmp_path / "quality-model")
    config = DeitaScoreConfig(complexity_model=str(tiny_model_dir), quality_model=str(other))
    two = DeitaBatchScorer(config, "sft")
    assert two.complexity is not two.quality
    rows = sample_rows()[:3]
    for a, b in zip(two.score_rows(rows), scorer.score_rows(rows), strict=True):
        assert a["complexity"] == pytest.approx(b["complexity"], abs=1e-4)
        assert a["quality"] == pytest.approx(b["quality"], abs=1e-4)


def test_share_budget_keeps_short_fields_whole():
    assert share_budget([10, 500], 100) == [10, 90]
    assert share_budget([500, 500], 101) == [51, 50]
    assert share_budget([500], 40) == [40]
    assert share_budget([3, 4], 100) == [3, 4]


def test_long_rows_are_cut_by_the_stated_rule_and_flagged(tiny_model_dir, reference):
    tokenizer = reference.tokenizer

    def count(text: str) -> int:
        return len(tokenizer(text).input_ids)

    def cut(field: str, keep: int) -> str:
        offsets = tokenizer(field, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return field[: offsets[keep - 1][1]]

    q_overhead = count(QUALITY.format(instruction="", output=""))
    max_length = q_overhead + 61  # an odd budget: the instruction gets the extra token
    config = DeitaScoreConfig(complexity_model=str(tiny_model_dir), max_length=max_length)
    scorer = DeitaBatchScorer(config, "sft")
    long_q = " ".join(QUESTIONS * 4)
    long_a = " ".join(ANSWERS * 4)
    rows = [
        chat([("user", long_q), ("assistant", long_a)], 0),
        chat([("user", QUESTIONS[0]), ("assistant", "OK.")], 1),
    ]
    long_result, short_result = scorer.score_rows(rows)
    assert long_result["truncated"] is True and short_result["truncated"] is False
    # The rule: template kept whole; the budget it leaves is shared equally between the fields.
    c_prompt = COMPLEXITY.format(
        instruction=cut(long_q, max_length - count(COMPLEXITY.format(instruction="")))
    )
    q_prompt = QUALITY.format(instruction=cut(long_q, 31), output=cut(long_a, 30))
    assert count(c_prompt) <= max_length and count(q_prompt) <= max_length
    assert long_result["complexity"] == pytest.approx([reference(c_prompt)], abs=1e-4)
    assert long_result["quality"] == pytest.approx([reference(q_prompt)], abs=1e-4)
    fitter = PromptFitter(tokenizer, max_length)
    ids, flags = fitter.fit_all(QUALITY, [{"instruction": long_q, "output": long_a}])
    assert flags == [True] and len(ids[0]) <= max_length
    assert tokenizer.decode(ids[0]).endswith("\n##Quality: ")


def test_score_token_that_is_not_one_token_fails_at_start(tiny_model_dir):
    config = DeitaScoreConfig(
        complexity_model=str(tiny_model_dir), score_tokens=("1", "2", "3", "4", "5", "six hundred")
    )
    with pytest.raises(AloeError, match="score token 'six hundred' is not a single token"):
        DeitaBatchScorer(config, "sft")


def test_config_rejects_templates_without_their_fields():
    with pytest.raises(ConfigError, match="quality_template"):
        validate_config(
            DeitaScoreConfig, {"complexity_model": "m", "quality_template": "Rate: {instruction}"}
        )
    with pytest.raises(ConfigError, match="complexity_template"):
        validate_config(DeitaScoreConfig, {"complexity_model": "m", "complexity_template": "Rate {x}"})


def test_vllm_engine_without_vllm_names_the_extra(tiny_model_dir):
    if importlib.util.find_spec("vllm") is not None:  # the main venv (where CI runs this) has no vLLM
        pytest.skip("vllm is installed here; this checks the message when it is not")
    config = DeitaScoreConfig(complexity_model=str(tiny_model_dir), engine="vllm")
    with pytest.raises(MissingExtraError, match=r"aloe-infer\[vllm\]"):
        load_scoring_model(str(tiny_model_dir), config, "cpu")


def test_stage_on_ray_scores_in_order_and_drops_only_below_min_score(ray_session, tmp_path, scorer):
    rows = sample_rows()
    rows.append(chat([("user", " ".join(QUESTIONS * 30)), ("assistant", " ".join(ANSWERS * 30))], 99))
    src = tmp_path / "in"
    src.mkdir()
    pq.write_table(to_table(rows, "sft"), src / "part-0.parquet")
    direct = scorer.score_rows(rows)
    ranked = sorted(r["score"] for r in direct)
    threshold = (ranked[2] + ranked[3]) / 2  # clear of any row's score: batching moves scores by ~1e-5
    config = DeitaScoreConfig(
        complexity_model=str(scorer.config.complexity_model), batch_size=3, min_score=threshold
    )
    entry = run_stage_on_files(DeitaScoreStage(config), src, tmp_path / "out", OutputConfig(shard_rows=100))
    assert entry["rows_in"] == len(rows)
    assert entry["dropped"] == {"min_score": 3}
    kept = [r for name in sorted(entry["files"]) for r in pq.read_table(tmp_path / "out" / name).to_pylist()]
    expected_ids = [r["id"] for r, d in zip(rows, direct, strict=True) if d["score"] >= threshold]
    assert [r["id"] for r in kept] == expected_ids  # input order
    by_id = {r["id"]: d for r, d in zip(rows, direct, strict=True)}
    for row in kept:
        meta = loads_meta(row["meta"])
        assert meta["n"] is not None and meta["deita"]["score"] == pytest.approx(
            by_id[row["id"]]["score"], abs=1e-4
        )
    dropped = pa.concat_tables([pq.read_table(p) for p in (tmp_path / "out" / "_dropped").glob("*.parquet")])
    assert set(dropped.column("drop_reason").to_pylist()) == {"min_score"}
    flags = {r["id"]: loads_meta(r["meta"])["deita"]["truncated"] for r in kept + dropped.to_pylist()}
    assert flags == {r["id"]: r is rows[-1] for r in rows}  # only the 2048+ token row is cut, none dropped
