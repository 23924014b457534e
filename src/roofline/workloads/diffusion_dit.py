"""Diffusion transformers for images and video (kind `dit`): FLUX.1 (MMDiT double-stream +
single-stream blocks), Stable Diffusion 3.5 (MMDiT joint blocks), Wan 2.1 (self-attention +
cross-attention to the text).

A DiT has no prefill or decode and no KV cache: one forward runs over every latent token of the
request, `steps` times (twice per step with classifier-free guidance). The LLM step methods of
`Workload` therefore refuse with a pointer to the diffusion options; the diffusion estimator
(simulator/diffusion.py) calls `forward_ops`, `encoder_ops` and `vae_decode_op` instead.

Attention is bidirectional over all tokens (4 N^2 d FLOPs per block, no causal halving) and is
assumed to be a flash kernel: no N^2 score matrix in memory.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from roofline.errors import RooflineError
from roofline.ir import Op, OpClass, OpKind, Placement, Precision, StepShape
from roofline.parallel.collectives import with_collectives
from roofline.workloads.base import ParameterCounts, Workload, register_kind
from roofline.workloads.diffusion_blocks import BlockBuilder

TIME_FREQ_DIM = 256  # sinusoidal timestep features fed to the time MLP (FLUX, SD3, Wan all use 256)


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TextEncoder(_Spec):
    """A text encoder run once per request, costed from its size: 2 x params FLOPs per token
    (its embedding table excluded), its weights read once."""

    name: str
    params: float = Field(gt=0, description="parameters of the encoder stack, embedding table excluded")
    embedding_params: float = Field(default=0.0, ge=0)
    tokens: int = Field(gt=0)
    source: str = Field(min_length=3)


class VaeDecoder(_Spec):
    """The VAE decoder run once per image or video, costed from per-pixel figures derived from its
    convolution stack (see the YAML for the derivation): rough, within a factor of ~2."""

    params: float = Field(gt=0)
    flops_per_pixel: float = Field(gt=0, description="FLOPs per output pixel (per frame for video)")
    bytes_per_pixel: float = Field(gt=0, description="activation bytes moved per output pixel")
    source: str = Field(min_length=3)


class Request(_Spec):
    """What one generation asks for: width x height (x frames for video), batch of outputs."""

    width: int = Field(gt=0)
    height: int = Field(gt=0)
    frames: int = Field(default=1, gt=0)
    batch: int = Field(default=1, gt=0)

    @property
    def pixels(self) -> int:
        return self.width * self.height * self.frames


@register_kind("dit")
class DiffusionTransformer(Workload):
    is_diffusion: ClassVar[bool] = True
    kind: Literal["dit"] = "dit"
    hidden_size: int = Field(gt=0)
    num_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    double_blocks: int = Field(default=0, ge=0, description="MMDiT joint blocks: separate image/text weights")
    single_blocks: int = Field(default=0, ge=0, description="FLUX single-stream blocks: one weight set, joint seq")
    cross_blocks: int = Field(default=0, ge=0, description="Wan blocks: self-attention + cross-attention to text")
    mlp_hidden: int = Field(gt=0)
    mlp_gated: bool = False
    last_context_pre_only: bool = Field(default=False, description="SD3: the last block's text stream has no MLP")
    block_modulation: bool = Field(default=True, description="adaLN linear per block (False: Wan's shared one)")
    shared_modulation: bool = Field(default=False, description="one d -> 6d time projection shared by all blocks")
    latent_channels: int = Field(gt=0)
    vae_stride: tuple[int, int, int] = (1, 8, 8)  # (t, h, w)
    patch_size: tuple[int, int, int] = (1, 2, 2)
    causal_time: bool = Field(default=False, description="causal video VAE: frames 4n+1 -> n+1 latents")
    text_tokens: int = Field(gt=0, description="text tokens the DiT attends to (joint or cross)")
    text_dim: int = Field(gt=0, description="width of the text encoder output")
    text_in_layers: int = Field(default=1, ge=1, le=2)
    pooled_dim: int = Field(default=0, ge=0, description="pooled text vector (CLIP) fed to the modulation")
    guidance_embed: bool = Field(default=False, description="guidance-distilled: guidance is an input")
    pos_embed_max_size: int = Field(default=0, ge=0, description="learned 2D position table side (SD3)")
    cfg_default: bool = Field(default=True, description="run classifier-free guidance by default")
    cfg_batched: bool = Field(default=True, description="cond and uncond in one batch (False: two forwards)")
    default_steps: int = Field(gt=0)
    default_resolution: tuple[int, int] = (1024, 1024)
    default_frames: int = Field(default=1, gt=0)
    frames_per_second: float | None = Field(default=None, gt=0, description="video frame rate (for --preset)")
    text_encoders: list[TextEncoder]
    vae: VaeDecoder

    @model_validator(mode="after")
    def _check(self) -> DiffusionTransformer:
        if self.num_heads * self.head_dim != self.hidden_size:
            raise ValueError("num_heads x head_dim must equal hidden_size")
        if self.double_blocks + self.single_blocks + self.cross_blocks == 0:
            raise ValueError("a DiT needs at least one block")
        return self

    # ---- structure -------------------------------------------------------------------------------

    @property
    def num_layers(self) -> int:
        return self.double_blocks + self.single_blocks + self.cross_blocks

    @property
    def is_video(self) -> bool:
        return self.default_frames > 1

    @property
    def patch_dim(self) -> int:
        pt, ph, pw = self.patch_size
        return self.latent_channels * pt * ph * pw

    def latent_shape(self, request: Request) -> tuple[int, int, int]:
        """(frames, height, width) of the latent: the VAE strides, 4n+1 frames -> n+1 for a causal VAE."""
        st, sh, sw = self.vae_stride
        if request.width % (sw * self.patch_size[2]) or request.height % (sh * self.patch_size[1]):
            step = sw * self.patch_size[2]
            raise RooflineError(f"{self.id}: width and height must be multiples of {step}, got "
                                f"{request.width}x{request.height}")  # fmt: skip
        if self.causal_time:
            if (request.frames - 1) % st:
                raise RooflineError(f"{self.id}: frames must be {st}n+1 (e.g. 81), got {request.frames}")
            frames = (request.frames - 1) // st + 1
        else:
            frames = request.frames
        return frames, request.height // sh, request.width // sw

    def image_tokens(self, request: Request) -> int:
        """Latent patches of one output: (frames / pt) x (h / ph) x (w / pw)."""
        f, h, w = self.latent_shape(request)
        pt, ph, pw = self.patch_size
        return math.ceil(f / pt) * (h // ph) * (w // pw)

    # ---- parameters ------------------------------------------------------------------------------

    def _mlp_params(self) -> float:
        return float((3 if self.mlp_gated else 2) * self.hidden_size * self.mlp_hidden)

    def block_params(self) -> dict[str, float]:
        """Parameters of each block kind (weight matrices; biases and norm scales left out, < 0.1%)."""
        d = self.hidden_size
        mod = 6.0 * d * d if self.block_modulation else 0.0
        stream = mod + 4.0 * d * d + self._mlp_params()  # adaLN, qkv + out, MLP
        single = (
            (3.0 * d * d if self.block_modulation else 0.0) + d * (3 * d + self.mlp_hidden) + (d + self.mlp_hidden) * d
        )
        cross = mod + 8.0 * d * d + self._mlp_params()  # self-attention, cross-attention, MLP
        return {"double": 2 * stream, "single": single, "cross": cross}

    def parameter_counts(self) -> ParameterCounts:
        d, blocks = self.hidden_size, self.block_params()
        parts = {
            "double_blocks": blocks["double"] * self.double_blocks,
            "single_blocks": blocks["single"] * self.single_blocks,
            "cross_blocks": blocks["cross"] * self.cross_blocks,
        }
        if self.last_context_pre_only and self.double_blocks:  # text stream of the last block: 2d adaLN + qkv
            parts["double_blocks"] -= 6.0 * d * d + 4.0 * d * d + self._mlp_params() - (2.0 * d * d + 3.0 * d * d)
        time_mlp = TIME_FREQ_DIM * d + d * d
        parts["embedders"] = (
            self.patch_dim * d
            + self.text_dim * d
            + (d * d if self.text_in_layers == 2 else 0)
            + time_mlp * (2 if self.guidance_embed else 1)
            + (self.pooled_dim * d + d * d if self.pooled_dim else 0)
            + (6.0 * d * d if self.shared_modulation else 0.0)
            + self.pos_embed_max_size**2 * d
        )
        parts["final_layer"] = (0.0 if self.shared_modulation else 2.0 * d * d) + d * self.patch_dim
        total = sum(parts.values())
        return ParameterCounts(total=total, active=total, by_component=parts)

    def weight_bytes(self, precision: Precision, placement: Placement) -> float:
        """The DiT's weights on one GPU (replicated under sequence parallelism)."""
        return self.parameter_counts().total * precision.weight.bytes_per_element

    def encoder_weight_bytes(self, precision: Precision) -> float:
        """Text encoders and VAE, kept on the GPU in the activation format (no offload)."""
        params = sum(e.params + e.embedding_params for e in self.text_encoders) + self.vae.params
        return params * precision.activation.bytes_per_element

    # ---- the LLM step interface does not apply ---------------------------------------------------

    def _refuse(self) -> RooflineError:
        return RooflineError(f"{self.id} is a diffusion transformer: use estimate with --resolution or --video")

    def check_parallel(self, tp: int, pp: int) -> None:
        if tp > 1 or pp > 1:
            raise RooflineError(f"{self.id}: use --sp (sequence parallelism) for a DiT, not --tp/--pp")

    def kv_cache_bytes(self, tokens: int, precision: Precision, placement: Placement) -> float:
        return 0.0  # no KV cache: every step recomputes every token

    def activation_bytes(self, step: StepShape, precision: Precision, placement: Placement) -> float:
        raise self._refuse()

    def build_ops(self, step: StepShape, precision: Precision, placement: Placement) -> list[Op]:
        raise self._refuse()

    def stage_boundary_bytes(self, step: StepShape, precision: Precision) -> float:
        raise self._refuse()

    # ---- diffusion operators ---------------------------------------------------------------------

    def check_sp(self, sp: int, ring: int = 1) -> None:
        """`sp` GPUs split the sequence: Ulysses over sp / ring of them (it splits the heads), ring
        attention over `ring` (any count)."""
        if sp < 1 or ring < 1 or sp % ring:
            raise RooflineError(f"--ring {ring} must divide --sp {sp} (both at least 1)")
        ulysses = sp // ring
        if self.num_heads % ulysses:
            raise RooflineError(f"the Ulysses degree sp / ring = {ulysses} must divide {self.id}'s {self.num_heads} "
                                f"attention heads; put the rest in a ring (--ring)")  # fmt: skip

    def forward_ops(self, image_tokens: int, batch: int, precision: Precision, placement: Placement | None = None
                    ) -> list[Op]:  # fmt: skip
        """One forward over `batch` sequences on one GPU of `placement` (default: one GPU): every linear
        on its share of the tokens (1/sp); attention as Ulysses (sp / ring) x ring; the collectives of
        its groups inserted by the parallel package (diffusion_blocks)."""
        placement = placement or Placement()
        self.check_sp(placement.sequence_split, placement.ring)
        b = BlockBuilder(self, image_tokens, batch, precision, placement)
        ops = b.embed_ops()
        if self.double_blocks:
            ops += b.double_ops(self.double_blocks)
        if self.single_blocks:
            ops += b.single_ops(self.single_blocks)
        if self.cross_blocks:
            ops += b.cross_ops(self.cross_blocks)
        return with_collectives(ops + b.final_ops(), placement)

    def encoder_ops(self, batch: int, precision: Precision) -> list[Op]:
        """Text encoders once per request, each one op costed from its size (2 x params per token)."""
        ops = []
        for enc in self.text_encoders:
            m = batch * enc.tokens
            w = precision.activation.bytes_per_element
            ops.append(Op(
                name=f"text_encoder[{enc.name}]", kind=OpKind.MATMUL, op_class=OpClass.EMBEDDING,
                dtype=precision.activation, flops=2.0 * enc.params * m, weight_bytes=enc.params * w,
                activation_bytes=m * self.text_dim * w * 2, kernels=1,
            ))  # fmt: skip
        return ops

    def vae_decode_op(self, request: Request, precision: Precision) -> Op:
        """The VAE decoder once per output, costed from its per-pixel FLOPs and bytes."""
        pixels = request.pixels * request.batch
        a = precision.activation.bytes_per_element
        return Op(
            name="vae_decode", kind=OpKind.MATMUL, op_class=OpClass.EMBEDDING, dtype=precision.activation,
            flops=self.vae.flops_per_pixel * pixels, weight_bytes=self.vae.params * a,
            activation_bytes=self.vae.bytes_per_pixel * pixels,
        )  # fmt: skip

    def activation_peak_bytes(self, image_tokens: int, batch: int, precision: Precision, sp: int = 1) -> float:
        """Residual streams + normed input + the widest intermediate of a block, on 1/sp of the tokens
        (flash attention: no N^2 score matrix)."""
        tokens = -(-(batch * (image_tokens + (0 if self.cross_blocks else self.text_tokens))) // sp)
        d = self.hidden_size
        widest = max(3 * d, (3 if self.mlp_gated else 2) * self.mlp_hidden)
        if self.single_blocks:
            widest = max(widest, 3 * d + self.mlp_hidden)
        return tokens * (3 * d + widest) * precision.activation.bytes_per_element

    def attention_bytes(self, image_tokens: int, batch: int, precision: Precision, sp: int = 1, ring: int = 1
                        ) -> tuple[float, float]:  # fmt: skip
        """One GPU's attention at the token count: (the flash kernel's working set: q, k, v and the
        output for its heads and query shard, plus the K/V block in flight on a ring; the score matrix
        of one layer had it been materialized, which flash attention never does)."""
        joint = image_tokens + (0 if self.cross_blocks else self.text_tokens)
        ulysses = sp // ring
        heads = self.num_heads // ulysses
        shard = -(-joint // sp) * ulysses  # query tokens this GPU holds after the all-to-all
        a = precision.activation.bytes_per_element
        tensors = 4 + (2 if ring > 1 else 0)
        working = batch * tensors * shard * heads * self.head_dim * a
        scores = batch * heads * shard * float(joint) * a
        return working, scores
