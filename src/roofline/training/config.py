"""A training layout: the parallel degrees, batches, precision, recompute, optimizer and task of one run,
checked as Megatron-LM checks them. Degrees follow Megatron: one model replica is tp x pp x cp
GPUs, dp = gpus / (tp x pp x cp); expert parallelism lives inside dp x tp x cp (the experts of a
stage are spread over ep x etp GPUs); micro-batches per DP rank m = global / (micro x dp).

Tasks: pretrain and sft (full training; SFT on packed sequences computes as pre-training), lora
(frozen bf16 base, adapters negligible), qlora (frozen 4-bit base dequantized at each use), dpo
(the policy trained on chosen and rejected sequences, `global_batch` counting sequences, plus a
frozen reference model's forward on each)."""

from __future__ import annotations

from dataclasses import dataclass

from roofline.errors import RooflineError
from roofline.training.constants import constants

RECOMPUTE = ("none", "selective", "full")
# Megatron --recompute-modules (fine-grained, output-discarding): the modules modelled here.
RECOMPUTE_MODULES = ("mla_up_proj",)
# Pipeline schedules: 1F1B (interleaved with --vpp above 1), zero-bubble ZB1P (Qi et al. 2023) and
# DualPipe (DeepSeek-V3 technical report, section 3.2.1 and table 2).
SCHEDULES = ("1f1b", "zb1p", "dualpipe")
TASKS = ("pretrain", "sft", "lora", "qlora", "dpo")


@dataclass(frozen=True)
class TrainConfig:
    gpus: int
    seq_len: int
    global_batch: int
    micro_batch: int = 1
    tp: int = 1
    pp: int = 1
    vpp: int = 1
    cp: int = 1
    ep: int = 1
    etp: int = 1
    dp: int | None = None  # derived from the GPU count when None
    sequence_parallel: bool | None = None  # None: on whenever tp > 1 (Megatron-Bridge recipes)
    zero: int = 1  # 0: replicated optimizer; 1: distributed optimizer (Megatron default); 2: + grads; 3: + params
    precision: str = "bf16"
    recompute: str = "none"
    optimizer: str = "adamw"
    task: str = "pretrain"
    overlap_grad_reduce: bool = True
    overlap_param_gather: bool = True
    flop_convention: str = "megatron"
    schedule: str = "1f1b"
    tp_comm_overlap: bool = False  # TE userbuffers: SP all-gathers / reduce-scatters under the GEMMs
    ep_overlap: bool = False  # Megatron moe_a2a_overlap: one micro-batch's all-to-alls under another's compute
    grad_reduce_in_fp32: bool = True  # fp32 gradient buffer, reduced in fp32 (Megatron-LM with --bf16)
    mtp_layers: int = 0  # multi-token-prediction passes trained (Megatron --mtp-num-layers)
    balanced_stages: bool = False  # a pipeline layout that evens the stages' work (Megatron pp layout)
    recompute_modules: tuple[str, ...] = ()  # fine-grained recompute (RECOMPUTE_MODULES)
    moe_fused_mlp: bool = False  # Megatron cutedsl_fused_grouped_mlp: sync-free fused expert MLP kernels

    def __post_init__(self) -> None:
        for name in ("gpus", "seq_len", "global_batch", "micro_batch", "tp", "pp", "vpp", "cp", "ep", "etp"):
            value = getattr(self, name)
            if value < 1:
                raise RooflineError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        self._check_choices()
        for module in self.recompute_modules:
            if module not in RECOMPUTE_MODULES:
                raise RooflineError(f"unknown --recompute-modules '{module}'; known: {', '.join(RECOMPUTE_MODULES)}")
        if self.mtp_layers < 0:
            raise RooflineError(f"--mtp-layers must be at least 0, got {self.mtp_layers}")
        replica = self.tp * self.pp * self.cp
        if self.gpus % replica:
            raise RooflineError(f"--gpus {self.gpus} is not a multiple of tp x pp x cp = {replica}")
        if self.dp is not None and self.dp * replica != self.gpus:
            raise RooflineError(f"--dp {self.dp} x tp x pp x cp ({replica}) must equal --gpus {self.gpus}")
        group = self.data_parallel * self.tp * self.cp
        if group % (self.ep * self.etp):
            raise RooflineError(f"--ep {self.ep} x --etp {self.etp} must divide dp x tp x cp = {group} "
                                "(experts live inside the DP x TP x CP GPUs)")  # fmt: skip
        if self.global_batch % (self.micro_batch * self.data_parallel):
            raise RooflineError(f"--global-batch {self.global_batch} must be a multiple of micro-batch x dp = "
                                f"{self.micro_batch * self.data_parallel}")  # fmt: skip
        if self.vpp > 1 and self.pp == 1:
            raise RooflineError("--vpp needs --pp above 1 (virtual stages interleave a pipeline)")
        if self.schedule != "1f1b" and self.vpp > 1:
            raise RooflineError(f"--schedule {self.schedule} has its own chunks; drop --vpp")
        if self.schedule == "dualpipe" and self.pp > 1 and (self.pp % 2 or self.micro_batches < self.pp):
            raise RooflineError(f"--schedule dualpipe needs an even --pp and at least pp micro-batches per DP rank "
                                f"(pp {self.pp}, {self.micro_batches} micro-batches)")  # fmt: skip
        if self.task == "qlora" and self.precision != "bf16":
            raise RooflineError("--task qlora runs bf16 GEMMs on the dequantized 4-bit base; use --precision bf16")
        if self.seq_len % self.cp:
            raise RooflineError(f"--seq-len {self.seq_len} must be divisible by --cp {self.cp}")

    def _check_choices(self) -> None:
        c = constants()
        choices = (("precision", self.precision, tuple(c.precisions)), ("recompute", self.recompute, RECOMPUTE),
                   ("optimizer", self.optimizer, tuple(c.optimizers)), ("task", self.task, TASKS),
                   ("flop-convention", self.flop_convention, tuple(c.flop_conventions)),
                   ("schedule", self.schedule, SCHEDULES))  # fmt: skip
        for name, value, known in choices:
            if value not in known:
                raise RooflineError(f"unknown --{name} '{value}'; known: {', '.join(known)}")
        if not 0 <= self.zero <= 3:
            raise RooflineError(f"--zero must be 0, 1, 2 or 3, got {self.zero}")

    @property
    def frozen_base(self) -> bool:
        """LoRA / QLoRA: the base weights get no gradients and no optimizer states."""
        return self.task in ("lora", "qlora")

    @property
    def data_parallel(self) -> int:
        return self.dp if self.dp is not None else self.gpus // (self.tp * self.pp * self.cp)

    @property
    def micro_batches(self) -> int:
        """Micro-batches each DP rank runs per step (gradient accumulation)."""
        return self.global_batch // (self.micro_batch * self.data_parallel)

    @property
    def sp(self) -> bool:
        return self.tp > 1 if self.sequence_parallel is None else self.sequence_parallel and self.tp > 1

    @property
    def expert_dp(self) -> int:
        """Data-parallel replicas of each expert: the GPUs of a stage over the expert group."""
        return self.data_parallel * self.tp * self.cp // (self.ep * self.etp)

    @property
    def grad_bytes(self) -> float:
        """Bytes per parameter of the gradient buffer the backward accumulates into and DP reduces."""
        c = constants()
        return c.grad_bytes if self.grad_reduce_in_fp32 else c.grad_bytes_bf16

    @property
    def tokens_per_step(self) -> int:
        return self.global_batch * self.seq_len
