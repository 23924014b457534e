"""Refit the FA3 / cuDNN-class Hopper context curve (kernels.yaml family hopper-fa3) on the
FlashAttention-3 paper's figure: print the numbers and each point's predicted vs. published TFLOP/s."""

from __future__ import annotations

import math

from roofline.hardware_specs import resolve_cluster
from roofline.simulator.attention_efficiency import load_curves
from roofline.simulator.cost import RooflineCostModel
from roofline.validation.attention_fit_fa3 import HARDWARE, KERNEL, fit, predicted_tflops, read_points, with_curve


def main() -> None:
    fitted = fit()
    print(f"fraction: {fitted.fraction}\ntile_overhead: {fitted.tile_overhead}\nscore_dims: {fitted.score_dims}\n"
          f"RMS log error (fit rows): {fitted.rms_log_error:.3f}")  # fmt: skip
    curves = with_curve(load_curves(), fitted.fraction, fitted.tile_overhead, fitted.score_dims, fitted.fitted_on,
                        "fit")  # fmt: skip
    model = RooflineCostModel(resolve_cluster(HARDWARE, num_gpus=1), attention_curves=curves, runtime_attention=KERNEL)
    for p in read_points():
        tflops = predicted_tflops(p, model)
        print(f"{p.point:18} fit={int(p.fit)} published {p.tflops:6.0f} predicted {tflops:6.0f} "
              f"log err {math.log(tflops / p.tflops):+.3f}")  # fmt: skip
    print("fitted_on: [" + ", ".join(fitted.fitted_on) + "]")


if __name__ == "__main__":
    main()
