"""Model-level runs: a real PyTorch decoder built from a dense workload spec, timed, and the spec
the estimator is given for the same run.

The model has random weights, the workload's layer dimensions (scaled down on a host CPU so a
quick run takes seconds), a reduced number of layers, GQA attention over a preallocated KV cache,
RMSNorm, RoPE, a SwiGLU (or plain) MLP, the LM head on the last position and a greedy sample.
Prefill runs the whole batch of prompts in one step (the estimate is told the same through
`max_num_tokens`); each decode step appends one token per sequence to the cache. The reduced
workload is a validated copy of the spec, so the estimator sees exactly the model that ran.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from roofline.calibration.timing import Clock
from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.ir import Precision
from roofline.simulator.plan import DEFAULT_MAX_NUM_TOKENS, ParallelPlan, Scenario
from roofline.workloads.base import Workload
from roofline.workloads.dense import DenseTransformer
from roofline.workloads.moe import MoETransformer

CPU_MOE_KERNELS = "torch_mm_loop"  # torch._grouped_mm off the CUTLASS path, or the expert loop
ROPE_THETA = 500000.0  # value does not change the timing
NORM_EPS = 1e-5


@dataclass(frozen=True)
class ModelRunSpec:
    workload: DenseTransformer | MoETransformer  # the reduced model that runs (and that the estimator is given)
    batch: int
    isl: int
    osl: int
    dtype: DType
    base_id: str  # the catalog workload it was reduced from
    moe_kernels: str = "torch_grouped_mm"  # MoE: the variant TorchDecoder runs (moe_kernels.yaml)

    @property
    def scenario(self) -> Scenario:
        precision = Precision(weight=self.dtype, activation=self.dtype, kv_cache=self.dtype)
        tokens = max(DEFAULT_MAX_NUM_TOKENS, self.batch * self.isl)  # the whole batch in one prefill step
        plan = ParallelPlan(moe_kernels=self.moe_kernels)
        return Scenario(self.batch, self.isl, self.osl, precision, plan, max_num_tokens=tokens)

    def describe(self) -> str:
        w = self.workload
        ffn = (f"{w.num_experts} experts, top {w.num_experts_per_tok}, expert intermediate {w.moe_intermediate_size}"
               if isinstance(w, MoETransformer) else f"intermediate {w.intermediate_size}")  # fmt: skip
        return (
            f"{self.base_id} reduced to {w.num_hidden_layers} layers (hidden {w.hidden_size}, heads "
            f"{w.num_attention_heads}/{w.num_key_value_heads} x {w.attention.head_dim}, {ffn}, "
            f"vocab {w.vocab_size}), {self.dtype.value}, batch {self.batch} x isl {self.isl} / osl {self.osl}"
        )


def reduced_workload(
    workload: Workload, layers: int, width_divisor: int = 1, max_vocab: int | None = None,
    max_experts: int | None = None,
) -> DenseTransformer | MoETransformer:  # fmt: skip
    """A validated copy of a dense or MoE workload with fewer layers and, optionally, narrower widths
    (hidden, heads, KV heads and FFN widths divided by `width_divisor`, head_dim kept); an MoE model
    keeps its routed experts only (at most `max_experts`, every layer MoE)."""
    if not isinstance(workload, DenseTransformer | MoETransformer):
        raise RooflineError(f"model-level runs build dense or MoE transformers; '{workload.id}' is {workload.kind}")
    w, d = workload, width_divisor
    heads = max(1, w.num_attention_heads // d)
    kv_heads = max(1, w.num_key_value_heads // d)
    while heads % kv_heads:
        kv_heads -= 1
    head_dim = w.attention.head_dim
    update: dict[str, Any] = {
        "id": f"{w.id}-{layers}l" + (f"-w{d}" if d > 1 else ""),
        "name": f"{w.name} ({layers} layers" + (f", widths / {d})" if d > 1 else ")"),
        "num_hidden_layers": min(layers, w.num_hidden_layers),
        "hidden_size": max(64, w.hidden_size // d),
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "intermediate_size": max(64, (w.intermediate_size // d) // 64 * 64) if w.intermediate_size else 0,
        "vocab_size": min(w.vocab_size, max_vocab) if max_vocab else w.vocab_size,
        "sliding_window": None,  # the torch model attends to the whole (short) context
        "sliding_window_layers": None,
        "attention_chunk_size": None,
        "chunked_layers": None,
        "published_params": None,
        "published_active_params": None,
        "published_rounding": None,
    }
    if isinstance(w, MoETransformer):
        experts = min(w.num_experts, max_experts) if max_experts else w.num_experts
        update |= {"moe_intermediate_size": max(64, (w.moe_intermediate_size // d) // 64 * 64),
                   "num_experts": experts, "num_experts_per_tok": min(w.num_experts_per_tok, experts),
                   "num_shared_experts": 0, "first_k_dense_replace": 0, "moe_layer_step": 1,
                   "num_nextn_predict_layers": 0, "n_group": 1, "topk_group": 1, "router_bias": False,
                   "published_active_params": None}  # fmt: skip
        if max_experts and experts < w.num_experts:
            update["id"] += f"-e{experts}"
    return type(w).model_validate({**w.model_dump(), **update})


def spec_for(workload: Workload, device_kind: str, full: bool) -> ModelRunSpec:
    if device_kind == "cpu":  # widths / 4 (Llama-3.1-8B: hidden 1024, 8/2 heads x 128, intermediate 3584)
        divisor, vocab, layers = (2, 32768, 2) if full else (4, 8192, 2)
        batch, isl, osl = (4, 256, 16) if full else (2, 128, 8)
        return ModelRunSpec(
            reduced_workload(workload, layers, divisor, vocab), batch, isl, osl, DType.FP32, workload.id
        )
    layers, (batch, isl, osl) = (8, (16, 2048, 32)) if full else (4, (8, 1024, 16))
    return ModelRunSpec(reduced_workload(workload, layers), batch, isl, osl, DType.BF16, workload.id)


def moe_spec_for(workload: Workload, device_kind: str, full: bool) -> ModelRunSpec:
    """The MoE model-level run: a host CPU runs Qwen3-30B-A3B-like widths / 4 with 16 experts; a GPU
    the full widths and every expert, 4 layers (8 with --full)."""
    if device_kind == "cpu":  # torch._grouped_mm on a CPU: one mm per expert (moe_kernels torch_mm_loop)
        reduced = reduced_workload(workload, 2, 4, 8192, max_experts=16)
        return ModelRunSpec(reduced, 2, 128, 8, DType.FP32, workload.id, moe_kernels=CPU_MOE_KERNELS)
    layers, (batch, isl, osl) = (8, (16, 2048, 32)) if full else (4, (8, 1024, 16))
    return ModelRunSpec(reduced_workload(workload, layers), batch, isl, osl, DType.BF16, workload.id)


def model_bytes(spec: ModelRunSpec) -> float:
    """Weights + KV cache + the widest prefill activations, for the memory cap."""
    w, e = spec.workload, spec.dtype.bytes_per_element
    weights = w.parameter_counts().total * e
    tokens = spec.batch * (spec.isl + spec.osl)
    kv = w.num_hidden_layers * tokens * 2 * w.num_key_value_heads * w.attention.head_dim * e
    width = w.intermediate_size if isinstance(w, DenseTransformer) else w.num_experts_per_tok * w.moe_intermediate_size
    activations = spec.batch * spec.isl * (4 * w.hidden_size + 3 * width) * e
    return weights + kv + activations


@dataclass(frozen=True)
class ModelRunResult:
    spec: ModelRunSpec
    prefill_s: tuple[float, ...]  # one per repetition
    decode_steps_s: tuple[float, ...]  # per decode step (context isl + j), median over the runs

    @property
    def measured_ttft_s(self) -> float:
        return statistics.median(self.prefill_s)

    @property
    def measured_tpot_s(self) -> float:
        return statistics.fmean(self.decode_steps_s)


class TorchDecoder:
    """The decoder's weights and KV cache on one device; `step` runs tokens at a cache position.

    `current` names the IR operator (attn_norm, qkv_proj, rope, ...) whose kernels are being
    launched, so a dispatch counter (calibration.host) can count the kernels per operator and a
    tracer time the host per operator; a property store (well under a microsecond) otherwise.
    An MoE workload runs the routed experts as
    router, softmax/top-k, sort by expert, permute, two grouped GEMMs (`torch._grouped_mm` when the
    build has it) and an index_add combine."""

    def __init__(self, torch: Any, spec: ModelRunSpec, device: str, dtype: Any) -> None:
        self.torch, self.spec, self.device, self.dtype = torch, spec, device, dtype
        w = spec.workload
        self.hq, self.hkv, self.dh = w.num_attention_heads, w.num_key_value_heads, w.attention.head_dim
        self.moe = isinstance(w, MoETransformer)
        self.trace: Callable[[str], None] | None = None  # called with each operator name (calibration.host)
        self._current = ""
        d = w.hidden_size
        torch.manual_seed(0)
        self.embedding = self._param(w.vocab_size, d)
        self.lm_head = self.embedding if w.tie_word_embeddings else self._param(w.vocab_size, d)
        self.final_norm = torch.ones(d, device=device, dtype=dtype)
        qkv = (self.hq + 2 * self.hkv) * self.dh
        self.layers = []
        for _ in range(w.num_hidden_layers):
            layer = {
                "attn_norm": torch.ones(d, device=device, dtype=dtype),
                "mlp_norm": torch.ones(d, device=device, dtype=dtype),
                "wqkv": self._param(qkv, d),
                "bqkv": self._param(qkv) if w.attention_bias else None,
                "wo": self._param(d, self.hq * self.dh),
            }
            layer |= self._moe_weights(w) if isinstance(w, MoETransformer) else self._mlp_weights(w)
            self.layers.append(layer)
        self.grouped_mm = self.moe and self._grouped_mm_works()
        length = spec.isl + spec.osl
        shape = (spec.batch, self.hkv, length, self.dh)
        self.k_cache = [torch.zeros(shape, device=device, dtype=dtype) for _ in self.layers]
        self.v_cache = [torch.zeros(shape, device=device, dtype=dtype) for _ in self.layers]
        inv = 1.0 / (ROPE_THETA ** (torch.arange(0, self.dh, 2, device=device, dtype=torch.float32) / self.dh))
        angles = torch.outer(torch.arange(length, device=device, dtype=torch.float32), inv)
        angles = torch.cat((angles, angles), dim=-1)
        self.cos, self.sin = angles.cos().to(dtype), angles.sin().to(dtype)
        self.positions = torch.arange(length, device=device)

    @property
    def current(self) -> str:
        """The IR operator whose framework calls are being made."""
        return self._current

    @current.setter
    def current(self, name: str) -> None:
        self._current = name
        if self.trace is not None:
            self.trace(name)

    def _mlp_weights(self, w: DenseTransformer) -> dict[str, Any]:
        d, f = w.hidden_size, w.intermediate_size
        return {
            "wup": self._param(2 * f if w.gated else f, d),
            "bup": self._param(2 * f if w.gated else f) if w.mlp_bias else None,
            "wdown": self._param(d, f),
            "bdown": self._param(d) if w.mlp_bias else None,
        }

    def _moe_weights(self, w: MoETransformer) -> dict[str, Any]:
        d, f, e = w.hidden_size, w.moe_intermediate_size, w.num_experts
        up = 2 * f if w.mlp == "gated" else f
        return {"router": self._param(e, d), "experts_up": self._param(e, d, up), "experts_down": self._param(e, f, d)}

    def _grouped_mm_works(self) -> bool:
        """torch._grouped_mm on this build, device and format (else a loop over the experts)."""
        t = self.torch
        if not hasattr(t, "_grouped_mm"):
            return False
        try:
            layer = self.layers[0]
            x = t.zeros(2, layer["experts_up"].shape[1], device=self.device, dtype=self.dtype)
            offs = t.full((layer["experts_up"].shape[0],), 2, device=self.device, dtype=t.int32)
            t._grouped_mm(x, layer["experts_up"], offs=offs)
        except (RuntimeError, TypeError, NotImplementedError):
            return False
        return True

    def _param(self, *shape: int) -> Any:
        return self.torch.randn(*shape, device=self.device, dtype=self.dtype) * 0.02

    def _rope(self, x: Any, cos: Any, sin: Any) -> Any:
        half = self.dh // 2
        rotated = self.torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def step(self, tokens: Any, start: int) -> Any:
        """Tokens [batch, T] at cache positions start..start+T-1; returns the next token per sequence."""
        logits = self.logits(tokens, start)
        self.current = "sampling"
        return self.torch.argmax(logits, dim=-1)

    def static_step(self, tokens: Any, position: Any) -> Any:
        """One decode step with static shapes (capturable in a CUDA graph): tokens [batch, 1], the
        cache position a 1-element tensor; attention reads the whole cache under a mask."""
        logits = self.logits(tokens, position)
        self.current = "sampling"
        return self.torch.argmax(logits, dim=-1)

    def logits(self, tokens: Any, start: Any) -> Any:
        """Logits of the last position of each sequence (the KV cache takes the new tokens).
        `start`: an int (eager) or a 1-element position tensor (static_step: one new token)."""
        F, w = self.torch.nn.functional, self.spec.workload
        batch, count = tokens.shape
        d = w.hidden_size
        self.current = "embedding"
        h = F.embedding(tokens, self.embedding)
        for i, layer in enumerate(self.layers):
            h = self._attention(h, i, layer, start, batch, count)
            self.current = "mlp_norm"
            x = F.rms_norm(h, (d,), layer["mlp_norm"], NORM_EPS)
            h = h + (self._moe(x, layer) if self.moe else self._mlp(x, layer))
        self.current = "final_norm"
        last = F.rms_norm(h[:, -1], (d,), self.final_norm, NORM_EPS)
        self.current = "lm_head"
        return F.linear(last, self.lm_head)

    def _attention(self, h: Any, i: int, layer: dict[str, Any], start: Any, batch: int, count: int) -> Any:
        F, w = self.torch.nn.functional, self.spec.workload
        self.current = "attn_norm"
        x = F.rms_norm(h, (w.hidden_size,), layer["attn_norm"], NORM_EPS)
        self.current = "qkv_proj"
        q, k, v = F.linear(x, layer["wqkv"], layer["bqkv"]).split(
            [self.hq * self.dh, self.hkv * self.dh, self.hkv * self.dh], dim=-1
        )
        q = q.view(batch, count, self.hq, self.dh).transpose(1, 2)
        k = k.view(batch, count, self.hkv, self.dh).transpose(1, 2)
        v = v.view(batch, count, self.hkv, self.dh).transpose(1, 2)
        if w.qk_norm:
            self.current = "qk_norm"
            q, k = F.rms_norm(q, (self.dh,), eps=NORM_EPS), F.rms_norm(k, (self.dh,), eps=NORM_EPS)
        self.current = "rope"
        static = not isinstance(start, int)
        if static:
            cos, sin = self.cos.index_select(0, start), self.sin.index_select(0, start)
        else:
            cos, sin = self.cos[start : start + count], self.sin[start : start + count]
        q, k = self._rope(q, cos, sin), self._rope(k, cos, sin)
        self.current = "attention"
        if static:  # the whole cache, positions past `start` masked out
            self.k_cache[i].index_copy_(2, start, k)
            self.v_cache[i].index_copy_(2, start, v)
            mask = (self.positions <= start).view(1, 1, 1, -1)
            o = F.scaled_dot_product_attention(q, self.k_cache[i], self.v_cache[i], attn_mask=mask,
                                               enable_gqa=self.hq != self.hkv)  # fmt: skip
        else:
            end = start + count
            self.k_cache[i][:, :, start:end] = k
            self.v_cache[i][:, :, start:end] = v
            o = F.scaled_dot_product_attention(
                q, self.k_cache[i][:, :, :end], self.v_cache[i][:, :, :end], is_causal=count > 1 and start == 0,
                enable_gqa=self.hq != self.hkv,
            )  # fmt: skip
        self.current = "o_proj"
        return h + F.linear(o.transpose(1, 2).reshape(batch, count, self.hq * self.dh), layer["wo"])

    def _mlp(self, x: Any, layer: dict[str, Any]) -> Any:
        F, w = self.torch.nn.functional, self.spec.workload
        assert isinstance(w, DenseTransformer)
        self.current = "gate_up_proj"
        up = F.linear(x, layer["wup"], layer["bup"])
        self.current = "activation"
        if w.gated:
            gate, up = up.chunk(2, dim=-1)
            up = F.silu(gate) * up
        else:
            up = F.gelu(up) if "gelu" in w.hidden_act else F.silu(up)
        self.current = "down_proj"
        return F.linear(up, layer["wdown"], layer["bdown"])

    def _moe(self, x: Any, layer: dict[str, Any]) -> Any:
        t, F, w = self.torch, self.torch.nn.functional, self.spec.workload
        assert isinstance(w, MoETransformer)
        shape, k = x.shape, w.num_experts_per_tok
        x = x.reshape(-1, shape[-1])
        self.current = "router"
        logits = F.linear(x, layer["router"])
        self.current = "router_topk"
        weights, experts = t.topk(t.softmax(logits.float(), dim=-1), k, dim=-1)
        weights = (weights / weights.sum(dim=-1, keepdim=True)).to(x.dtype)
        self.current = "moe_sort"
        order = t.argsort(experts.flatten(), stable=True)
        counts = t.bincount(experts.flatten(), minlength=w.num_experts)
        self.current = "moe_permute"
        source = order // k
        xs = x.index_select(0, source)
        self.current = "expert_up"
        h = self._experts(xs, layer["experts_up"], counts)
        self.current = "expert_activation"
        if w.mlp == "gated":
            gate, up = h.chunk(2, dim=-1)
            h = F.silu(gate) * up
        else:
            h = F.silu(h)
        self.current = "expert_down"
        y = self._experts(h, layer["experts_down"], counts)
        self.current = "expert_combine"
        y = y * weights.flatten().index_select(0, order).unsqueeze(-1)
        return t.zeros_like(x).index_add_(0, source, y).reshape(shape)

    def _experts(self, xs: Any, weights: Any, counts: Any) -> Any:
        """Tokens sorted by expert times each expert's weights: one grouped GEMM, or a loop."""
        t = self.torch
        if self.grouped_mm:
            return t._grouped_mm(xs, weights, offs=t.cumsum(counts, 0).to(t.int32))
        out, first = [], 0
        for e, n in enumerate(counts.tolist()):
            if n:
                out.append(xs[first : first + n] @ weights[e])
            first += n
        return t.cat(out) if out else xs.new_zeros((0, weights.shape[-1]))


def run_model(
    torch: Any, spec: ModelRunSpec, device: str, dtype: Any, repetitions: int, clock: Clock,
    model: TorchDecoder | None = None,
) -> ModelRunResult:  # fmt: skip
    """Prefill timed `repetitions` times (after one warm-up); then `repetitions` generations of
    osl - 1 decode steps, each step timed on its own (the host clock around a device sync, so
    the host's launch time is in it as it is in a real eager run)."""
    model = model or TorchDecoder(torch, spec, device, dtype)
    prompt = torch.randint(0, spec.workload.vocab_size, (spec.batch, spec.isl), device=device)

    def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
        clock.sync()
        start = clock.now()
        out = fn()
        clock.sync()
        return clock.now() - start, out

    with torch.inference_mode():
        model.step(prompt, 0)  # warm-up
        prefill = tuple(timed(lambda: model.step(prompt, 0))[0] for _ in range(repetitions))
        runs: list[list[float]] = []
        for _ in range(repetitions):
            token = model.step(prompt, 0)
            steps = []
            for j in range(1, spec.osl):
                position = spec.isl + j - 1
                elapsed, token = timed(partial(model.step, token[:, None], position))
                steps.append(elapsed)
            runs.append(steps)
    per_step = tuple(statistics.median(column) for column in zip(*runs, strict=True))
    return ModelRunResult(spec, prefill, per_step)
