"""The one input and output layer of the front-ends (the CLI verbs and the server's routes).

Every verb is three steps, as a transformers pipeline is: *preprocess* (what the user sent ->
checked Python values: class lists, class descriptions, uploads -> :class:`~wordsight.io.sources.Sample`,
each image's own text, top-k), *forward* (the Python API: ``Classifier.predict_records``, the
:class:`~wordsight.zeroshot.pipeline.ZeroShotPipeline`, the concept descriptions), *postprocess*
(probabilities -> :class:`~wordsight.io.records.Prediction` records -> printed lines or JSON).
The CLI and the server call the same functions here, so that the same input is read by one rule
and refused with one message (:class:`InputError`: the CLI prints it, the server answers it as
JSON with its status and code).
"""
from __future__ import annotations

from ._json import MAX_FIELD
from .classes import parse_classes, read_classes_file
from .description_input import parse_descriptions, read_descriptions
from .input_error import InputError
from .responses import check_top_k, result_json
from .texts import attach_texts, check_reads_texts, parse_texts
from .upload_checks import Upload, check_header, display_name, upload_samples

__all__ = ["MAX_FIELD", "InputError", "Upload", "attach_texts", "check_header", "check_reads_texts", "check_top_k",
           "display_name", "parse_classes", "parse_descriptions", "parse_texts", "read_classes_file",
           "read_descriptions", "result_json", "upload_samples"]
