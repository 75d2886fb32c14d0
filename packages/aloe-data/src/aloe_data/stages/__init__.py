"""The pipeline's stages. Order in a run is the order in the config; names say what each does."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from aloe_data.pipeline.stage import Stage
from aloe_data.stages.clean import CleanStage
from aloe_data.stages.cot import CotStage
from aloe_data.stages.decontaminate import DecontaminateStage
from aloe_data.stages.deita import DeitaScoreStage
from aloe_data.stages.exact_dedup import ExactDedupStage
from aloe_data.stages.fuzzy_dedup import FuzzyDedupStage
from aloe_data.stages.select import DiversitySelectStage
from aloe_data.stages.template import TemplateStage

# Every stage class a config may name; add new stages here (see aloe_data.pipeline.stage).
STAGE_CLASSES: list[type[Stage]] = [
    CleanStage,
    ExactDedupStage,
    FuzzyDedupStage,
    DecontaminateStage,
    DeitaScoreStage,
    DiversitySelectStage,
    TemplateStage,
    CotStage,
]
STAGES: dict[str, type[Stage]] = {cls.type_name(): cls for cls in STAGE_CLASSES}

StageConfigUnion = Annotated[
    Union[tuple(cls.config_class for cls in STAGE_CLASSES)],  # noqa: UP007 (built at run time)
    Field(discriminator="type"),
]


def build_stage(config) -> Stage:
    """The stage object for one validated stage config."""
    return STAGES[config.type](config)
