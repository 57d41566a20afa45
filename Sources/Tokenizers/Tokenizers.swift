// Tokenizers: tokenizer.json (HF tokenizers), chat templates, streaming detokenizer.
