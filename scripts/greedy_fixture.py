#!/usr/bin/env python3
"""Writes llama.cpp's greedy continuation of prompts, to check a model forward against it.

    python scripts/greedy_fixture.py MODEL.gguf PROMPTS.json N > OUT.json

PROMPTS.json is a list of strings. For each, the prompt ids are llama.cpp's tokenization (BOS
added as the model asks, special tokens parsed), `ids` the N tokens llama.cpp picks greedily
(argmax of the logits, 2 threads, 4,096-token context) and `top` llama.cpp's five highest logits
before each pick, as [id, logit] pairs. Needs llama-cpp-python (0.3.36 made the
shipped fixtures).
"""
import json
import sys

import numpy as np
from llama_cpp import Llama


def main() -> None:
    model, prompts_file, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    llm = Llama(model_path=model, n_ctx=4096, n_threads=2, n_batch=512, verbose=False)
    out = []
    for text in json.load(open(prompts_file, encoding="utf-8")):
        llm.reset()
        prompt = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        llm.eval(prompt)
        ids, top = [], []
        for _ in range(n):
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
            best = np.argsort(-logits)[:5]
            top.append([[int(i), round(float(logits[i]), 4)] for i in best])
            t = int(best[0])
            ids.append(t)
            llm.eval([t])
        out.append({"prompt": text, "prompt_ids": prompt, "ids": ids, "top": top,
                    "text": llm.detokenize(ids).decode("utf-8", "replace")})
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
