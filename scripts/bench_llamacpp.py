#!/usr/bin/env python3
"""llama.cpp side of `assay bench llm` (through llama-cpp-python).

Reads the exact prompt token ids assay used, evaluates them, then generates N tokens greedily
(ignoring end-of-turn so both sides produce the same count), and writes timings as JSON.

usage: bench_llamacpp.py MODEL.gguf IDS.json N_GEN THREADS N_CTX STATS_OUT.json
"""
import json
import sys
import time

import numpy as np
from llama_cpp import Llama

model, ids_file, n_gen, threads, n_ctx, out = sys.argv[1:7]
n_gen, threads, n_ctx = int(n_gen), int(threads), int(n_ctx)
ids = json.load(open(ids_file))

t = time.perf_counter()
llm = Llama(model_path=model, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, n_batch=512, verbose=False)
load_s = time.perf_counter() - t

t = time.perf_counter()
llm.eval(ids)
prompt_s = time.perf_counter() - t

t = time.perf_counter()
for _ in range(n_gen):
    # Without logits_all, llama-cpp-python keeps no scores: read the last token's logits directly.
    logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
    tok = int(np.argmax(logits))
    llm.eval([tok])
gen_s = time.perf_counter() - t

json.dump({"load_s": load_s, "prompt_tokens": len(ids), "prompt_s": prompt_s, "gen_tokens": n_gen, "gen_s": gen_s}, open(out, "w"))
