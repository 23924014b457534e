"""Parallelism as one transform of the operator graph.

Workload builders write each family's operator graph once, in terms of named dimensions (attention
heads, KV heads, FFN width, vocabulary, experts, expert width, the attention replica's batch) whose
per-GPU size they ask of the `Placement` (rules: `dims`), and tag the ops whose output the parallel
group must combine (`ir.Sync`). A diffusion transformer does the same with its tokens and heads
(`Placement.sequence_split` / `ring`: Ulysses x ring sequence parallelism, `cfg_split`: the two
CFG branches on two groups) and its all-to-alls, ring K/V passes and CFG gather. This package does
the rest for every family alike:
`collectives` turns the tags into the collectives of the groups that have more than one GPU,
`sequence` is Megatron sequence parallelism (the TP all-reduces as reduce-scatter + all-gather),
`context` is context parallelism (ring attention), and `stage` is the one entry point that gives the
operators one GPU of a pipeline stage runs (with MTP drafts and the pipeline send/recv).

Submodules are imported explicitly (`roofline.parallel.stage` needs the workloads, which need `dims`).
"""
