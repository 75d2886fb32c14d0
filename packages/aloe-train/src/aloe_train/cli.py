"""`aloe train ...`: training commands (SFT and DPO on Ray Train + FSDP2, merging) and their tools."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aloe_train.dpo.cli import dpo_command
from aloe_train.merge.cli import merge_command
from aloe_train.sft.cli import sft_command

app = typer.Typer(
    help="Train models: SFT and DPO on Ray Train with FSDP2, model merging.", no_args_is_help=True
)
app.command("sft")(sft_command)
app.command("dpo")(dpo_command)
app.command("merge")(merge_command)


@app.command("show-masking")
def show_masking(
    model: Annotated[Path, typer.Argument(help="Model folder whose tokenizer and chat template to use.")],
    input: Annotated[str, typer.Option("--input", "-i", help="sft shards: a run, folder or glob.")],
    rows: Annotated[int, typer.Option(min=1, help="How many rows to show.")] = 1,
) -> None:
    """Show rows as tokenized for training: [[trained]] tokens are the assistant's; the rest is masked."""
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    from aloe_core import storage
    from aloe_core.errors import InputError
    from aloe_core.shards import resolve_inputs

    files = resolve_inputs(input, kind="sft").files
    tokenizer = AutoTokenizer.from_pretrained(model)
    if tokenizer.chat_template is None or "{% generation %}" not in tokenizer.chat_template:
        raise InputError(
            f"{model}: the chat template has no {{% generation %}} markers, "
            "so assistant tokens cannot be found"
        )
    where, fs = storage.for_arrow(files[0])
    table = pq.ParquetFile(where, filesystem=fs).read_row_group(0).slice(0, rows)
    for row in table.to_pylist():
        encoded = tokenizer.apply_chat_template(
            row["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        ids, mask = encoded["input_ids"], encoded["assistant_masks"]
        pieces, start = [], 0
        for i in range(1, len(ids) + 1):
            if i == len(ids) or mask[i] != mask[start]:
                text = tokenizer.decode(ids[start:i])
                pieces.append(f"[[{text}]]" if mask[start] else text)
                start = i
        typer.echo(f"--- {row['id']} ({sum(mask)}/{len(ids)} tokens trained)\n{''.join(pieces)}")


@app.command("card")
def card(
    model: Annotated[str, typer.Argument(help="Exported model folder or URI (with aloe_card.json).")],
    kind: Annotated[str, typer.Option("--kind", help="sft, dpo or merge.")],
    eval_results: Annotated[
        list[str] | None,  # not Paths: a URI's // would fold
        typer.Option("--eval", help="results.json of `aloe eval run` (repeatable: one column each)."),
    ] = None,
    license: Annotated[str | None, typer.Option("--license", help="License id of the model.")] = None,
) -> None:
    """Write the model card (README.md) again, with evaluation results from `aloe eval run`."""
    from aloe_core import storage
    from aloe_core.errors import InputError
    from aloe_train.cards import rewrite_model_card

    if kind not in ("sft", "dpo", "merge"):
        raise InputError(f"--kind {kind!r}: one of sft, dpo, merge")
    for path in eval_results or []:
        if not storage.is_file(path):
            raise InputError(f"--eval {path}: no such file (an eval run's results.json)")
    typer.echo(rewrite_model_card(model, kind=kind, eval_results=eval_results, license=license))  # type: ignore[arg-type]
