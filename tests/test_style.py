"""The public API is documented, in one docstring style (numpy's, as scikit-learn and timm).

Public: what a package lists in ``__all__`` (the names a user imports), and the public methods and
properties those classes define themselves. Every one has a docstring whose summary starts on the
first line; sections, where a docstring has them, are numpy's underlined ones ("Parameters" over
"----------"), never Google's "Args:"."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import wordsight

GOOGLE_SECTION = re.compile(r"^\s*(Args|Arguments|Returns|Raises|Yields|Attributes|Example|Examples):\s*$", re.M)
NUMPY_SECTION = re.compile(r"^\s*(Parameters|Returns|Raises|Yields|Attributes|Examples|Notes|See Also)\s*\n\s*(-+)\s*$",
                           re.M)


def public_api() -> dict[str, object]:
    found: dict[str, object] = {}
    for info in pkgutil.walk_packages(wordsight.__path__, "wordsight."):
        if not info.ispkg:
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj)) \
                    and obj.__module__.startswith("wordsight"):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    for qualname, obj in list(found.items()):
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                fn = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
                if not attr.startswith("_") and inspect.isfunction(fn) and fn.__name__ != "<lambda>":
                    found[f"{qualname}.{attr}"] = fn
    return found


def test_the_public_api_is_found():
    api = public_api()
    for name in ("wordsight.estimator.classifier.Classifier.fit", "wordsight.zeroshot.pipeline.ZeroShotPipeline",
                 "wordsight.features.extract.extract_features", "wordsight.estimator.heads.base.Head.logits"):
        assert name in api, name
    assert len(api) > 150


def test_every_public_name_has_a_docstring_in_numpy_style():
    undocumented, badly = [], []
    for name, obj in public_api().items():
        doc = obj.__doc__
        if not doc or not doc.strip():
            undocumented.append(name)
            continue
        if doc[0].isspace() or GOOGLE_SECTION.search(doc):
            badly.append(name)
        for m in NUMPY_SECTION.finditer(doc):
            if len(m.group(2)) != len(m.group(1)):
                badly.append(f"{name} (underline of {m.group(1)!r})")
    assert not undocumented, f"{len(undocumented)} public names without a docstring: {undocumented}"
    assert not badly, f"not numpy style (summary on the first line, underlined sections): {badly}"
