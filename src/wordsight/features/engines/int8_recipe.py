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

N_CALIBRATION = 300
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def overflow_fix() -> str:
    """``DISABLE`` where int8 dot products accumulate in 32 bits (VNNI, AMX), else ``ENABLE``."""
    from .cpu import cpu_flags

    return "DISABLE" if any(f in cpu_flags() for f in VNNI_FLAGS) else "ENABLE"


def recipe() -> str:
    return f"nncf-ptq:stem+classifier-fp32:overflow-fix-{overflow_fix().lower()}:{N_CALIBRATION}-photo-crops"


def kept_in_fp32(ov_model) -> list[str]:
    """Names of the stem convolution and every MatMul (the classifier) of ``ov_model``."""
    ops = ov_model.get_ordered_ops()
    convs = [o.get_friendly_name() for o in ops if o.get_type_name() == "Convolution"]
    mats = [o.get_friendly_name() for o in ops if o.get_type_name() == "MatMul"]
    return convs[:1] + mats


def quantize(fp32_onnx: Path, out_xml: Path, config, n_calibration: int = N_CALIBRATION) -> Path:
    """Write the int8 OpenVINO model of ``fp32_onnx`` to ``out_xml`` (atomically); returns its path."""
    import nncf
    import openvino as ov

    from .onnx_cache import CALIBRATION_PHOTOS, reference_images

    model = ov.Core().read_model(str(fp32_onnx))
    calib = reference_images(CALIBRATION_PHOTOS, n_calibration, config, seed=0)
    data = nncf.Dataset([calib[i : i + 1] for i in range(len(calib))])
    params = nncf.AdvancedQuantizationParameters(overflow_fix=getattr(nncf.OverflowFix, overflow_fix()))
    quantized = nncf.quantize(model, data, subset_size=len(calib), ignored_scope=nncf.IgnoredScope(
        names=kept_in_fp32(model), validate=False), advanced_parameters=params)
    out_xml = Path(out_xml)
    tmp = out_xml.with_name(f".{out_xml.stem}.{os.getpid()}.xml")
    ov.save_model(quantized, str(tmp), compress_to_fp16=False)
    os.replace(tmp.with_suffix(".bin"), out_xml.with_suffix(".bin"))
    os.replace(tmp, out_xml)
    return out_xml
