"""The built-in int8 recipe: NNCF post-training quantisation of the OpenVINO model.

What it keeps in fp32 and why (issue 13's measurements on EfficientNet-Lite0 / MobileNetV2): the
stem convolution (it reads raw pixels, whose range the first layer's int8 grid cuts hardest) and
the classifier's MatMul (the logits the ImageNet head and ConSE read). The overflow fix (weights
on 7 bits, so that AVX2's 16-bit pairwise int8 sums cannot saturate) is off on CPUs with VNNI/AMX,
whose int8 dot products accumulate in 32 bits, and on elsewhere: measured here (AMD EPYC, AVX2
only, EfficientNet-Lite0, 200 held-out crops) without it the mean embedding cosine to fp32 was
0.915 (min 0.741), with it 0.961 (min 0.837). Calibrated on ``N_CALIBRATION`` crops of scikit-image photos that the
gate's held-out crops never come from. The result is written as OpenVINO IR beside the model's
ONNX export and used only when :mod:`.quality_gate` accepts it.
"""
from __future__ import annotations

import os
from pathlib import Path

from .cpu import VNNI_FLAGS, cpu_flags

N_CALIBRATION = 300


def overflow_fix() -> str:
    """``DISABLE`` where int8 dot products accumulate in 32 bits (VNNI, AMX), else ``ENABLE``."""
    return "DISABLE" if any(f in cpu_flags() for f in VNNI_FLAGS) else "ENABLE"


# Accuracy-aware quantisation (where the plain recipe fails the gate): NNCF reverts the layers that
# cost the most embedding cosine to fp32 until the metric on validation crops (other crops of the
# calibration photos, never the gate's held-out photos) is at most MAX_DROP below fp32's 1.0. The
# metric is the mean cosine of the worst TAIL of the crops: the gate's minimum cosine is what the
# plain model fails by most. Measured (Xeon with AMX-INT8, EfficientNet-Lite0, 200 held-out crops;
# plain: mean 0.9823, min 0.8937): all crops' mean cosine as the metric, drop 0.004: 3 of 58
# layers reverted, mean 0.9893, min 0.8917; worst 10%, drop 0.03: 1 layer, 0.9860 / 0.8950; worst
# 10%, drop 0.01 (this recipe): 3 layers, 0.9891 / 0.8937; each refused by the gate (12 minutes
# each on 2 loaded cores). The held-out minimum comes from photos unlike any calibration crop.
MAX_DROP = 0.01
TAIL = 0.1
N_VALIDATION = 100
VARIANTS = ("plain", "accuracy-aware")


def recipe(variant: str = "plain") -> str:
    base = f"nncf-ptq:stem+classifier-fp32:overflow-fix-{overflow_fix().lower()}:{N_CALIBRATION}-photo-crops"
    return base if variant == "plain" else f"{base}:accuracy-aware-worst-{TAIL}-max-drop-{MAX_DROP}-{N_VALIDATION}-crops"


def kept_in_fp32(ov_model) -> list[str]:
    """Names of the stem convolution and every MatMul (the classifier) of ``ov_model``."""
    ops = ov_model.get_ordered_ops()
    convs = [o.get_friendly_name() for o in ops if o.get_type_name() == "Convolution"]
    mats = [o.get_friendly_name() for o in ops if o.get_type_name() == "MatMul"]
    return convs[:1] + mats


def quantize(fp32_onnx: Path, out_xml: Path, config, n_calibration: int = N_CALIBRATION,
             variant: str = "plain") -> Path:
    """Write the int8 OpenVINO model of ``fp32_onnx`` to ``out_xml`` (atomically); returns its path.
    ``variant``: ``plain`` (post-training quantisation) or ``accuracy-aware`` (layers reverted to
    fp32 until the embedding cosine to fp32 drops by at most ``MAX_DROP``)."""
    import nncf
    import openvino as ov

    from .onnx_cache import CALIBRATION_PHOTOS, reference_images

    if variant not in VARIANTS:
        raise ValueError(f"int8 variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    model = ov.Core().read_model(str(fp32_onnx))
    calib = reference_images(CALIBRATION_PHOTOS, n_calibration, config, seed=0)
    data = nncf.Dataset([calib[i : i + 1] for i in range(len(calib))])
    params = nncf.AdvancedQuantizationParameters(overflow_fix=getattr(nncf.OverflowFix, overflow_fix()))
    scope = nncf.IgnoredScope(names=kept_in_fp32(model), validate=False)
    if variant == "plain":
        quantized = nncf.quantize(model, data, subset_size=len(calib), ignored_scope=scope,
                                  advanced_parameters=params)
    else:
        quantized = _accuracy_aware(model, data, len(calib), config, scope, params)
    out_xml = Path(out_xml)
    tmp = out_xml.with_name(f".{out_xml.stem}.{os.getpid()}.xml")
    ov.save_model(quantized, str(tmp), compress_to_fp16=False)
    os.replace(tmp.with_suffix(".bin"), out_xml.with_suffix(".bin"))
    os.replace(tmp, out_xml)
    return out_xml


def _accuracy_aware(model, data, subset_size: int, config, scope, params):
    """NNCF's accuracy-aware quantisation with the embedding cosine to fp32 as its metric."""
    import nncf
    import numpy as np
    import openvino as ov

    from .onnx_cache import CALIBRATION_PHOTOS, reference_images
    from .quality_gate import cosines

    val = reference_images(CALIBRATION_PHOTOS, N_VALIDATION, config, seed=7)
    fp32 = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    index = [o.get_any_name() for o in fp32.outputs].index("embedding")
    ref = np.concatenate([fp32(val[i : i + 1])[fp32.outputs[index]] for i in range(len(val))])

    def validate(compiled, items) -> tuple[float, list[float]]:
        out = compiled.outputs[[o.get_any_name() for o in compiled.outputs].index("embedding")]
        got = np.concatenate([compiled(x)[out] for x, _ in items])
        idx = [i for _, i in items]
        cos = cosines(ref[idx], got)
        worst = np.sort(cos)[: max(1, int(round(TAIL * len(cos))))]
        return float(worst.mean()), [float(c) for c in cos]

    validation = nncf.Dataset([(val[i : i + 1], i) for i in range(len(val))], lambda item: item[0])
    return nncf.quantize_with_accuracy_control(
        model, data, validation, validate, max_drop=MAX_DROP, drop_type=nncf.DropType.ABSOLUTE,
        subset_size=subset_size, ignored_scope=scope, advanced_quantization_parameters=params)
