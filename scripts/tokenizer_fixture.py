#!/usr/bin/env python3
"""Writes a tokenizer parity fixture: llama.cpp's ids for each text of an existing fixture.

    python scripts/tokenizer_fixture.py MODEL.gguf tests/fixtures/tokenizer/smollm2-135m-instruct.jsonl > OUT.jsonl

Needs llama-cpp-python (0.3.36 made the shipped fixtures). Ids are `tokenize(text, add_bos=False,
special=True)`, as in shared/fixtures/tokenizer/README.md.
"""
import json
import sys

from llama_cpp import Llama


def main() -> None:
    model, texts_from = sys.argv[1], sys.argv[2]
    llm = Llama(model_path=model, vocab_only=True, verbose=False)
    with open(texts_from, encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)["text"]
            ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            print(json.dumps({"text": text, "ids": ids}, ensure_ascii=False))


if __name__ == "__main__":
    main()
