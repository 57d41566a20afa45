#!/usr/bin/env python3
"""Writes the tokenizer fixtures used by Tests/TokenizersTests into Tests/Fixtures/tokenizers/.

  corpus.json                 a list of >= 300 hard strings (scripts, emoji sequences, combining marks,
                              whitespace runs, CRLF, code, digit runs, special-token text, long words)
  <name>.tokenizer.json       tokenizers under test: SmolLM2's real one (copied from
                              models/SmolLM2-135M-Instruct/ when that exists) and tokenizers trained
                              here with HF `tokenizers` on generated text:
                                llama3_bpe     Llama-3-style byte-level BPE (Split regex, ignore_merges)
                                sp_llama2      SentencePiece-style BPE, byte_fallback, <0xNN> tokens,
                                               Prepend+Replace normalizer (Llama-2 layout), merges as strings
                                sp_metaspace   the same model with a Metaspace(prepend_scheme=first)
                                               pre-tokenizer (Mistral v0.3 layout), merges as pairs
                                components_a   NFKC+Lowercase+Strip+Replace(regex), WhitespaceSplit,
                                               Punctuation, Digits, unk/"##" prefix, added-token flags
                                components_b   NFD, Split behaviours/invert, Metaspace(first) after a
                                               Strip normalizer, end_of_word_suffix, fuse_unk
                                components_c   Whitespace pre-tokenizer, NFKD, Lowercase, no decoder
                                components_d   BertNormalizer, StripAccents, BertPreTokenizer,
                                               CharDelimiterSplit, BPEDecoder, truncation and padding
                                gpt2_bpe       SmolLM2-like: Digits + ByteLevel(use_regex, GPT-2 regex),
                                               ChatML special tokens, merges as strings
                                qwen2_bpe      NFC, Split(Qwen2 regex: single digits), ByteLevel with
                                               add_prefix_space
  <name>.golden.json          for every corpus string: HF ids with add_special_tokens true and false,
                              HF decode of those ids with skip_special_tokens false and true; plus
                              decodes of random id sequences (invalid UTF-8 byte runs etc.).
  unicode.json                how the Rust side classifies every code point (Oniguruma \p{L} \p{N} \s,
                              Punctuation, Digits, regex-crate \w, BertNormalizer's control test) and
                              hashes of its single-character NFC/NFD/NFKC/NFKD/Lowercase mappings per
                              4096-code-point block, plus multi-character normalization samples.

Goldens are deterministic. BPE training is not (HF breaks ties in hash-map order), so existing
trained tokenizer files are kept unless --retrain is given.
Usage:  PY=$(tools/venv.sh); $PY tools/make_tokenizer_fixtures.py [--retrain]
"""
from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # (set before importing tokenizers)

from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                        pre_tokenizers, processors, trainers)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "tokenizers"
SMOLLM2 = ROOT / "models" / "SmolLM2-135M-Instruct" / "tokenizer.json"

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


# ----------------------------------------------------------------------------------------------
# Corpus
# ----------------------------------------------------------------------------------------------

def corpus() -> list[str]:
    c: list[str] = []
    add = c.append

    # Empty and tiny.
    for s in ["", " ", "  ", "a", "A", "\n", "\t", "\r\n", "'", "0", "é", "😀", "\u00a0", "\u3000", "▁",
              "Ġ", "<", ">", "|", "<s>", "</s>", "<unk>"]:
        add(s)

    # English, punctuation, capitals.
    for s in [
        "Hello, world!", "Hello world", " Hello world", "Hello world ", "HELLO WORLD", "hello\nworld",
        "The quick brown fox jumps over the lazy dog.", "What's up? Not much... you?",
        "She said: \"no\" -- and left.", "e.g. i.e. etc. Mr. Smith vs. Dr. Jones",
        "state-of-the-art, well-known, co-operate", "a_b_c snake_case CamelCase kebab-case",
        "!!!???...,,,;;;:::", "(parenthesis) [brackets] {braces} <angles>", "email@example.com",
        "https://example.com/path?query=1&x=y#frag", "C:\\Users\\name\\file.txt", "#hashtag @mention $100 50% ^caret ~tilde `tick`",
        "¿Qué tal? ¡Muy bien!", "«guillemets» „low quotes“ ‚single‘ “curly” ‘curly’",
        "em—dash en–dash figure‒dash horizontal―bar minus−sign", "ellipsis… bullet• middle·dot",
        "Ünïcödé Çåsé ÀÉÎÕÜ àéîõü ñÑ ßẞ", "İstanbul ıi IİıI", "ǅungla ǈ ǋ", "Ⅻ ⅻ ↀ",
    ]:
        add(s)

    # Contractions with assorted apostrophes and cases (the regexes special-case ASCII ').
    for s in [
        "don't", "I'M", "We'Re here", "it's", "IT'S", "they've", "THEY'VE", "we'll", "WE'LL", "I'd", "I'D",
        "'s", "'S", "'ſ", "'ſt", "'t'", "''s", "'''", "Y'ALL'LL", "rock 'n' roll", "'tis", "'twas",
        "don’t", "it’s", "I‘m", "itʼs", "it＇s", "it´s", "it`s", "o'clock", "O'Neil's", "'re're're",
        "'ve'm'll'd", "'Re 'rE 'RE 're", "he's'", "'hello'", "' s", "'\ns", "l'homme d'affaires", "'12",
        "'😀", "'ßig", "'Ǆ",
    ]:
        add(s)

    # Scripts.
    for s in [
        "你好，世界！", "我爱北京天安门。今天天气很好。", "中文English混合mixed文本", "繁體中文與简体中文",
        "日本語のテキストです。カタカナとひらがな。", "ｶﾀｶﾅ半角", "東京タワー、2024年3月15日",
        "한국어 텍스트입니다. 안녕하세요!", "\u1100\u1161\u11a8 \u1112\u1161\u11ab", "ㄱㄴㄷ ㅏㅑ",
        "مرحبا بالعالم", "السَّلَامُ عَلَيْكُمْ", "العربية ١٢٣٤٥ والأرقام ٦٧٨٩٠", "فارسی: سلام دنیا ۱۲۳",
        "שָׁלוֹם עוֹלָם", "עברית ו-English", "नमस्ते दुनिया", "हिन्दी भाषा क़ ज़ फ़ ड़ ढ़", "क्षत्रिय ज्ञान श्र",
        "संस्कृतम् ॐ १२३४", "বাংলা ভাষা", "தமிழ் மொழி", "తెలుగు", "ಕನ್ನಡ", "മലയാളം", "ગુજરાતી", "ਪੰਜਾਬੀ",
        "සිංහල", "ภาษาไทยไม่มีช่องว่างระหว่างคำ", "สวัสดีครับ ๑๒๓", "ພາສາລາວ", "ភាសាខ្មែរ", "မြန်မာဘာသာ",
        "བོད་ཡིག", "ქართული ენა", "Հայերեն լեզու", "Ελληνικά: καλημέρα κόσμε, ΣΟΦΙΑ σοφός",
        "Русский текст: Привет, мир! Ёё", "Українська: ґ є і ї", "Српски: Ђ Ћ Џ", "Tiếng Việt có dấu: Trường Đại học",
        "ኢትዮጵያ ግዕዝ", "ᏣᎳᎩ", "ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ", "ᚠᚢᚦᚨᚱᚲ", "ꦧꦱꦗꦮ", "𐌰𐌱𐌲 gothic", "𝐀𝐁𝐂 𝑎𝑏𝑐 𝔸𝔹ℂ",
        "ＡＢＣ　ｄｅｆ　１２３", "ﬁﬂﬀ ligatures", "x² y³ z⁴ H₂O", "½ ¼ ¾ ⅓", "① ② ⑳ ㉑", "Ⅰ Ⅱ Ⅲ Ⅳ 〇",
        "٣٤٥ ۴۵۶ ४५६ ๔๕๖ ༤༥", "µ Å Ω K ℃ ℉ № ™ ℠", "Ǆ ǅ ǆ Ĳ ĳ", "ŉ ſ ẛ", "Ꭰ ꭰ",
    ]:
        add(s)

    # Emoji.
    for s in [
        "😀😃😄", "👍🏽 👍🏿 👋🏻", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 🏳️‍⚧️", "🇺🇸🇫🇷🇯🇵🇩🇪", "🇺", "1️⃣ #️⃣ *️⃣",
        "🧑🏿‍🚀 👩🏽‍💻 🧑‍🤝‍🧑", "❤️ ♥️ ☺︎ ☺️", "I ❤️ NY", "emoji😀inside", "🤖🤖🤖🤖", "🏴󠁧󠁢󠁥󠁮󠁧󠁿 England",
        "text 🎉🎉 more text 🎊", "🙂" * 40, "👨🏻‍❤️‍💋‍👨🏼", "⌚⌛⏰", "©®™", "↑↓←→⇒⇔", "♠♣♥♦", "✓✔✗✘",
    ]:
        add(s)

    # Combining marks / normalization-sensitive text.
    for s in [
        "e\u0301", "cafe\u0301", "café", "a\u0300\u0301\u0302\u0303", "\u0301start", " \u0301",
        "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u0334\u0335\u031c\u0330\u0354L\u0337\u0327\u0329\u0316\u032b\u0326",
        "\u212b\u2126\u212a", "A\u030a\u00c5", "n\u0303 ñ", "\u1e9b\u0323", "q\u0307\u0323", "\u0958\u0959",
        "x\u20dd y\u20e3", "\u0e01\u0e34\u0e48", "\u0915\u094d\u200d\u0937", "\u200c\u200d", "a\u034fb",
        "o\u0308\u0304", "\uff76\uff9e", "\u3099\u309a", "\u0627\u0653", "\u05d1\u05bc",
    ]:
        add(s)

    # Whitespace.
    for s in [
        "a  b", "a   b", "a    b", "a\tb", "a\t\tb", "a \tb", "a\t b", " a", "  a", "   a", "a ", "a  ", "a   ",
        "line1\r\nline2", "line1\r\n\r\nline2", "\r\n\r\n", "\n\n\n", " \n \n ", "\n \n", "a\n\n b", "a \n b",
        "a\r\rb", "a\rb", "\ta", "\t\ta\t\t", "a\u00a0b", "a\u00a0\u00a0b", "\u00a0a", "\u3000全角スペース\u3000",
        "a\u2003b\u2009c\u200ad", "zero\u200bwidth", "line\u2028sep\u2029para", "next\u0085line", "v\u000bf\u000c",
        "mongolian\u180evs", "bom\ufeffhere", "\u202fnarrow", "tabs\tand spaces  \t mixed", "end with newline\n",
        "   leading and trailing   ", " \t \n \r\n ", "word\n", "\nword", "a\n\tb", "x \u00a0 y", " \u3000 ",
        "1 2  3   4", "! !  !", "a\n\n\n\n\n\nb",
    ]:
        add(s)

    # Code.
    for s in [
        "def f(x):\n    return x ** 2\n",
        "for i in range(10):\n\tprint(i)\n",
        "if (a && b || !c) { return -1; }",
        "let x: [Int] = [1, 2, 3].map { $0 * 2 }",
        "fn main() { println!(\"{}\", 'a'); let s: &'static str = \"x\"; }",
        "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); }",
        "<div class=\"x\"><a href='/y'>link</a></div>",
        "{\"key\": [1, 2.5, true, null], \"nested\": {\"a\": \"b\"}}",
        "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
        "$ ls -la | grep \"\\.swift$\" > out.txt 2>&1",
        "x = re.compile(r'(?i:\\w+)\\s*$')",
        "    indented\n        more\n            deep",
        "a+=1;b-=2;c*=3;d/=4;e%=5;f**=6;g//=7",
        "x->y; a::b; c=>d; e<=f; g>=h; i!=j; k==l; m===n",
        "/* comment */ // line comment\n# hash comment",
        "0x1F 0b1010 0o777 1e-10 3.14159 -42 +7 1_000_000",
        "```python\nprint('hi')\n```",
        "\tif x:\r\n\t\tpass\r\n",
        "lambda x, y: (x, y)[::-1]",
        "git commit -m 'fix: don't crash'",
    ]:
        add(s)

    # Digits.
    for s in [
        "1234567890", "0" * 1, "12", "123", "1234", "12345", "123456", "1234567", "3.14159265358979",
        "1,000,000.00", "-42", "2024-01-01T12:30:59Z", "+1 (555) 123-4567", "v1.2.3-rc.4",
        "abc123def456", "123abc", "x1y2z3", "1st 2nd 3rd 4th", "99 bottles", "1" * 100,
        "31415926535897932384626433832795028841971693993751058209749445923078164062862089986280348253421170679",
        "٠١٢٣٤٥٦٧٨٩", "０１２３４５６７８９", "१२३४५६७८९०", "𝟎𝟏𝟐𝟑", "12 345 6789", "1.2.3.4.5.6",
    ]:
        add(s)

    # Special-token text embedded in ordinary text.
    for s in [
        "<|im_start|>", "<|im_end|>", "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>system\nYou are helpful.<|im_end|>", "text<|im_start|>text", " <|im_start|> ",
        "<|im_start", "im_start|>", "<<|im_start|>>", "<|im_start|><|im_start|>", "<|im_start|><|im_end|>",
        "<|endoftext|>", "a<|endoftext|>b", "<|begin_of_text|>Hello", "<|begin_of_text|><|begin_of_text|>",
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", "<|eot_id|>\n\n", "<|end_of_text|>",
        "<s>", "</s>", "<s>hello", "hello</s>", "<s> hello </s>", "<s><s></s>", "<unk>", "x<unk>y",
        "[INST] hi [/INST]", "[INST]hi[/INST]", "<mask>", "a <mask> b", "a<mask>b", "  <mask>  ",
        "[new] token", "x[new]y", "ab", "ab ab", "xab", "abx", "ab, ab!", "cd", " cd ", "xcdx", "AB", "[NEW]",
        "<0x41>", "<0xE2><0x82><0xAC>", "▁hello▁world", "ĠHello", "<repo_name>", "<filename>x.py",
        "<|im_start|>user\n<s>[INST]mixed[/INST]</s><|im_end|>", "<|reserved_special_token_0|>",
        "<|python_tag|>", "<|im_sep|>", "<pad>", "[CLS] [SEP]",
    ]:
        add(s)

    # Control characters.
    for s in ["\x00", "a\x00b", "\x1b[31mred\x1b[0m", "\x7f", "\x07bell", "\x01\x02\x03", "\ufffd", "\ufffe\uffff",
              "\U0010ffff", "\ue000\uf8ff", "\U000e0041", "\u202eevil\u202c", "\u200e\u200fmarks"]:
        add(s)

    # Long words / long text.
    for s in [
        "a" * 300, "ab" * 150, "supercalifragilisticexpialidocious" * 8, "Donaudampfschifffahrtsgesellschaftskapitän",
        "https://example.com/" + "very/long/path/" * 20, "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=" * 5,
        "中" * 200, "あいうえお" * 40, "ก" * 150, " " * 64, "\n" * 40, "\t" * 20, "-" * 120, "=" * 80,
        "ab" + " " * 30 + "cd", "x" + "\u00a0" * 20 + "y", "..." * 50, "🙂🙃" * 60, "é" * 100, "e\u0301" * 80,
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore "
        "et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut "
        "aliquip ex ea commodo consequat.",
    ]:
        add(s)

    # Normalization edge cases (astral base + marks, archaic jamo, leading non-starters to reorder,
    # compatibility marks that compose), also at the start of the text for Metaspace(first).
    for s in ["\U00010070\u0323\u0301", "x\U000E0049\u033b\u0304", "\u1104\u1176", "\u1100\u1161\u11a8\u11ff",
              "\U00010376\u0f81\U00020090", "\u065c\u06d7\u05c2\u059f aa", "\u0e3a\u0e4b\u0e18\u2714", "ｶﾞｷﾞ",
              "\u0344\u0f73\u0f75", "\u2000\u2001 \u2126\u212a\u212b", "\uf900\uf901\U0002f800", "\u00c5\u0327\u0301"]:
        add(s)

    # Deterministic random mixtures of fragments, to reach well over 300 strings.
    rng = random.Random(1234)
    pieces = [
        "the", "The", " ", "  ", "\n", "\r\n", "\t", "'s", "'LL", "’", "123", "4567", "٣", "你好", "世界", "こんにちは",
        "한국", "مرحبا", "שלום", "नमस्ते", "ไทย", "😀", "👍🏽", "🇯🇵", "👨‍👩‍👧", "e\u0301", "ñ", "ß", "İ", "Ω",
        ",", ".", "!", "?", "...", "--", "(", ")", "\"", "{", "}", "<|im_start|>", "<|im_end|>", "<s>", "</s>",
        "<|begin_of_text|>", "\u00a0", "\u3000", "x", "Hello", "WORLD", "_", "$", "%", "#", "@", "+", "=",
        "ab", "cd", "<mask>", "[new]", "[INST]", "-", "1", "0", "9", "ſ", "ﬁ", "①", "²", "Ⅻ",
    ]
    while len(c) < 420:
        n = rng.randint(2, 14)
        add("".join(rng.choice(pieces) for _ in range(n)))
    # Random code points from many blocks (marks, jamo, astral letters, tags, variation selectors).
    blocks = [(0x20, 0x7E), (0x00, 0x1F), (0xA0, 0x2FF), (0x300, 0x36F), (0x370, 0x4FF), (0x590, 0x6FF),
              (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x1E00, 0x1FFF), (0x2000, 0x218F),
              (0x3000, 0x30FF), (0x4E00, 0x4E80), (0xAC00, 0xAC40), (0xFB00, 0xFB4F), (0xFE00, 0xFE0F),
              (0xFF00, 0xFFEF), (0x10000, 0x1007F), (0x1D400, 0x1D7FF), (0x1F300, 0x1FAFF), (0xE0000, 0xE007F)]
    while len(c) < 600:
        out = []
        for _ in range(rng.randint(1, 10)):
            r = rng.random()
            if r < 0.45:
                a, b = rng.choice(blocks)
                out.append("".join(chr(rng.randint(a, b)) for _ in range(rng.randint(1, 5))))
            elif r < 0.8:
                out.append(rng.choice(pieces))
            else:
                src = rng.choice(c)
                if src:
                    i = rng.randrange(len(src))
                    out.append(src[i:i + rng.randint(1, 16)])
        add("".join(ch for ch in "".join(out) if not 0xD800 <= ord(ch) < 0xE000))

    seen, out = set(), []
    for s in c:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


# ----------------------------------------------------------------------------------------------
# Training text
# ----------------------------------------------------------------------------------------------

def training_text(strings: list[str]) -> list[str]:
    lines: list[str] = []
    rng = random.Random(99)
    for _ in range(30):
        lines.extend(strings)
    site = Path(json.__file__).resolve().parent.parent  # the Python stdlib directory
    files = sorted(site.glob("*.py"))[:120]
    total = 0
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except Exception:
            continue
        lines.extend(text.splitlines(keepends=True))
        total += len(text)
        if total > 2_500_000:
            break
    words = ["hello", "world", "token", "model", "data", "the", "and", "of", "to", "in", "is", "that", "for"]
    for _ in range(20000):
        lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))))
    rng.shuffle(lines)
    return lines


# ----------------------------------------------------------------------------------------------
# Tokenizers
# ----------------------------------------------------------------------------------------------

def llama3_bpe(text: list[str]) -> Tokenizer:
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=2000, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text, trainer)
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                "<|reserved_special_token_1|>", "<|start_header_id|>", "<|end_header_id|>",
                "<|reserved_special_token_2|>", "<|eot_id|>", "<|python_tag|>"]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    return tok


def sp_model_json(text: list[str], merges_as_strings: bool) -> dict:
    """Trains a SentencePiece-style BPE and lays its vocab out like Llama-2: <unk> <s> </s> <0x00>..<0xFF> rest."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=True)
    trainer = trainers.BpeTrainer(vocab_size=2200, show_progress=False, limit_alphabet=160,
                                  special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(text, trainer)
    model = json.loads(tok.to_str())["model"]
    old = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    vocab: dict[str, int] = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for t, _ in old:
        if t not in vocab:
            vocab[t] = len(vocab)
    merges = model["merges"]
    if merges_as_strings:
        merges = [" ".join(m) if isinstance(m, list) else m for m in merges]
    else:
        merges = [m.split(" ") if isinstance(m, str) else m for m in merges]
    return {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
            "vocab": vocab, "merges": merges}


def added(id_, content, special=True, normalized=False, lstrip=False, rstrip=False, single_word=False):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip, "rstrip": rstrip,
            "normalized": normalized, "special": special}


def template(single_tokens: list[tuple[str, int]], after: list[tuple[str, int]] = ()) -> dict:
    single = [{"SpecialToken": {"id": t, "type_id": 0}} for t, _ in single_tokens]
    single.append({"Sequence": {"id": "A", "type_id": 0}})
    single += [{"SpecialToken": {"id": t, "type_id": 0}} for t, _ in after]
    pair = list(single) + [{"Sequence": {"id": "B", "type_id": 1}}]
    specials = {t: {"id": t, "ids": [i], "tokens": [t]} for t, i in list(single_tokens) + list(after)}
    return {"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials}


def sp_llama2(text: list[str]) -> str:
    model = sp_model_json(text, merges_as_strings=True)
    cfg = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": template([("<s>", 1)]),
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": model,
    }
    return json.dumps(cfg, ensure_ascii=False)


def sp_metaspace(text: list[str]) -> str:
    model = sp_model_json(text, merges_as_strings=False)
    n = len(model["vocab"])
    cfg = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>"),
                         added(n, "[INST]"), added(n + 1, "[/INST]")],
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
        "post_processor": template([("<s>", 1)]),
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "ByteFallback"},
            {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}]},
        "model": model,
    }
    return json.dumps(cfg, ensure_ascii=False)


def components_a(text: list[str]) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="[UNK]", fuse_unk=False, continuing_subword_prefix="##"))
    tok.normalizer = normalizers.Sequence([
        normalizers.NFKC(), normalizers.Lowercase(), normalizers.Strip(left=True, right=True),
        normalizers.Replace(Regex(r"\s+"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(behavior="isolated"),
        pre_tokenizers.Digits(individual_digits=False),
    ])
    trainer = trainers.BpeTrainer(vocab_size=1200, show_progress=False, limit_alphabet=90,
                                  continuing_subword_prefix="##", special_tokens=["[UNK]", "[CLS]", "[SEP]"])
    tok.train_from_iterator(text, trainer)
    tok.add_special_tokens([
        AddedToken("<mask>", lstrip=True, rstrip=False, single_word=False, normalized=False, special=True),
        AddedToken("<|im_start|>", normalized=False, special=True),
        AddedToken("<|im_end|>", normalized=False, special=True, rstrip=True),
    ])
    tok.add_tokens([
        AddedToken("[new]", normalized=True, special=False, rstrip=True),
        AddedToken("ab", single_word=True, normalized=True, special=False),
        AddedToken("cd", single_word=True, normalized=False, lstrip=True, rstrip=True, special=False),
        AddedToken("ﬁ", normalized=True, special=False),
    ])
    tok.decoder = decoders.Sequence([
        decoders.Replace("##", ""), decoders.Fuse(), decoders.Strip(content="x", left=2, right=0)])
    tok.post_processor = processors.RobertaProcessing(sep=("[SEP]", tok.token_to_id("[SEP]")),
                                                      cls=("[CLS]", tok.token_to_id("[CLS]")))
    return tok


def components_b(text: list[str]) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([
        normalizers.NFD(), normalizers.Replace(Regex(r"[\u0300-\u036f]"), ""),
        normalizers.Strip(left=True, right=False),
    ])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\p{N}+"), behavior="merged_with_previous"),
        pre_tokenizers.Split("-", behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"[,;]"), behavior="contiguous"),
        pre_tokenizers.Split(Regex(r"!+"), behavior="removed"),
        pre_tokenizers.Split(Regex(r"[a-z]+"), behavior="merged_with_previous", invert=True),
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True),
    ])
    trainer = trainers.BpeTrainer(vocab_size=1200, show_progress=False, limit_alphabet=120,
                                  end_of_word_suffix="</w>", special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(text, trainer)
    tok.add_special_tokens([AddedToken("<|im_start|>", normalized=False, special=True, lstrip=True, rstrip=True)])
    tok.add_tokens([AddedToken("e\u0301", normalized=True, special=False)])
    tok.decoder = decoders.Sequence([
        decoders.Replace("</w>", " "), decoders.Metaspace(replacement="▁", prepend_scheme="always"),
        decoders.Strip(content=" ", left=1, right=0)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    return tok


def gpt2_bpe(text: list[str]) -> str:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>"])
    tok.train_from_iterator(text, trainer)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    cfg = json.loads(tok.to_str())
    cfg["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in cfg["model"]["merges"]]
    return json.dumps(cfg, ensure_ascii=False)


def qwen2_bpe(text: list[str]) -> Tokenizer:
    qwen2 = LLAMA3_PATTERN.replace(r"\p{N}{1,3}", r"\p{N}")
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(qwen2), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1500, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text, trainer)
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False),
                            AddedToken("<|im_start|>", special=True, normalized=False),
                            AddedToken("<|im_end|>", special=True, normalized=False)])
    tok.add_tokens([AddedToken("<tool_call>", special=False, normalized=False)])
    return tok


def components_d(text: list[str]) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="[UNK]", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([
        normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True),
        normalizers.StripAccents()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.BertPreTokenizer(), pre_tokenizers.CharDelimiterSplit("x")])
    trainer = trainers.BpeTrainer(vocab_size=900, show_progress=False, limit_alphabet=200, end_of_word_suffix="</w>",
                                  special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]"])
    tok.train_from_iterator(text, trainer)
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    tok.post_processor = processors.BertProcessing(sep=("[SEP]", tok.token_to_id("[SEP]")),
                                                   cls=("[CLS]", tok.token_to_id("[CLS]")))
    tok.enable_truncation(max_length=48)
    tok.enable_padding(pad_id=tok.token_to_id("[PAD]"), pad_token="[PAD]", pad_to_multiple_of=8)
    return tok


def whitespace_variant(text: list[str]) -> Tokenizer:
    """Whitespace pre-tokenizer + NFKD + BertNormalizer-free lowercase; byte-level alphabet not needed."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    trainer = trainers.BpeTrainer(vocab_size=900, show_progress=False, limit_alphabet=150,
                                  special_tokens=["<unk>"])
    tok.train_from_iterator(text, trainer)
    tok.decoder = decoders.Sequence([decoders.Fuse()])
    return tok


# ----------------------------------------------------------------------------------------------
# Goldens
# ----------------------------------------------------------------------------------------------

def goldens(tok: Tokenizer, strings: list[str], rng: random.Random) -> dict:
    cases = []
    for s in strings:
        with_special = tok.encode(s, add_special_tokens=True).ids
        plain = tok.encode(s, add_special_tokens=False).ids
        case = {"ids_special": with_special, "ids": plain,
                "decode": tok.decode(with_special, skip_special_tokens=False),
                "decode_skip": tok.decode(with_special, skip_special_tokens=True)}
        d = tok.decode(plain, skip_special_tokens=False)
        if d != case["decode"]:
            case["decode_plain"] = d
        d = tok.decode(plain, skip_special_tokens=True)
        if d != case["decode_skip"]:
            case["decode_plain_skip"] = d
        cases.append(case)
    # Random id sequences, biased toward byte tokens and specials, to pin down how broken UTF-8
    # and special tokens decode.
    n = tok.get_vocab_size(with_added_tokens=True)
    vocab = tok.get_vocab(with_added_tokens=True)
    items = sorted(vocab.items(), key=lambda kv: kv[1])  # get_vocab's order varies between runs
    byteish = [i for t, i in items if t.startswith("<0x") or (len(t) == 1 and ord(t) >= 0x80)]
    specials = [i for t, i in items if t.startswith("<") and t.endswith(">") and len(t) > 2]
    rand = []
    for k in range(150):
        ids = []
        for _ in range(rng.randint(1, 12)):
            r = rng.random()
            pool = byteish if (r < 0.5 and byteish) else specials if (r < 0.6 and specials) else None
            ids.append(rng.choice(pool) if pool else rng.randrange(n))
        rand.append({"ids": ids, "decode": tok.decode(ids, skip_special_tokens=False),
                     "decode_skip": tok.decode(ids, skip_special_tokens=True)})
    return {"cases": cases, "random": rand}


# ----------------------------------------------------------------------------------------------
# Unicode behaviour of the Rust side (its components use different Unicode versions)
# ----------------------------------------------------------------------------------------------

def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def unicode_tables() -> dict:
    """Character classes (as code point ranges) and per-block hashes of the single-character
    normalizer mappings, scanned over all of Unicode, plus multi-character normalization samples."""
    from tokenizers import normalizers as N, pre_tokenizers as P
    import unicodedata

    points = [v for v in range(0x110000) if not 0xD800 <= v < 0xE000]

    def ranges(pred) -> list[list[int]]:
        out: list[list[int]] = []
        for v in points:
            if pred(chr(v)):
                if out and out[-1][1] == v - 1:
                    out[-1][1] = v
                else:
                    out.append([v, v])
        return out

    def regex(p):
        pt = P.Split(Regex(p), behavior="removed")
        return lambda c: pt.pre_tokenize_str(c) == []

    punct, digits, ws = P.Punctuation(), P.Digits(individual_digits=True), P.Whitespace()
    bert = N.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    classes = {
        "onig_letter": ranges(regex(r"\p{L}")),
        "onig_number": ranges(regex(r"\p{N}")),
        "onig_space": ranges(regex(r"\s")),
        "punctuation": ranges(lambda c: len(punct.pre_tokenize_str("a" + c + "a")) == 3),
        "numeric": ranges(lambda c: len(digits.pre_tokenize_str("a" + c + "a")) == 3),
        "regex_word": ranges(lambda c: [x[0] for x in ws.pre_tokenize_str("a" + c)] == ["a" + c]),
        "bert_removed": ranges(lambda c: bert.normalize_str(c) == ""),
    }
    maps = {}
    for name, n in [("nfc", N.NFC()), ("nfd", N.NFD()), ("nfkc", N.NFKC()), ("nfkd", N.NFKD()), ("lowercase", N.Lowercase())]:
        blocks: dict[int, bytearray] = {}
        for v in points:
            r = n.normalize_str(chr(v))
            if r != chr(v):
                blocks.setdefault(v >> 12, bytearray()).extend(f"{v:x}:".encode() + r.encode() + b"\n")
        maps[name] = {f"{k:x}": f"{fnv1a64(bytes(b)):016x}" for k, b in sorted(blocks.items())}
    rng = random.Random(11)
    marks = [v for v in points[:0x30000] if unicodedata.combining(chr(v))]
    decomposable = [v for v in points[:0x30000] if unicodedata.decomposition(chr(v))]
    samples = []
    norms = [N.NFC(), N.NFD(), N.NFKC(), N.NFKD()]
    for _ in range(1500):
        t = "".join(chr(rng.choice(points[:0x30000] if r < 0.3 else marks if r < 0.6 else decomposable))
                    for r in (rng.random() for _ in range(rng.randint(1, 7))))
        samples.append([t] + [n.normalize_str(t) for n in norms])
    return {"classes": classes, "normalization_block_hashes": maps, "normalization_samples": samples}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    strings = corpus()
    assert len(strings) >= 300, len(strings)
    (OUT / "corpus.json").write_text(json.dumps(strings, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    text = training_text(strings)  # only used when training

    built: dict[str, Tokenizer] = {}
    if SMOLLM2.exists():
        # Same JSON, re-serialized without indentation (3.5 MB -> 1.6 MB); goldens come from this copy.
        data = json.loads(SMOLLM2.read_text(encoding="utf-8"))
        (OUT / "smollm2.tokenizer.json").write_text(
            json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    if (OUT / "smollm2.tokenizer.json").exists():
        built["smollm2"] = Tokenizer.from_file(str(OUT / "smollm2.tokenizer.json"))
    else:
        print("note: models/SmolLM2-135M-Instruct/tokenizer.json not found; skipping smollm2", file=sys.stderr)
    retrain = "--retrain" in sys.argv
    for name, fn in [("llama3_bpe", llama3_bpe), ("sp_llama2", sp_llama2), ("sp_metaspace", sp_metaspace),
                     ("components_a", components_a), ("components_b", components_b),
                     ("components_c", whitespace_variant), ("components_d", components_d), ("gpt2_bpe", gpt2_bpe), ("qwen2_bpe", qwen2_bpe)]:
        if (OUT / f"{name}.tokenizer.json").exists() and not retrain:
            # BPE training breaks ties in hash-map order, so it differs from run to run: keep the
            # committed tokenizers and only recompute the goldens (pass --retrain to train anew).
            built[name] = Tokenizer.from_file(str(OUT / f"{name}.tokenizer.json"))
            continue
        tok = fn(text)
        if isinstance(tok, str):  # hand-laid-out JSON (keeps e.g. merges as "a b" strings)
            (OUT / f"{name}.tokenizer.json").write_text(tok, encoding="utf-8")
        else:
            tok.save(str(OUT / f"{name}.tokenizer.json"), pretty=False)
        built[name] = Tokenizer.from_file(str(OUT / f"{name}.tokenizer.json"))  # goldens from the saved file

    manifest = []
    for name, tok in built.items():
        g = goldens(tok, strings, random.Random(7))
        g["tokenizer"] = f"{name}.tokenizer.json"
        (OUT / f"{name}.golden.json").write_text(json.dumps(g, ensure_ascii=False) + "\n", encoding="utf-8")
        manifest.append({"name": name, "tokenizer": f"{name}.tokenizer.json", "golden": f"{name}.golden.json"})
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    (OUT / "unicode.json").write_text(json.dumps(unicode_tables(), ensure_ascii=False) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(strings)} corpus strings, {len(built)} tokenizers, {total / 1e6:.2f} MB in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
