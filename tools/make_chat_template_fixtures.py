#!/usr/bin/env python3
"""Chat-template goldens rendered by transformers itself.

    PY=$(tools/venv.sh); $PY tools/make_chat_template_fixtures.py

Writes, under Tests/Fixtures/chat_templates/:
  <family>.jinja   the template of each model family (sources in README.md there)
  goldens.json     conversations and what `tokenizer.apply_chat_template(..., tokenize=False)`
                   returns for them (or the error it raises), per family
  jinja_cases.json small templates exercising the Jinja features chat templates use, rendered by
                   the exact environment transformers compiles templates with
                   (`transformers.utils.chat_template_utils._compile_jinja_template`)

There is no hub access: the tokenizer is a PreTrainedTokenizerFast built locally around a tiny
word-level tokenizer, with the family's bos/eos tokens and chat template. If
models/SmolLM2-135M-Instruct/ exists (tools/make_smollm2.py), SmolLM2's template and tokens are read
from it with AutoTokenizer instead.
"""

import copy
import json
import os
import random
import sys

import jinja2
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast
from transformers.utils.chat_template_utils import _compile_jinja_template

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "chat_templates")
SMOLLM2_DIR = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct")

# --- Templates ------------------------------------------------------------------------------
# Exact strings from each model's tokenizer_config.json "chat_template" (see README.md).

SMOLLM2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

LLAMA3 = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"

MISTRAL = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"

MISTRAL_V03 = '{%- if messages[0]["role"] == "system" %}\n    {%- set system_message = messages[0]["content"] %}\n    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n{%- if not tools is defined %}\n    {%- set tools = none %}\n{%- endif %}\n{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}\n\n{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}\n{%- set ns = namespace() %}\n{%- set ns.index = 0 %}\n{%- for message in loop_messages %}\n    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}\n        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}\n            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}\n        {%- endif %}\n        {%- set ns.index = ns.index + 1 %}\n    {%- endif %}\n{%- endfor %}\n\n{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if message["role"] == "user" %}\n        {%- if tools is not none and (message == user_messages[-1]) %}\n            {{- "[AVAILABLE_TOOLS] [" }}\n            {%- for tool in tools %}\n                {%- set tool = tool.function %}\n                {{- \'{"type": "function", "function": {\' }}\n                {%- for key, val in tool.items() if key != "return" %}\n                    {%- if val is string %}\n                        {{- \'"\' + key + \'": "\' + val + \'"\' }}\n                    {%- else %}\n                        {{- \'"\' + key + \'": \' + val|tojson }}\n                    {%- endif %}\n                    {%- if not loop.last %}\n                        {{- ", " }}\n                    {%- endif %}\n                {%- endfor %}\n                {{- "}}" }}\n                {%- if not loop.last %}\n                    {{- ", " }}\n                {%- else %}\n                    {{- "]" }}\n                {%- endif %}\n            {%- endfor %}\n            {{- "[/AVAILABLE_TOOLS]" }}\n            {%- endif %}\n        {%- if loop.first and system_message is defined %}\n            {{- "[INST] " + system_message + "\\n\\n" + message["content"] + "[/INST]" }}\n        {%- else %}\n            {{- "[INST] " + message["content"] + "[/INST]" }}\n        {%- endif %}\n    {%- elif message.tool_calls is defined and message.tool_calls is not none %}\n        {{- "[TOOL_CALLS] [" }}\n        {%- for tool_call in message.tool_calls %}\n            {%- set out = tool_call.function|tojson %}\n            {{- out[:-1] }}\n            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}\n                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}\n            {%- endif %}\n            {{- \', "id": "\' + tool_call.id + \'"}\' }}\n            {%- if not loop.last %}\n                {{- ", " }}\n            {%- else %}\n                {{- "]" + eos_token }}\n            {%- endif %}\n        {%- endfor %}\n    {%- elif message["role"] == "assistant" %}\n        {{- " " + message["content"]|trim + eos_token}}\n    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}\n        {%- if message.content is defined and message.content.content is defined %}\n            {%- set content = message.content.content %}\n        {%- else %}\n            {%- set content = message.content %}\n        {%- endif %}\n        {{- \'[TOOL_RESULTS] {"content": \' + content|string + ", " }}\n        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}\n            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}\n        {%- endif %}\n        {{- \'"call_id": "\' + message.tool_call_id + \'"}[/TOOL_RESULTS]\' }}\n    {%- else %}\n        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}\n    {%- endif %}\n{%- endfor %}\n'

ZEPHYR = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"

LLAMA31 = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

QWEN3 = '{%- if tools %}\n    {{- \'<|im_start|>system\\n\' }}\n    {%- if messages[0].role == \'system\' %}\n        {{- messages[0].content + \'\\n\\n\' }}\n    {%- endif %}\n    {{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}\n    {%- for tool in tools %}\n        {{- "\\n" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}\n{%- else %}\n    {%- if messages[0].role == \'system\' %}\n        {{- \'<|im_start|>system\\n\' + messages[0].content + \'<|im_end|>\\n\' }}\n    {%- endif %}\n{%- endif %}\n{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}\n{%- for message in messages[::-1] %}\n    {%- set index = (messages|length - 1) - loop.index0 %}\n    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith(\'<tool_response>\') and message.content.endswith(\'</tool_response>\')) %}\n        {%- set ns.multi_step_tool = false %}\n        {%- set ns.last_query_index = index %}\n    {%- endif %}\n{%- endfor %}\n{%- for message in messages %}\n    {%- if message.content is string %}\n        {%- set content = message.content %}\n    {%- else %}\n        {%- set content = \'\' %}\n    {%- endif %}\n    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}\n        {{- \'<|im_start|>\' + message.role + \'\\n\' + content + \'<|im_end|>\' + \'\\n\' }}\n    {%- elif message.role == "assistant" %}\n        {%- set reasoning_content = \'\' %}\n        {%- if message.reasoning_content is string %}\n            {%- set reasoning_content = message.reasoning_content %}\n        {%- else %}\n            {%- if \'</think>\' in content %}\n                {%- set reasoning_content = content.split(\'</think>\')[0].rstrip(\'\\n\').split(\'<think>\')[-1].lstrip(\'\\n\') %}\n                {%- set content = content.split(\'</think>\')[-1].lstrip(\'\\n\') %}\n            {%- endif %}\n        {%- endif %}\n        {%- if loop.index0 > ns.last_query_index %}\n            {%- if loop.last or (not loop.last and reasoning_content) %}\n                {{- \'<|im_start|>\' + message.role + \'\\n<think>\\n\' + reasoning_content.strip(\'\\n\') + \'\\n</think>\\n\\n\' + content.lstrip(\'\\n\') }}\n            {%- else %}\n                {{- \'<|im_start|>\' + message.role + \'\\n\' + content }}\n            {%- endif %}\n        {%- else %}\n            {{- \'<|im_start|>\' + message.role + \'\\n\' + content }}\n        {%- endif %}\n        {%- if message.tool_calls %}\n            {%- for tool_call in message.tool_calls %}\n                {%- if (loop.first and content) or (not loop.first) %}\n                    {{- \'\\n\' }}\n                {%- endif %}\n                {%- if tool_call.function %}\n                    {%- set tool_call = tool_call.function %}\n                {%- endif %}\n                {{- \'<tool_call>\\n{"name": "\' }}\n                {{- tool_call.name }}\n                {{- \'", "arguments": \' }}\n                {%- if tool_call.arguments is string %}\n                    {{- tool_call.arguments }}\n                {%- else %}\n                    {{- tool_call.arguments | tojson }}\n                {%- endif %}\n                {{- \'}\\n</tool_call>\' }}\n            {%- endfor %}\n        {%- endif %}\n        {{- \'<|im_end|>\\n\' }}\n    {%- elif message.role == "tool" %}\n        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}\n            {{- \'<|im_start|>user\' }}\n        {%- endif %}\n        {{- \'\\n<tool_response>\\n\' }}\n        {{- content }}\n        {{- \'\\n</tool_response>\' }}\n        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}\n            {{- \'<|im_end|>\\n\' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- \'<|im_start|>assistant\\n<think>\\n\' }}\n{%- endif %}'

FAMILIES = {
    "smollm2": {"template": SMOLLM2, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
    "llama3": {"template": LLAMA3, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "mistral": {"template": MISTRAL, "bos_token": "<s>", "eos_token": "</s>"},
    "zephyr": {"template": ZEPHYR, "bos_token": "<s>", "eos_token": "</s>"},
    "mistral_v03": {"template": MISTRAL_V03, "bos_token": "<s>", "eos_token": "</s>"},
    "llama31": {"template": LLAMA31, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "qwen3": {"template": QWEN3, "bos_token": None, "eos_token": "<|im_end|>"},
}

# --- Conversations --------------------------------------------------------------------------


def m(role, content, **extra):
    d = {"role": role, "content": content}
    d.update(extra)
    return d


UNICODE = "Grüße, 世界! 👋🏽 naïve café — e\u0301 (combining), 👨‍👩‍👧‍👦, שלום, Ω≈ç√∫, \u00a0nbsp, zero\u200bwidth"

COMMON = [
    ("single_user_generation", [m("user", "Hello!")], True),
    ("single_user_no_generation", [m("user", "Hello!")], False),
    ("system_and_user", [m("system", "You are a concise assistant."), m("user", "What is 2+2?")], True),
    ("multi_turn", [m("user", "Hi"), m("assistant", "Hello! How can I help?"), m("user", "Tell me a joke.")], True),
    ("multi_turn_system_ends_with_assistant",
     [m("system", "Be brief."), m("user", "Capital of France?"), m("assistant", "Paris.")], False),
    ("long_conversation",
     [m("system", "You answer in one word."), m("user", "Sky colour?"), m("assistant", "Blue."),
      m("user", "Grass colour?"), m("assistant", "Green."), m("user", "Snow colour?"), m("assistant", "White."),
      m("user", "Coal colour?")], True),
    ("whitespace_and_newlines",
     [m("user", "  leading and trailing spaces  "), m("assistant", "\nline one\nline two\n\n  indented\n"),
      m("user", "\ttab\tseparated\t\r\nwindows newline ")], True),
    ("unicode_and_emoji", [m("user", UNICODE), m("assistant", "Ça va? 😀🚀 ✓"), m("user", "日本語でお願いします。")], True),
    ("empty_content", [m("user", ""), m("assistant", ""), m("user", "")], True),
    ("template_like_text",
     [m("user", "Is {{ this }} or {% that %} or {# this #} rendered? Quotes ' \" and \\ backslash, <|im_end|> </s> [INST]")],
     True),
    ("assistant_first", [m("assistant", "I speak first."), m("user", "OK.")], True),
    ("two_user_messages_in_a_row", [m("user", "First."), m("user", "Second.")], True),
    ("system_only", [m("system", "Only a system message.")], True),
    ("extra_fields_are_ignored", [m("user", "Hi", name="alice"), m("assistant", "Hey", name="bot")], True),
    ("message_without_content", [{"role": "user"}], True),
    ("integer_content", [m("user", 42)], True),
]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name, e.g. Paris"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    }
]

FAMILY_CASES = {
    "qwen3": [
        ("tools_calls_and_responses",
         [m("system", "You are a weather bot."), m("user", "Weather in Paris and Rome?"),
          {"role": "assistant", "content": "", "tool_calls": [
              {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
              {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]},
          {"role": "tool", "content": "22°C"}, {"role": "tool", "content": "25°C"},
          m("assistant", "<think>\nBoth answered.\n</think>\n\nParis 22°C, Rome 25°C.")],
         False, {"tools": TOOLS}),
        ("reasoning_content_field",
         [m("user", "2+2?"), m("assistant", "4", reasoning_content="Simple sum."), m("user", "3+3?")], True, {}),
        ("think_in_history",
         [m("user", "Hi"), m("assistant", "<think>greet</think>Hello!"), m("user", "Bye"),
          m("assistant", "<think>\n\nfarewell\n\n</think>\n\nGoodbye!")], False, {}),
    ],
    "mistral_v03": [
        ("tools_and_tool_call",
         [m("user", "Weather in Paris?"),
          {"role": "assistant", "tool_calls": [{"id": "abcdefghi", "type": "function",
                                                "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
          {"role": "tool", "tool_call_id": "abcdefghi", "content": "22°C, sunny"},
          m("assistant", "It is 22°C and sunny in Paris."), m("user", "Thanks!")],
         True, {"tools": TOOLS}),
        ("bad_tool_call_id",
         [m("user", "Weather?"),
          {"role": "assistant", "tool_calls": [{"id": "short", "type": "function",
                                                "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]}],
         False, {}),
    ],
    "llama31": [
        ("date_string", [m("system", "  You are helpful.  "), m("user", "Hi")], True, {"date_string": "12 Mar 2025"}),
        ("tools_in_user_message",
         [m("user", "Weather in Paris?"),
          {"role": "assistant", "tool_calls": [{"type": "function",
                                                "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
          {"role": "tool", "content": {"temperature": 22, "sky": "sunny"}}],
         True, {"tools": TOOLS}),
        ("tools_in_system_message", [m("system", "Sys."), m("user", "Weather in Rome?")], True,
         {"tools": TOOLS, "tools_in_user_message": False}),
        ("builtin_tools",
         [m("user", "Search for cats"),
          {"role": "assistant", "tool_calls": [{"type": "function",
                                                "function": {"name": "brave_search", "arguments": {"query": "cats"}}}]},
          {"role": "ipython", "content": "Cats are mammals."}],
         True, {"builtin_tools": ["brave_search", "code_interpreter", "wolfram_alpha"]}),
        ("two_tool_calls_raise",
         [m("user", "x"),
          {"role": "assistant", "tool_calls": [
              {"type": "function", "function": {"name": "a", "arguments": {}}},
              {"type": "function", "function": {"name": "b", "arguments": {}}}]}],
         False, {}),
        ("tools_without_user_message_raise", [m("system", "s")], True, {"tools": TOOLS}),
    ],
}

# --- Jinja feature cases --------------------------------------------------------------------

JINJA_CASES = [
    # text and whitespace control (trim_blocks, lstrip_blocks)
    ("plain text", "plain text\n", {}),
    ("trailing newline dropped once", "a\n\n", {}),
    ("crlf normalised", "a\r\nb\rc{{ 'x' }}\r\n", {}),
    ("trim_blocks", "{% if true %}\nx\n{% endif %}\ny", {}),
    ("lstrip_blocks", "a\n    {% if true %}\n    b\n    {% endif %}\nc", {}),
    ("lstrip_blocks not for variables", "a\n    {{ 'v' }}\n", {}),
    ("lstrip_blocks comment", "a\n   {# c #}\nb", {}),
    ("lstrip only from line start", "a  {% if true %}b{% endif %}", {}),
    ("minus trims", "a   {{- 'b' -}}   c  {%- if true -%}  d  {%- endif %}  \n e", {}),
    ("plus disables lstrip", "a\n    {%+ if true %}b{% endif %}", {}),
    ("plus disables trim", "{% if true +%}\nb{% endif %}", {}),
    ("comment", "a{# gone {{ x }} #}b{#- c -#}  c", {}),
    ("raw", "{% raw %}{{ not evaluated }}{% endraw %}", {}),
    ("output keeps newline", "{{ 'a' }}\n{{ 'b' }}\n", {}),
    ("minus strips newlines", "a\n\n  {{- 'b' }}\n\n  {%- if true %}c{% endif %}", {}),
    ("tab and nbsp lstrip", "x\n\t {% if true %}y{% endif %}", {}),
    # literals
    ("none and bools", "{{ none }} {{ true }} {{ false }} {{ None }} {{ True }} {{ False }}", {}),
    ("numbers", "{{ 1 + 2 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 2 * 3 - 1 }} {{ -4 }} {{ 1.5 + 1 }} {{ 10 / 4 }} {{ 2 ** 10 }} {{ 1_000 }} {{ 0x1F }}", {}),
    ("float repr", "{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e15 }} {{ 1e-5 }} {{ 0.0001 }} {{ 3.0 }} {{ 2.5e-3 }} {{ 123456789.125 }}", {}),
    ("python arithmetic", "{{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7.5 // 2 }} {{ 2 ** -1 }} {{ true + 1 }} {{ 'ab' * 3 }} {{ [0] * 3 }}", {}),
    ("string escapes", "{{ 'a\\nb\\t\"c\"' }}|{{ \"it's\" }}|{{ 'x\\x41\\u00e9\\U0001F600' }}|{{ 'back\\\\slash' }}|{{ 'keep \\q' }}", {}),
    ("adjacent strings", "{{ 'a' \"b\" 'c' }}", {}),
    ("list dict tuple", "{{ [1, 'a', none, true, 1.5] }} {{ {'k': 'v', 'n': [1, 2]} }} {{ (1, 2) }} {{ (1,) }} {{ () }}", {}),
    ("repr quotes", "{{ [\"it's\", 'say \"hi\"', 'both \\' \"', 'nl\\n'] }}", {}),
    # expressions
    ("comparisons", "{{ 1 < 2 }}{{ 2 <= 1 }}{{ 'a' == 'a' }}{{ 'a' != 'a' }}{{ 3 > 2 }}{{ 1 >= 1 }}{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}{{ 'ab' < 'b' }}{{ [1, 2] < [1, 3] }}", {}),
    ("equality across types", "{{ 1 == 1.0 }}{{ true == 1 }}{{ none == none }}{{ x == y }}{{ x == none }}{{ [1] == [1] }}{{ {'a': 1} == {'a': 1} }}", {}),
    ("logic returns operands", "{{ true and false }}{{ true or false }}{{ not true }}{{ not (1 == 2) }}|{{ '' or 'fallback' }}|{{ 'a' and 'b' }}|{{ 0 and 1 }}", {}),
    ("in", "{{ 'b' in 'abc' }}{{ 2 in [1, 2] }}{{ 'k' in d }}{{ 'q' not in d }}{{ 1 in d }}{{ 'x' in undefined_thing }}", {"d": {"k": 1}}),
    ("tests", "{{ x is defined }}{{ y is defined }}{{ y is not defined }}{{ n is none }}{{ s is string }}{{ d is mapping }}{{ l is iterable }}{{ s is iterable }}{{ n is iterable }}{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 1 is number }}{{ 1 is integer }}{{ 1.0 is float }}{{ true is boolean }}{{ l is sequence }}{{ 'A' is upper }}{{ 'a' is lower }}{{ y is undefined }}{{ true is true }}{{ 0 is false }}",
     {"x": 1, "n": None, "s": "s", "d": {}, "l": [1]}),
    ("test with argument forms", "{{ 'user' is equalto 'user' }}{{ 2 is eq(2) }}{{ 3 is gt 2 }}{{ 1 is in [1, 2] }}{{ none is sameas none }}{{ 5 is ne 5 }}", {}),
    ("conditional expression", "{{ 'yes' if flag else 'no' }}|{{ 'a' if false }}|{{ 'x' if 0 else 'y' if 1 else 'z' }}", {"flag": True}),
    ("concat operator", "{{ 'n=' ~ 3 ~ true ~ none ~ 1.5 ~ undefined_thing }}", {}),
    ("subscript and slices", "{{ xs[0] }}{{ xs[-1] }}{{ xs[1:] }}{{ xs[:2] }}{{ xs[::-1] }}{{ xs[::2] }}{{ xs[-2:] }}{{ 'hello'[1:3] }}{{ 'hello'[::-1] }}{{ d['k'] }}{{ d.k }}{{ xs[5] }}{{ xs.0 }}",
     {"xs": [1, 2, 3], "d": {"k": "v"}}),
    ("unicode indexing uses code points", "{{ s|length }} {{ s[1] }} {{ s[::-1] }} {{ s[2:4] }}", {"s": "a👍🏽é\u0301z"}),
    ("missing attributes print empty", "[{{ d.missing }}][{{ d['missing'] }}][{{ none.x }}][{{ xs[9] }}][{{ undefined_thing }}]", {"d": {}, "xs": []}),
    ("dict attribute vs item", "{{ d.items is defined }} {{ d['items'] }} {{ d.get('items') }}", {"d": {"items": "stored"}}),
    ("filters bind tighter than plus", "{{ 'a' + ' b ' | trim + 'c' }}{{ -3|abs }}{{ '1' + 2|string }}", {}),
    ("filter binds tighter than plus: int + str fails", "{{ 1 + 2|string }}", {}),
    ("operator precedence", "{{ 2 + 3 * 4 }} {{ (2 + 3) * 4 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ not 1 == 2 }} {{ '1' + 2 ~ 3 }} {{ 1 ~ 2 * 3 }}", {}),
    ("concat binds tighter than plus", "{{ 1 + 2 ~ 3 }}", {}),
    # statements
    ("if elif else", "{% for n in [1, 2, 3] %}{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %},{% endfor %}", {}),
    ("for loop variables", "{% for x in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }};{% endfor %}", {"items": ["a", "b", "c"]}),
    ("loop previtem nextitem cycle", "{% for x in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }}-{{ loop.cycle('odd', 'even') }};{% endfor %}", {}),
    ("loop changed", "{% for x in [1, 1, 2, 2, 1] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %}", {}),
    ("for else", "{% for x in [] %}x{% else %}empty{% endfor %}|{% for x in [1] %}{{ x }}{% else %}no{% endfor %}", {}),
    ("for filter", "{% for x in [1, 2, 3, 4] if x is even %}{{ loop.index }}/{{ loop.length }}:{{ x }} {% endfor %}", {}),
    ("for over dict and string", "{% for k in d %}{{ k }}{% endfor %}|{% for c in 'héy' %}[{{ c }}]{% endfor %}|{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {"d": {"b": 1, "a": 2}}),
    ("nested loops", "{% for a in [1, 2] %}{% set outer = loop %}{% for b in 'xy' %}{{ outer.index }}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{% endfor %}", {}),
    ("break continue", "{% for n in [1, 2, 3, 4] %}{% if n == 2 %}{% continue %}{% endif %}{% if n == 4 %}{% break %}{% endif %}{{ n }}{% endfor %}", {}),
    ("set scoping", "{% set a = 1 %}{% for x in [1, 2] %}{{ a }}{% set a = x * 5 %}{{ a }}{% endfor %}{{ a }}{% if true %}{% set b = 3 %}{% endif %}{{ b }}", {}),
    ("set before loop unset inside", "{% for i in [1, 2] %}[{{ c }}]{% set c = i %}{% endfor %}[{{ c }}]", {}),
    ("namespace", "{% set ns = namespace(count=0, found=false) %}{% for x in [1, 2, 3] %}{% set ns.count = ns.count + x %}{% if x == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }} {{ ns }}", {}),
    ("tuple assignment", "{% set x, y = 1, 2 %}{{ x }}{{ y }}{% for a, b in [(1, 2), [3, 4]] %}{{ a + b }}{% endfor %}", {}),
    ("set block", "{% set s %}inner {{ 1 }}\n{% endset %}[{{ s }}]{% set t | upper %}up{% endset %}{{ t }}", {}),
    ("macro", "{% macro m(a, b='B') %}<{{ a }}{{ b }}{{ varargs }}{{ kwargs }}>{% endmacro %}{{ m(1) }}{{ m(1, b=2) }}{{ m(1, 2, 3, z=4) }}", {}),
    ("macro sees globals", "{% set g = 'G' %}{% macro m() %}{{ g }}{{ bos_token }}{% endmacro %}{{ m() }}", {"bos_token": "<s>"}),
    ("call block", "{% macro wrap() %}[{{ caller() }}]{% endmacro %}{% call wrap() %}inside{% endcall %}", {}),
    ("filter block", "{% filter upper %}shout {{ 'this' }}{% endfilter %}", {}),
    ("with", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a }}", {}),
    ("generation tag", "{% for m in messages %}{% generation %}{{ m }}{% endgeneration %}{% endfor %}", {"messages": ["a", "b"]}),
    ("print tag", "{% print 'printed' %}", {}),
    ("reassign messages", "{% set messages = messages[1:] %}{{ messages|length }}{% for m in messages %}{{ m }}{% endfor %}", {"messages": [1, 2, 3]}),
    # filters
    ("filters basic", "{{ '  x  ' | trim }}|{{ xs | length }}|{{ 'Ab' | upper }}{{ 'Ab' | lower }}|{{ xs | join('-') }}|{{ xs | first }}{{ xs | last }}|{{ missing | default('d') }}|{{ 5 | string }}|{{ xs|join }}",
     {"xs": [1, 2, 3]}),
    ("trim chars", "{{ 'xxhixx'|trim('x') }}|{{ ' \\t\\n x \\u3000'|trim }}|", {}),
    ("default boolean", "{{ ''|default('e') }}|{{ ''|default('e', true) }}|{{ none|default('n') }}|{{ none|d('n', true) }}|{{ 0|default(5, boolean=true) }}", {}),
    ("capitalize title", "{{ 'hELLO wORLD'|capitalize }}|{{ 'hello wORLD-foo (bar [baz <q>'|title }}|{{ \"they're bill's\"|title }}|{{ 'hello world'.title() }}|{{ \"they're\".title() }}", {}),
    ("replace", "{{ 'aaa'|replace('a', 'b') }}{{ 'aaa'|replace('a', 'b', 2) }}{{ 'abc'.replace('b', '') }}{{ 'ab'|replace('', '-') }}", {}),
    ("int float", "{{ 1.9|int }}{{ '3.7'|int }}{{ 'x'|int }}{{ 'x'|int(7) }}{{ '0x1A'|int(base=16) }}{{ ' 12 '|int }}{{ '12'|float }}{{ 'a'|float }}{{ true|int }}{{ none|int }}", {}),
    ("list items", "{{ 'abc'|list }}{{ {'a': 1}|list }}{{ {'a': 1, 'b': [2]}|items|list }}{% for k, v in {'x': 1}|items %}{{ k }}{{ v }}{% endfor %}{{ undefined_thing|items|list }}", {}),
    ("selectattr rejectattr", "{{ msgs|selectattr('role', 'equalto', 'user')|list|length }}|{{ msgs|rejectattr('role', 'equalto', 'user')|map(attribute='content')|join(',') }}|{{ msgs|selectattr('flag')|list|length }}|{{ msgs|selectattr('tool_calls', 'undefined')|list|length }}|{{ msgs|selectattr('role', '==', 'system')|list }}",
     {"msgs": [{"role": "user", "content": "a", "flag": True}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c", "tool_calls": []}]}),
    ("select reject map", "{{ [1, 2, 3, 4]|select('odd')|list }}{{ [1, 2, 3, 4]|reject('odd')|list }}{{ ['a', 'B']|map('upper')|list }}{{ [0, 1, '', 'x']|select|list }}{{ [1, 2]|map('string')|join('+') }}", {}),
    ("sort unique min max sum", "{{ [3, 1, 2]|sort }}{{ ['b', 'A', 'a']|sort }}{{ ['b', 'A', 'a']|sort(case_sensitive=true) }}{{ [3, 1, 2]|sort(reverse=true) }}{{ [1, 2, 1]|unique|list }}{{ ['a', 'A', 'b']|unique|list }}{{ [3, 1, 2]|min }}{{ [3, 1, 2]|max }}{{ [1, 2, 3]|sum }}{{ users|sort(attribute='age')|map(attribute='name')|join(',') }}{{ users|sum(attribute='age') }}",
     {"users": [{"name": "x", "age": 30}, {"name": "y", "age": 20}]}),
    ("dictsort reverse", "{{ {'b': 1, 'a': 2}|dictsort }}{{ {'b': 1, 'a': 2}|dictsort(by='value') }}{{ [1, 2, 3]|reverse|list }}{{ 'abc'|reverse }}", {}),
    ("tojson", "{{ {'a': [1, 'x', none, true, 1.5]}|tojson }}|{{ 'é\"\\n<>&\\u0007'|tojson }}|{{ {'a': 1, 'b': {'c': []}, 'd': {}}|tojson(indent=2) }}|{{ [1, 2]|tojson(separators=(',', ':')) }}|{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}|{{ 'é'|tojson(ensure_ascii=true) }}|{{ 1.0|tojson }}|{{ 'x'|tojson(indent='\\t') }}|{{ {'k': [1]}|tojson(indent='--') }}",
     {}),
    ("tojson of context values", "{{ tools|tojson }}|{{ tools|tojson(indent=4) }}", {"tools": TOOLS}),
    ("indent center wordcount truncate", "{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(width='>', blank=true) }}|{{ 'ab'|center(6) }}|{{ 'one two, three'|wordcount }}|{{ 'hello world and more text here'|truncate(12) }}|{{ 'hello world and more text here'|truncate(12, true) }}", {}),
    ("format round abs batch", "{{ '%s-%d-%05.2f-%x %%'|format('a', 3, 3.14159, 255) }}|{{ '%(a)s'|format(a='k') }}|{{ 2.5|round }}|{{ 3.14159|round(2) }}|{{ 2.1|round(method='ceil') }}|{{ -3|abs }}|{{ [1, 2, 3, 4, 5]|batch(2)|list }}|{{ [1, 2, 3]|batch(2, 'x')|list }}", {}),
    ("escape safe attr pprint", "{{ '<a href=\"x\">&\\'</a>'|e }}|{{ '<b>'|safe }}|{{ d|attr('get') is defined }}|{{ d|attr('k') }}|{{ [1, 'a']|pprint }}", {"d": {"k": 1}}),
    ("first last empty", "[{{ []|first }}][{{ ''|last }}][{{ 'abc'|first }}][{{ {'a': 1, 'b': 2}|last }}]", {}),
    ("length of things", "{{ 'héllo'|length }}{{ {'a': 1}|length }}{{ undefined_thing|length }}{{ (1, 2)|count }}", {}),
    # str, dict and list methods
    ("string methods", "{{ ' x '.strip() }}|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith('x') }}{{ 'abc'.startswith(('x', 'a')) }}|{{ 'ab'.upper() }}{{ 'AB'.lower() }}|{{ ' x '.lstrip() }}|{{ ' x '.rstrip() }}|{{ 'xax'.strip('x') }}|{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a,b,c'.split(',', 1) }}{{ 'a,b,c'.rsplit(',', 1) }}|{{ 'hello'.find('l') }}{{ 'hello'.rfind('l') }}{{ 'hello'.count('l') }}|{{ '-'.join(['a', 'b']) }}|{{ 'l1\\nl2\\r\\nl3'.splitlines() }}|{{ '42'.isdigit() }}{{ 'ab'.isalpha() }}{{ '  '.isspace() }}|{{ 'hi {}!'.format('you') }}|{{ 'x'.center(5, '*') }}{{ '7'.zfill(3) }}",
     {}),
    ("dict methods", "{{ d.get('k') }}{{ d.get('z') }}{{ d.get('z', 5) }}{{ d.keys()|list }}{{ d.values()|list }}{{ d.items()|list }}{% for k, v in d.items() %}{{ k }}{{ v }}{% endfor %}", {"d": {"k": 1, "j": "two"}}),
    ("list methods", "{{ xs.index(2) }}{{ xs.count(1) }}", {"xs": [1, 2, 1]}),
    # globals
    ("range and dict and namespace", "{% for i in range(3) %}{{ i }}{% endfor %}{{ range(1, 10, 3)|list }}{{ range(5, 0, -2)|list }}{{ dict(a=1, b='x') }}{{ namespace(a=1).a }}", {}),
    ("raise_exception", "before{{ raise_exception('Custom failure: ' ~ n) }}after", {"n": 7}),
    ("raise_exception inside loop", "{% for m in messages %}{% if m == 'bad' %}{{ raise_exception('bad message at ' ~ loop.index) }}{% endif %}{% endfor %}", {"messages": ["ok", "bad"]}),
    # more whitespace control
    ("minus inside lines", "{%- if true %}\n  a\n{%- endif %}", {}),
    ("minus both sides in loop", "  {%- for x in [1, 2] -%}\n  {{ x }}\n  {%- endfor -%}  ", {}),
    ("typical loop layout", "{% for x in [1, 2] %}\n  {{ x }}\n{% endfor %}\n", {}),
    ("comment then newline", "{# c #}\nx\n  {# d #}  \ny", {}),
    ("variable minus joins lines", "{{ 'a' -}}\n\n{{- 'b' }}", {}),
    ("raw with minus", "\n{% raw -%}  a  {%- endraw %}\nz", {}),
    ("raw keeps newline after", "{% raw %}r{% endraw %}\nafter", {}),
    ("empty template", "", {}),
    ("only newline", "\n", {}),
    ("two newlines", "\n\n", {}),
    ("braces inside strings", "{{ '}}' }}{{ '{%' }}{{ \"%}\" }}{{ {'a': {'b': 1}} }}{{ {'a': 1}['a'] }}", {}),
    ("block tag after text on same line", "a {% if true %}b{% endif %} c\n{% if true %}\nd{% endif %}", {}),
    ("lstrip before endfor", "{% for x in 'ab' %}\n    {{ x }}\n    {% endfor %}\nend", {}),
    # more expressions
    ("chained conditionals", "{{ 1 if true else 2 if false else 3 }}|{{ (1 if false) is defined }}|{{ none if none else 'n' }}", {}),
    ("unary", "{{ not none }}{{ -(-1) }}{{ +1.5 }}{{ -true }}{{ not '' }}", {}),
    ("more slices", "{{ 'abc'[-5:10] }}|{{ [1, 2, 3][1:-1] }}|{{ [1, 2, 3][::-2] }}|{{ 'abcdef'[4:1:-1] }}|{{ [1, 2, 3][5:] }}|{{ (1, 2, 3)[1:] }}|{{ 'abc'[:-1] }}", {}),
    ("concat list", "{{ 'a' ~ [1, 2] ~ {'k': none} }}", {}),
    ("tojson scalars", "{{ none|tojson }}{{ {'a': none}|tojson }}{{ 'a\u2028b\u007f\u0000'|tojson }}{{ 3.0|tojson }}{{ 1e20|tojson }}{{ -0.5|tojson }}{{ true|tojson }}", {}),
    ("tojson indent forms", "{{ [1, [2, [3]]]|tojson(indent=1) }}|{{ [1]|tojson(indent=0) }}|{{ {'a': 1}|tojson(separators=[',', ':']) }}|{{ {'a': [1, 2]}|tojson(indent=2, separators=(',', ' = ')) }}", {}),
    ("float arithmetic repr", "{{ 2 ** 0.5 }} {{ 10 / 3 }} {{ 1 / 3 + 1 / 3 }} {{ 1e300 * 1e10 }} {{ -1e300 * 1e10 }} {{ 0.1 * 0.1 }} {{ 1e22 }} {{ 1.5e-7 }} {{ 100.0 }} {{ 12345678901234567.0 }}", {}),
    ("negative floor division", "{{ 7 // -2 }} {{ -7.5 // 2 }} {{ -1 % 5 }} {{ 5.5 % -2 }}", {}),
    ("string repetition edge", "[{{ 'x' * 0 }}][{{ -1 * 'x' }}][{{ 2 * 'ab' }}]", {}),
    ("format percent", "{{ '%s'|format([1]) }} {{ '%d%%'|format(50) }} {{ '%5s|%-5s|'|format('a', 'b') }} {{ '%.3s'|format('abcdef') }} {{ '%03d'|format(7) }} {{ '%+d'|format(5) }}", {}),
    ("unicode case", "{{ 'ß'|upper }} {{ 'ǆemal'|capitalize }} {{ 'ÉCOLE'|lower }} {{ 'hello world'|capitalize }} {{ 'ﬁre'|upper }} {{ 'ǆ'.title() }}", {}),
    ("split edge cases", "{{ 'a b'.split(' ') }}{{ ''.split() }}{{ ''.split(',') }}{{ 'a  b'.split(' ') }}{{ '  a b  '.split(None, 1) }}{{ 'a.b.c'.rsplit('.') }}", {}),
    ("string comparison", "{{ 'a' < 'B' }}{{ 'é' > 'z' }}{{ 'abc' < 'abd' }}{{ '' < 'a' }}{{ 'Z' < 'a' }}", {}),
    ("dict literal order", "{% set d = {'b': 1, 'a': 2, 'c': 3} %}{{ d }}{{ d|list }}{{ d|tojson }}{% for k, v in d|items %}{{ k }}{{ v }}{% endfor %}", {}),
    ("recursive macro", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n }}*{{ fact(n - 1) }}{% endif %}{% endmacro %}{{ fact(4) }}", {}),
    ("macro default uses earlier param", "{% macro m(a, b=a * 2) %}{{ a }},{{ b }}{% endmacro %}{{ m(3) }}|{{ m(3, 1) }}", {}),
    ("concat onto undefined", "{% set x = x ~ 'a' %}{{ x }}", {}),
    ("namespace list accumulate", "{% set ns = namespace(items=[]) %}{% for i in range(3) %}{% set ns.items = ns.items + [i * i] %}{% endfor %}{{ ns.items }}{{ ns.missing }}|", {}),
    ("type tests", "{{ none is string }}{{ '1' is number }}{{ [] is sequence }}{{ {} is iterable }}{{ 1 is iterable }}{{ none is mapping }}{{ 1.5 is integer }}{{ true is integer }}{{ true is number }}{{ range is callable }}{{ 'x' is callable }}", {}),
    ("select helpers", "{{ msgs|selectattr('role', 'in', ['user', 'assistant'])|list|length }}|{{ msgs|map(attribute='role')|unique|list }}|{{ msgs|map(attribute='missing', default='?')|list }}|{{ msgs|map(attribute='content')|map('upper')|join }}",
     {"msgs": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "user", "content": "v"}]}),
    ("membership forms", "{{ 'abc' is in 'xabcx' }}{{ (1, 2) == [1, 2] }}{{ 1 in (1, 2) }}{{ true == 1.0 }}{{ 0 == false }}{{ [1, 2] in [[1, 2]] }}", {}),
    ("loop outside loop", "[{{ loop }}][{{ loop.index }}]", {}),
    ("loop index in nested if", "{% for x in [1, 2, 3] %}{% if x > 1 %}{% if loop.last %}{{ loop.length }}{% endif %}{% endif %}{% endfor %}", {}),
    ("for over range with else and break", "{% for i in range(10) %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% else %}never{% endfor %}", {}),
    ("message fields", "{% for m in messages %}{{ m.role|upper }}:{{ m['content']|trim }}{{ ' (' ~ m.name ~ ')' if m.name is defined }}{{ '\n' if not loop.last }}{% endfor %}",
     {"messages": [{"role": "user", "content": " hi ", "name": "bob"}, {"role": "assistant", "content": "yo"}]}),
    ("content list parts", "{% for m in messages %}{% if m.content is string %}{{ m.content }}{% else %}{% for p in m.content %}{% if p.type == 'text' %}{{ p.text }}{% else %}<{{ p.type }}>{% endif %}{% endfor %}{% endif %}|{% endfor %}",
     {"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]}, {"role": "assistant", "content": "A cat."}]}),
    ("strftime_now exists", "{{ strftime_now is defined }}{{ raise_exception is defined }}", {}),
    # errors
    ("undefined attribute of undefined", "{{ x.y }}", {}),
    ("undefined attribute chain", "{{ d.missing.deeper }}", {"d": {}}),
    ("undefined in arithmetic", "{{ u + 'a' }}", {}),
    ("calling undefined", "{{ foo() }}", {}),
    ("str plus int", "{{ 'a' + 1 }}", {}),
    ("in string with int", "{{ 1 in 'abc' }}", {}),
    ("order str int", "{{ 'a' < 1 }}", {}),
    ("iterate none", "{% for i in none %}{% endfor %}", {}),
    ("unsafe list append", "{% set xs = [] %}{{ xs.append(1) }}", {}),
    ("none plus int", "{{ none + 1 }}", {}),
    ("list plus str", "{{ [1] + 'a' }}", {}),
    ("dict plus dict", "{{ {'a': 1} + {'b': 2} }}", {}),
    ("division by zero", "{{ 1 / 0 }}", {}),
    ("modulo by zero", "{{ 1 % 0 }}", {}),
    ("substring not found", "{{ 'abc'.index('z') }}", {}),
    ("method on undefined", "{{ foo.bar() }}", {}),
    ("missing method", "{{ 'x'.nosuchmethod() }}", {}),
    ("strip of missing content", "{{ messages[0]['content'].strip() }}", {"messages": [{"role": "user"}]}),
    ("unpack too few", "{% set a, b = [1] %}", {}),
    ("unpack too many", "{% for a, b in [[1, 2, 3]] %}{% endfor %}", {}),
    ("range too big", "{{ range(1000000)|length }}", {}),
    ("sort mixed types", "{{ [1, 'a']|sort }}", {}),
    ("set attribute on non-namespace", "{% set d = {} %}{% set d.x = 1 %}", {}),
    ("undefined in comparison", "{{ nothing < 1 }}", {}),
    ("length of int", "{{ 5|length }}", {}),
    ("iterate int", "{% for i in 5 %}{% endfor %}", {}),
    ("call a string", "{{ 'abc'() }}", {}),
    ("undefined item of undefined", "{{ x[0] }}", {}),
    ("tojson undefined", "{{ nothing|tojson }}", {}),
    ("int of list", "{{ [1]|int }}|{{ none|float }}", {}),
    ("items of list", "{{ [1]|items|list }}", {}),
    ("unsafe dict pop", "{{ {'a': 1}.pop('a') }}", {}),
    ("private attribute", "{{ ''.__class__ }}|", {}),
    ("unknown filter", "line one\n{{ d|nofilter }}", {"d": 1}),
    ("unknown filter in untaken branch", "{% if false %}{{ x|nofilter }}{% endif %}ok", {}),
    ("unknown test", "{{ 1 is notatest }}", {}),
    ("unknown filter in taken branch", "{% if true %}\n{{ x | nosuchfilter }}{% endif %}", {"x": 1}),
    ("unknown test in taken branch", "{% if true %}{{ x is nosuchtest }}{% endif %}", {"x": 1}),
    ("unknown filter in conditional expression", "{{ 1 if x|nosuch else 2 }}", {"x": 1}),
    ("unknown filter given to map", "{{ [1]|map('nosuch')|list }}", {}),
    ("unknown test given to select", "{{ [1]|select('nosuch')|list }}", {}),
    ("unknown tag", "{% foo %}", {}),
    ("unclosed block", "line1\nline2\n{% for x in y %}\nbody", {}),
    ("unclosed if with wrong end", "{% if x %}\n{% endfor %}", {}),
    ("missing expression", "a\nb\n{% if %}{% endif %}", {}),
    ("unclosed variable", "text\n{{ 'a' ", {}),
    ("unexpected brace", "{{ 1 ) }}", {}),
    ("unterminated string", "ok\n{{ 'abc }}", {}),
    ("unclosed comment", "x {# never closed", {}),
    ("bad assignment target", "{% set 1 = 2 %}", {}),
]


RANDOM_PIECES = ["hi", " ", "\n", "  lead", "trail  ", "\t", "é", "👍🏽", "{{ x }}", "{% if %}", "'", '"', "\\",
                 "<|im_end|>", "</s>", "[INST]", "\r\n", "", "</think>", "<think>", "<tool_response>", "xxxxx"]
RANDOM_ROLES = ["user", "assistant", "system", "tool", "user", "assistant", "user"]


def random_conversations(family, count=15):
    """Seeded random conversations (roles in any order, awkward text), the same on every run."""
    rng = random.Random(f"{family}-conversations")
    out = []
    for n in range(count):
        messages = []
        for _ in range(rng.randint(1, 6)):
            content = "".join(rng.choice(RANDOM_PIECES) for _ in range(rng.randint(0, 5)))
            messages.append({"role": rng.choice(RANDOM_ROLES), "content": content})
        out.append((f"random_{n:02d}", messages, rng.random() < 0.5, {}))
    return out


def build_tokenizer(family):
    spec = FAMILIES[family]
    if family == "smollm2" and os.path.exists(os.path.join(SMOLLM2_DIR, "tokenizer_config.json")):
        tok = AutoTokenizer.from_pretrained(SMOLLM2_DIR)
        if tok.chat_template != spec["template"]:
            print(f"note: {SMOLLM2_DIR} has a different chat template; using it", file=sys.stderr)
        spec["template"] = tok.chat_template
        spec["bos_token"] = tok.bos_token
        spec["eos_token"] = tok.eos_token
        spec["from"] = "models/SmolLM2-135M-Instruct"
        return tok
    vocab = {"[UNK]": 0}
    for t in (spec["bos_token"], spec["eos_token"]):
        if t is not None:
            vocab[t] = len(vocab)
    inner = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    inner.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=inner, bos_token=spec["bos_token"], eos_token=spec["eos_token"])
    tok.chat_template = spec["template"]
    spec["from"] = "embedded string"
    return tok


def error_record(e):
    return {"type": type(e).__name__, "message": str(e), "line": getattr(e, "lineno", None)}


def render_family(family):
    tok = build_tokenizer(family)
    spec = FAMILIES[family]
    extra_special = {k: v for k, v in tok.special_tokens_map.items() if k not in ("bos_token", "eos_token")}
    if extra_special:
        print(f"note: {family} tokenizer also passes {sorted(extra_special)} to the template", file=sys.stderr)
    cases = []
    all_cases = ([(n, msgs, agp, {}) for n, msgs, agp in COMMON] + FAMILY_CASES.get(family, [])
                 + random_conversations(family))
    for name, messages, agp, extra in all_cases:
        case = {"name": name, "messages": messages, "add_generation_prompt": agp}
        if extra:
            case["extra"] = extra
        kwargs = dict(extra)
        tools = kwargs.pop("tools", None)
        try:
            case["output"] = tok.apply_chat_template(copy.deepcopy(messages), tools=tools, tokenize=False,
                                                     add_generation_prompt=agp, **kwargs)
        except Exception as e:  # jinja2.TemplateError (raise_exception, UndefinedError) or TypeError
            case["error"] = error_record(e)
        cases.append(case)
    return {
        "template_file": f"{family}.jinja",
        "template_from": spec["from"],
        "bos_token": spec["bos_token"],
        "eos_token": spec["eos_token"],
        "cases": cases,
    }


def render_jinja_cases():
    out = []
    for name, template, context in JINJA_CASES:
        case = {"name": name, "template": template, "context": context}
        try:
            case["output"] = _compile_jinja_template(template).render(**context)
        except Exception as e:
            case["error"] = error_record(e)
        out.append(case)
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    goldens = {
        "generator": "tools/make_chat_template_fixtures.py",
        "transformers": transformers.__version__,
        "jinja2": jinja2.__version__,
        "families": {},
    }
    for family in FAMILIES:
        goldens["families"][family] = render_family(family)
        with open(os.path.join(OUT, f"{family}.jinja"), "w", encoding="utf-8", newline="") as f:
            f.write(FAMILIES[family]["template"])
    with open(os.path.join(OUT, "goldens.json"), "w", encoding="utf-8") as f:
        json.dump(goldens, f, ensure_ascii=False, indent=1)
        f.write("\n")
    cases = {"generator": goldens["generator"], "transformers": transformers.__version__,
             "jinja2": jinja2.__version__, "cases": render_jinja_cases()}
    with open(os.path.join(OUT, "jinja_cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
        f.write("\n")
    n = sum(len(v["cases"]) for v in goldens["families"].values())
    errors = sum(1 for v in goldens["families"].values() for c in v["cases"] if "error" in c)
    print(f"wrote {n} chat goldens ({errors} errors) for {len(FAMILIES)} families and {len(cases['cases'])} jinja cases to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
