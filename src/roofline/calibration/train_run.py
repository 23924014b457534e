"""The training-step model run: forward, backward and AdamW step of a reduced dense model in PyTorch,
timed, with the peak memory where the device reports it, and the estimate for the same step.

The model is `model_run`'s reduced decoder (the same random weights, widths and layers) trained on
whole sequences: causal attention over the sequence (no KV cache), the LM head on every position, a
cross-entropy loss, `loss.backward()` and one `torch.optim.AdamW` step. The parameters are fp32 (the
master weights; AdamW keeps two fp32 states); on a GPU the forward and backward run under
`torch.autocast` in bf16, PyTorch's mixed-precision training; on a host CPU everything is fp32.

The estimate comes from the training step model (`roofline.training`) when this build has it;
`predict_train_step_s` is the one place that calls it, and says None (the report prints "no
estimate") when the package is missing or does not model the run's format.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from roofline.calibration.model_run import ModelRunSpec, TorchDecoder, reduced_workload
from roofline.calibration.timing import Clock
from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.hardware_specs.schema import Accelerator
from roofline.workloads.base import Workload
from roofline.workloads.dense import DenseTransformer

NORM_EPS = 1e-5
LEARNING_RATE = 1e-4  # any value: the step's time does not depend on it
FP32_STATE_BYTES = 16.0  # per parameter: fp32 weight, fp32 gradient, AdamW exp_avg and exp_avg_sq


@dataclass(frozen=True)
class TrainRunSpec:
    workload: DenseTransformer  # the reduced model that trains (and that the estimator is given)
    batch: int  # sequences per step (one micro-batch, one device)
    seq_len: int
    dtype: DType  # the GEMMs' format: bf16 under autocast on a GPU, fp32 on a CPU
    base_id: str  # the catalog workload it was reduced from

    @property
    def tokens(self) -> int:
        return self.batch * self.seq_len

    def describe(self) -> str:
        w = self.workload
        mixed = "fp32 weights and AdamW states, bf16 autocast" if self.dtype is DType.BF16 else "fp32 throughout"
        return (
            f"{self.base_id} reduced to {w.num_hidden_layers} layers (hidden {w.hidden_size}, heads "
            f"{w.num_attention_heads}/{w.num_key_value_heads} x {w.attention.head_dim}, intermediate "
            f"{w.intermediate_size}, vocab {w.vocab_size}), training step (forward, backward, AdamW) of batch "
            f"{self.batch} x seq {self.seq_len}, {mixed}"
        )


def train_spec_for(workload: Workload, device_kind: str, full: bool) -> TrainRunSpec:
    """The training run: on a host CPU the dense model-level run's reduced model and its prefill's
    batch x length (widths / 4, 2 layers, vocab 8192, 2 x 128); on a GPU full widths, 2 layers (4 with
    --full), the vocabulary capped at 32768 and 4 x 2048 tokens, so the fp32 weights, gradients and
    AdamW states (16 bytes a parameter) and the activations stay under 30 GB."""
    if not isinstance(workload, DenseTransformer):
        raise RooflineError(f"the training-step run builds a dense transformer; '{workload.id}' is {workload.kind}")
    if device_kind == "cpu":
        divisor, vocab, layers = (2, 32768, 2) if full else (4, 8192, 2)
        batch, seq = (4, 256) if full else (2, 128)
        reduced = reduced_workload(workload, layers, divisor, vocab)
        return TrainRunSpec(_dense(reduced), batch, seq, DType.FP32, workload.id)
    layers, (batch, seq) = (4, (4, 2048)) if full else (2, (4, 2048))
    return TrainRunSpec(_dense(reduced_workload(workload, layers, 1, 32768)), batch, seq, DType.BF16, workload.id)


def _dense(workload: Workload) -> DenseTransformer:
    assert isinstance(workload, DenseTransformer)
    return workload


def train_bytes(spec: TrainRunSpec) -> float:
    """fp32 weights, gradients and AdamW states, plus the activations kept for the backward pass
    (per token and layer: about 16 hidden-widths and the MLP's intermediates, in the GEMMs' format)
    and the fp32 logits with their gradient: the memory cap's check before the run."""
    w = spec.workload
    states = w.parameter_counts().total * FP32_STATE_BYTES
    width = 16 * w.hidden_size + 3 * w.intermediate_size
    activations = spec.tokens * w.num_hidden_layers * width * spec.dtype.bytes_per_element
    logits = 2 * spec.tokens * w.vocab_size * 4.0
    return states + activations + logits


@dataclass(frozen=True)
class TrainRunResult:
    spec: TrainRunSpec
    step_s: tuple[float, ...]  # one per timed step
    peak_memory_bytes: float | None  # torch.cuda.max_memory_allocated over the timed steps; None on a CPU

    @property
    def measured_step_s(self) -> float:
        return statistics.median(self.step_s)


class TorchTrainer:
    """`model_run.TorchDecoder`'s weights as fp32 trainable parameters, a full-sequence forward with
    a cross-entropy loss, and an AdamW optimizer over every parameter."""

    def __init__(self, torch: Any, spec: TrainRunSpec, device: str) -> None:
        self.torch, self.spec, self.device = torch, spec, device
        self.decoder = TorchDecoder(torch, ModelRunSpec(spec.workload, spec.batch, spec.seq_len, 0, DType.FP32,
                                                        spec.base_id), device, torch.float32)  # fmt: skip
        self.decoder.k_cache, self.decoder.v_cache = [], []  # training attends over the sequence, no cache
        self.parameters = self._trainable()
        self.optimizer = torch.optim.AdamW(self.parameters, lr=LEARNING_RATE)
        self.autocast_dtype = torch.bfloat16 if spec.dtype is DType.BF16 else None

    def _trainable(self) -> list[Any]:
        d = self.decoder
        tensors = [d.embedding, d.final_norm] + ([] if d.lm_head is d.embedding else [d.lm_head])
        for layer in d.layers:
            tensors += [t for t in layer.values() if t is not None]
        return [t.requires_grad_(True) for t in tensors]

    def logits(self, tokens: Any) -> Any:
        """Logits of every position of tokens [batch, T] (causal: position i sees 0..i)."""
        F, d, w = self.torch.nn.functional, self.decoder, self.spec.workload
        h = F.embedding(tokens, d.embedding)
        for layer in d.layers:
            h = h + self._attention(F.rms_norm(h, (w.hidden_size,), layer["attn_norm"], NORM_EPS), layer)
            h = h + d._mlp(F.rms_norm(h, (w.hidden_size,), layer["mlp_norm"], NORM_EPS), layer)
        return F.linear(F.rms_norm(h, (w.hidden_size,), d.final_norm, NORM_EPS), d.lm_head)

    def loss(self, tokens: Any, targets: Any) -> Any:
        logits = self.logits(tokens)
        return self.torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten())

    def _attention(self, x: Any, layer: dict[str, Any]) -> Any:
        F, d = self.torch.nn.functional, self.decoder
        batch, count, _ = x.shape
        q, k, v = F.linear(x, layer["wqkv"], layer["bqkv"]).split([d.hq * d.dh, d.hkv * d.dh, d.hkv * d.dh], dim=-1)
        q, k, v = (t.view(batch, count, -1, d.dh).transpose(1, 2) for t in (q, k, v))
        cos, sin = d.cos[:count], d.sin[:count]
        q, k = d._rope(q, cos, sin), d._rope(k, cos, sin)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=d.hq != d.hkv)
        return F.linear(o.transpose(1, 2).reshape(batch, count, d.hq * d.dh), layer["wo"])

    def step(self, tokens: Any, targets: Any) -> float:
        """One training step; returns the loss."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.autocast_dtype is None:
            loss = self.loss(tokens, targets)
        else:
            with self.torch.autocast(device_type=self.device, dtype=self.autocast_dtype):
                loss = self.loss(tokens, targets)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


def run_train_step(torch: Any, spec: TrainRunSpec, device: str, repetitions: int, clock: Clock) -> TrainRunResult:
    """One warm-up step (AdamW allocates its states), then `repetitions` steps each timed on the host
    clock around a device sync; on CUDA the peak allocated memory over the timed steps."""
    trainer = TorchTrainer(torch, spec, device)
    tokens = torch.randint(0, spec.workload.vocab_size, (spec.batch, spec.seq_len + 1), device=device)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    trainer.step(inputs, targets)  # warm-up
    cuda = device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    def timed(fn: Callable[[], Any]) -> float:
        clock.sync()
        start = clock.now()
        fn()
        clock.sync()
        return clock.now() - start

    steps = tuple(timed(lambda: trainer.step(inputs, targets)) for _ in range(repetitions))
    peak = float(torch.cuda.max_memory_allocated()) if cuda else None
    return TrainRunResult(spec, steps, peak)


# ---- the estimate -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainEstimate:
    step_s: float | None  # None: no estimate (see note)
    memory_bytes: float | None = None  # the estimate's bytes on the device, without the runtime reserve
    note: str = ""


TRAINING_PRECISION = {DType.BF16: "bf16", DType.FP32: "fp32"}  # the run's format -> roofline.training's name


def estimate_train_step(spec: TrainRunSpec, accelerator: Accelerator) -> TrainEstimate:
    """The training step model's time (and memory) for this run on one device of `accelerator`:
    one GPU, no parallelism, one micro-batch of `batch` sequences, AdamW; no estimate when this
    build has no `roofline.training` or the model refuses the run (its message is the note)."""
    try:
        from roofline.training.config import TrainConfig
        from roofline.training.step import train_step
    except ImportError:
        return TrainEstimate(None, note="no estimate: this build has no training step model (roofline.training)")
    from roofline.calibration.runner import cluster_of

    try:
        config = TrainConfig(gpus=1, seq_len=spec.seq_len, global_batch=spec.batch, micro_batch=spec.batch,
                             precision=TRAINING_PRECISION.get(spec.dtype, spec.dtype.value), optimizer="adamw",
                             zero=0)  # fmt: skip
        step = train_step(spec.workload, cluster_of(accelerator), config)
    except RooflineError as exc:
        return TrainEstimate(None, note=f"no estimate: {exc}")
    memory = step.memory
    return TrainEstimate(step.step_time_s, memory.total_bytes - memory.reserve_bytes)


def predict_train_step_s(spec: TrainRunSpec, accelerator: Accelerator) -> float | None:
    """The estimated seconds of the run's training step on `accelerator`, or None (no estimate)."""
    return estimate_train_step(spec, accelerator).step_s
