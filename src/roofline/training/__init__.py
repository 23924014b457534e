"""Training and fine-tuning steps on the one engine (issue 19).

One micro-batch's forward pass is the workload's prefill-phase operator graph for `micro_batch`
sequences of `seq_len` tokens, parallelised by the same transform as serving (`parallel.stage`);
the backward pass is each GEMM's two transposed GEMMs and the attention core's backward, timed by
the same cost model (`simulator.cost`). `step` composes micro-batches into the pipeline schedule
with its bubble, the data-parallel gradient and parameter collectives and the optimizer step;
`memory` is the capacity per GPU; `flops` the model-FLOP convention of the published tables.

Modules: `constants` (data/training.yaml), `config` (the layout and its checks), `graph` (the
operators of one micro-batch), `flops`, `memory`, `step` (the step time and its parts).
"""
