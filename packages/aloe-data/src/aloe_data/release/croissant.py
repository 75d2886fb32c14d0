"""``croissant.json``: the release described in Croissant 1.1 (MLCommons), built and checked with
``mlcroissant``, which then reads the same rows as the Parquet files hold.

One FileObject per Parquet file (with its sha256), one FileSet and one RecordSet per split. Nested
columns become sub-fields: ``messages`` an array of {role, content}; ``mcqa`` {question, answer,
context, explanation} plus ``mcqa/options``, an array of {letter, text} (mlcroissant returns a nested
array's records beside its parent's, keyed by field id). Text comes back as UTF-8 bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

CROISSANT = "croissant.json"
PARQUET = "application/x-parquet"
SPDX = "https://spdx.org/licenses/{}.html"
_SPDX_IDS = {
    "mit": "MIT",
    "apache-2.0": "Apache-2.0",
    "cc0-1.0": "CC0-1.0",
    "cc-by-4.0": "CC-BY-4.0",
    "cc-by-sa-4.0": "CC-BY-SA-4.0",
    "cc-by-nc-4.0": "CC-BY-NC-4.0",
    "cc-by-nc-sa-4.0": "CC-BY-NC-SA-4.0",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-2-clause": "BSD-2-Clause",
    "odbl": "ODbL-1.0",
    "unlicense": "Unlicense",
}


def license_url(license_id: str) -> str:
    """An SPDX URL for a known license id, else the id itself (Croissant takes a URL or text)."""
    spdx = _SPDX_IDS.get(license_id)
    return SPDX.format(spdx) if spdx else license_id


def _fields(mlc: Any, split: str, schema: pa.Schema) -> list[Any]:
    file_set = f"{split}-files"

    def leaf(name: str, column: str, *path: str) -> Any:
        source = mlc.Source(
            file_set=file_set,
            extract=mlc.Extract(column=column),
            transforms=[mlc.Transform(json_path=p) for p in path],
        )
        return mlc.Field(
            id=f"{split}/{name}", name=name.split("/")[-1], data_types=[mlc.DataType.TEXT], source=source
        )

    def messages(column: str) -> Any:
        return mlc.Field(
            id=f"{split}/{column}",
            name=column,
            is_array=True,
            sub_fields=[leaf(f"{column}/role", column, "role"), leaf(f"{column}/content", column, "content")],
        )

    fields = []
    for column in schema.names:
        if column in ("messages", "prompt"):
            fields.append(messages(column))
        elif column == "mcqa":
            options = mlc.Field(
                id=f"{split}/mcqa/options",
                name="options",
                is_array=True,
                sub_fields=[
                    leaf("mcqa/options/letter", "mcqa", "options", "letter"),
                    leaf("mcqa/options/text", "mcqa", "options", "text"),
                ],
            )
            parts = [leaf(f"mcqa/{p}", "mcqa", p) for p in ("question", "answer", "context", "explanation")]
            fields.append(mlc.Field(id=f"{split}/mcqa", name="mcqa", sub_fields=[*parts, options]))
        else:
            fields.append(leaf(column, column))
    return fields


def build_croissant(
    *,
    name: str,
    version: str,
    description: str,
    license_id: str,
    citation: str,
    url: str,
    date: str,
    schema: pa.Schema,
    split_files: dict[str, dict[str, dict[str, Any]]],
    rai: dict[str, str],
    language: list[str],
    keywords: list[str],
) -> dict[str, Any]:
    """The JSON-LD document. ``split_files``: {split: {relative path: {sha256, bytes}}}.

    Raises:
        ValueError: mlcroissant reports an error in the metadata (a bug here, never user input).
    """
    import mlcroissant as mlc

    distribution: list[Any] = []
    record_sets = []
    for split, files in split_files.items():
        for path, info in files.items():
            distribution.append(
                mlc.FileObject(
                    id=path,
                    name=Path(path).name,
                    content_url=path,
                    encoding_formats=[PARQUET],
                    sha256=info["sha256"],
                    content_size=f"{info['bytes']} B",
                )
            )
        distribution.append(
            mlc.FileSet(
                id=f"{split}-files",
                name=f"{split}-files",
                encoding_formats=[PARQUET],
                includes=[f"data/{split}-*.parquet"],
            )
        )
        record_sets.append(
            mlc.RecordSet(
                id=split, name=split, fields=_fields(mlc, split, schema), description=f"The {split} split."
            )
        )
    metadata = mlc.Metadata(
        conforms_to="http://mlcommons.org/croissant/1.1",
        name=name,
        description=description,
        url=url,
        license=[license_url(license_id)],
        version=version,
        cite_as=citation,
        date_published=date,
        in_language=language,
        keywords=keywords,
        distribution=distribution,
        record_sets=record_sets,
        data_limitations=rai["limitations"],
        data_biases=rai["biases"],
        personal_sensitive_information=rai["personal"],
        data_use_cases=rai["uses"],
        data_collection=rai["collection"],
        data_preprocessing_protocol=[rai["preprocessing"]],
    )
    errors = metadata.issues.errors
    if errors:
        raise ValueError(f"croissant metadata: {sorted(errors)[0]}")
    return metadata.to_json()


def croissant_problems(path: Path) -> list[str]:
    """What mlcroissant finds wrong in ``path`` (empty when it loads without errors)."""
    import mlcroissant as mlc

    try:
        dataset = mlc.Dataset(str(path))
    except Exception as exc:  # mlcroissant raises ValidationError and plain errors alike
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [f"{path.name}: mlcroissant cannot load it: {first}"]
    return [f"{path.name}: {e}" for e in sorted(dataset.metadata.issues.errors)]


def record_to_row(record: dict[str, Any], split: str) -> dict[str, Any]:
    """A record mlcroissant read, in the shape of the Parquet row (text decoded, ids unprefixed)."""

    def plain(value: Any) -> Any:
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, dict):
            return {k.rsplit("/", 1)[-1]: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    row = {key.removeprefix(f"{split}/"): plain(value) for key, value in record.items()}
    if "mcqa" in row:
        options = row.pop("mcqa/options")
        mcqa = row["mcqa"]
        row["mcqa"] = None if mcqa["question"] is None else {**mcqa, "options": options}
    return row


def write_croissant(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
