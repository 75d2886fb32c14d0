"""Chat templates aloe ships, as Jinja text (no tokenizer needed to hold them).

Training can name one (``model.chat_template: llama3``) to give a base model's tokenizer a template with
``{% generation %}`` markers, which is what an assistant-only SFT loss needs; the tiny-model factory
writes the same text into its tokenizer, so tests train with exactly what users name.
"""

from __future__ import annotations

# Llama-3 chat format. The `{% generation %}` block (a transformers extension) marks the assistant
# content and its <|eot_id|> as the tokens an SFT loss trains on; the header before it is not trained.
LLAMA3_CHAT_TEMPLATE = """\
{{- bos_token -}}
{%- for message in messages -%}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' -}}
    {%- if message['role'] == 'assistant' -%}
        {%- generation -%}{{- message['content'] | trim + '<|eot_id|>' -}}{%- endgeneration -%}
    {%- else -%}
        {{- message['content'] | trim + '<|eot_id|>' -}}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
{%- endif -%}
"""

CHAT_TEMPLATES = {"llama3": LLAMA3_CHAT_TEMPLATE}
