#!/usr/bin/env python3
"""Makes Tests/Fixtures/chat_model/: a complete model folder for CLI tests of generate/chat/tokenize.

It reuses the tiny random Llama (Tests/Fixtures/models/llama-optimum, vocab 128) and adds a
character-level BPE tokenizer.json whose 128 ids fit that vocabulary (ids 3..97 are printable ASCII,
98..127 spare), SmolLM2's ChatML template with <s>/</s> as its markers, config.json and
generation_config.json (eos 2). The text it generates is noise; the tests check plumbing, not prose.
Usage:  PY=$(tools/venv.sh); $PY tools/make_cli_fixture.py
"""
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "Tests/Fixtures/models/llama-optimum"
OUT = ROOT / "Tests/Fixtures/chat_model"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "model.onnx_data"):
        shutil.copyfile(SOURCE / name, OUT / name)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for code in range(32, 127):
        vocab[chr(code)] = len(vocab)
    for spare in range(len(vocab), 128):
        vocab[f"<spare_{spare}>"] = spare
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for t, i in (("<unk>", 0), ("<s>", 1), ("</s>", 2))
        ],
        "normalizer": None,
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Fuse"},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": []},
    }
    (OUT / "tokenizer.json").write_text(json.dumps(tokenizer, indent=1))
    template = ("{% for message in messages %}{{ '<s>' + message['role'] + ': ' + message['content'] + '</s>' }}"
                "{% endfor %}{% if add_generation_prompt %}{{ '<s>assistant: ' }}{% endif %}")
    (OUT / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "chat_template": template}, indent=1))
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128, "hidden_size": 32,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "eos_token_id": 2, "bos_token_id": 1}
    (OUT / "config.json").write_text(json.dumps(config, indent=1))
    (OUT / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}, indent=1))

    from tokenizers import Tokenizer  # sanity: HF tokenizers reads the file and round-trips ASCII
    hf = Tokenizer.from_file(str(OUT / "tokenizer.json"))
    ids = hf.encode("Hi there!").ids
    assert hf.decode(ids) == "Hi there!", hf.decode(ids)
    print(f"wrote {OUT} (ids for 'Hi there!': {ids})")


if __name__ == "__main__":
    main()
