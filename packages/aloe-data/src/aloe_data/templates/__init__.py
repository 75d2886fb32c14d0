"""Prompt templates: the shipped YAML/Jinja files in this folder and the loader that reads them (and the
user's own files). See :mod:`aloe_data.templates.library` for the file format and variables."""

from aloe_data.templates.library import (
    MCQA_FAMILIES,
    PromptTemplate,
    Rendered,
    TemplateLibrary,
    row_variables,
)

__all__ = ["MCQA_FAMILIES", "PromptTemplate", "Rendered", "TemplateLibrary", "row_variables"]
