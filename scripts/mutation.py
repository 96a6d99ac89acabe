"""A bounded mutation run over wordsight's core modules: do the tests notice a small wrong change?

Mutants are made by mutmut's operators (``mutmut==2.5.1``: numbers +1, ``<`` to ``<=``, ``*`` to
``/``, ``and`` to ``or``, strings changed, a value replaced by ``None``, ...), one at a time, in
the functions listed in :data:`TARGETS`; each mutant runs only its module's fast test selection.
A mutant is *killed* when a test fails (or the run times out) and *survives* when every test passes.

Speed: each worker process imports the heavy libraries (numpy, scikit-learn, torch, transformers,
fastapi) once and forks a fresh child per mutant, which imports wordsight from the mutated copy
and runs pytest; ``WORDSIGHT_TEST_CACHE`` keeps the text embeddings between runs. Designed for
under 30 minutes on 2 cores (``make mutation``); the measured time is written with the score.

    python scripts/mutation.py [--jobs 2] [--only heads.py] [--budget-min 28] [--list] [--merge]

Left out everywhere, to keep the run under 30 minutes: the wording of error messages (string
changes inside ``raise``, ``warn``, ``log``, ``print``), default values in signatures, and
mutmut's "assign None" mutants (``x = value`` -> ``x = None``: the next use of ``x`` crashes).

Writes ``benchmarks/results/mutation.json``: the score, per module counts, and every surviving
mutant (file, function, line, original, mutated), with the reason where it is equivalent (a
change that no test can observe because the behaviour is the same: see :data:`EQUIVALENT`).
"""
from __future__ import annotations

import argparse
import ast
import itertools
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "mutation.json"


@dataclass
class Target:
    file: str  # under src/wordsight
    tests: list[str]  # pytest arguments (files, node ids, -k expressions)
    include: list[str] | None = None  # qualified function names (a class name takes its methods); None: all
    exclude: list[str] = field(default_factory=list)
    why_limited: str = ""
    on_demand: bool = False  # run only when named by --only (tests that fit models: several seconds a mutant)


G = "tests/golden/"
TARGETS = [
    Target("estimator/heads/base.py", [G + "test_heads_golden.py", G + "test_head_forms.py", "-k", "not mlp"],
           exclude=["<module>", "Head.__init__", "Head.fit"],
           why_limited="Head.fit only picks the BLAS thread count (same numbers either way)"),
    Target("estimator/heads/linear.py", [G + "test_heads_golden.py", G + "test_prior_golden.py", G + "test_head_forms.py",
                                      "-k", "not mlp"]),
    Target("estimator/heads/knn.py", [G + "test_heads_golden.py", G + "test_head_forms.py", "-k", "knn"]),
    Target("estimator/heads/forest.py", [G + "test_heads_golden.py", G + "test_head_forms.py", "-k", "forest"],
           exclude=["RandomForestHead._fit"],
           why_limited="RandomForestHead._fit only copies scikit-learn's tree arrays (pinned by the golden forest "
                       "test); the MLP head (its torch training loop: 80 mutants at 1.5 s each) is pinned by "
                       "test_mlp_head_probabilities_equal_the_recipe_written_out_in_torch but not mutated"),
    Target("estimator/heads/mil.py", ["tests/estimator/test_mil_head.py", "tests/estimator/test_mil_hidden.py",
                                      "tests/estimator/test_mil_instance_terms.py"], exclude=["<module>"]),
    Target("estimator/heads/mil_mlp.py", ["tests/estimator/test_mil_hidden.py"], exclude=["<module>"]),
    Target("estimator/heads/mil_fit.py", ["tests/estimator/test_mil_head.py"], exclude=["<module>"]),
    Target("estimator/fusion/base.py", [G + "test_fusion_golden.py", G + "test_fewshot_golden.py",
                                        "tests/features/test_tilebag.py::test_the_fusion_normalises_each_tile_in_numpy_and_torch"]),
    Target("estimator/tasks/label_folds.py", ["tests/estimator/test_multi_label.py", "-k", "threshold_fold"],
           exclude=["<module>"]),
    Target("estimator/fusion/prior.py", ["tests/estimator/test_label_prior_probe.py", "-k", "out_of_fold"],
           include=["PriorFusion.out_of_fold_proba"],
           why_limited="the out-of-fold probabilities behind a few-shot tagger's thresholds only: the prior's "
                       "fit and mixing are covered by tests/estimator and tests/golden"),
    Target("estimator/prior_mix.py", [G + "test_prior_golden.py"],
           include=["<module>", "mix", "choose_weight", "prior_temperature", "leave_one_shot_out_folds", "PriorMix"],
           why_limited="choose_mix needs fitted heads and folds: covered by tests/estimator, not mutated here"),
    Target("zeroshot/text_classifier.py", [G + "test_zeroshot_golden.py"],
           include=["ZeroShotClassifier.fit", "ZeroShotClassifier._check", "ZeroShotClassifier._shape",
                    "ZeroShotClassifier.decision_function", "ZeroShotClassifier.predict_log_proba",
                    "ZeroShotClassifier.predict_proba", "ZeroShotClassifier.predict"],
           why_limited="the class-text builders (LLM descriptions, WaffleCLIP words, templates), explain() and "
                       "save/load (their files are checksummed by estimator/saved/persistence) are left out for time"),
    Target("evaluate/metrics.py", [G + "test_metrics_golden.py", "tests/evaluate/test_metrics.py"]),
    Target("evaluate/fewshot.py", [G + "test_fewshot_golden.py"]),
    Target("features/cache.py", ["tests/keys/test_feature_cache_keys.py", "-k", "not int8"],
           exclude=["default_cache_dir", "FeatureCache._connect"],
           why_limited="SQLite connection pragmas (WAL, synchronous) and the cache folder's location are "
                       "not observable in one process"),
    Target("encoders/config.py", ["tests/keys/test_feature_cache_keys.py", "-k",
                                  "fingerprint or preprocess or fields or immutable"],
           include=["<module>", "EncoderConfig.preprocessing", "EncoderConfig.fingerprint"]),
    Target("estimator/saved/persistence.py", ["tests/keys/test_model_folder_integrity.py"]),
    Target("frontend/upload_checks.py", ["tests/serve/test_limits.py", "-k", "header or read_uploads or display"]),
    Target("serve/settings.py", ["tests/serve/test_limits.py", "-k", "settings"], include=["Limits"]),
    # issue 28: modules whose surviving hand-written mutants showed thin tests
    Target("serve/batcher.py", ["tests/serve/test_batcher.py"], exclude=["<module>"]),
    Target("serve/predictor.py", ["tests/serve/test_shared_batches.py"],
           include=["Predictor.predict_batch", "Predictor._decode_error", "Predictor.concepts_batch"],
           why_limited="the batch functions only: what a shared batch gives each request (the rest is served "
                       "through the real server in tests/serve)"),
    Target("training/autofit.py", ["tests/training/test_search.py", "-k", "members or stack or winner or time_limit"],
           include=["parse_time_limit", "_log_loss", "select_members", "stack_cv_accuracy", "choose_option"],
           why_limited="search_fit, rank_options and refit run whole searches: covered by tests/training and tests/cli"),
    Target("training/search.py", ["tests/training/test_search.py", "-k",
                                  "screen or ranks or ties or folds or without_a_complete"],
           include=["is_screened", "Trial", "SearchResult.ranked", "SearchResult.best", "SearchResult.leaderboard",
                    "stage_two", "screening_rows", "make_folds"],
           why_limited="the Optuna loop (search, suggest) and the thorough space take a minute per run"),
    Target("io/images.py", ["tests/io/test_images.py"], exclude=["read_image"]),
    Target("estimator/fusion/concat.py", [G + "test_fusion_golden.py", "tests/estimator/test_composition.py"]),
    Target("estimator/prior_probe.py", ["tests/estimator/test_prior_probe.py"],
           include=["PriorProbe._fit", "PriorProbe.logits", "PriorProbe.linear", "calibrate", "_sample_weights",
                    "objective", "_fit_residual"],
           why_limited="the maths only: argument checks, state and the torch module are pinned by the same file"),
    Target("export/runner.py", ["tests/export/test_runner_preprocessing.py", "tests/export/test_export.py",
                                "-k", "runner_preprocessing or tiny or views"],
           include=["_to_rgb", "choose", "decode", "apply_view", "preprocess"],
           why_limited="the folder checks and ONNX sessions need an export per run (tests/hostile/"
                       "test_export_folder.py, tests/export/test_export.py); the preprocessing is mutated"),
    # decode1: which models share a decode, and the view choice's reduced read
    Target("features/engines/shared_decode.py", ["tests/engines/test_shared_decode.py"]),
    Target("features/views.py", ["tests/features/test_views.py", "tests/features/test_view_choice.py",
                                 "tests/golden/test_prior_golden.py", "-k", "view or frame or border or light"],
           include=["_frame", "border_brightness", "on_dark_background", "light_background", "choose_view",
                    "choose_view_of_samples"],
           why_limited="the view choice and the frame it judges (tile views are pinned by tests/features/test_multi_view.py)"),
    # explanations: where a model input lies on the image, and the tile bags' maps (MILHead.instance_terms:
    # --only heads/mil.py --functions MILHead.instance_terms)
    Target("explain/boxes.py", ["tests/explain/test_boxes.py"]),
    Target("explain/tile_inputs.py", ["tests/explain/test_pooled_bag.py", "tests/explain/test_tile_bags.py", "-k",
                                      "tile_map or gradcam_places or torch_path or every_tile_bag or pool"],
           include=["bags_of", "pooled_bag", "tile_boxes", "pasted"],
           why_limited="the bags, their rectangles and the paste of a perturbed view; tile_reading and "
                       "tiles_of_views are extraction's reads (pinned against predict_proba by the same tests)",
           on_demand=True),
    Target("explain/tile_bags.py", ["tests/explain/test_pooled_bag.py", "tests/explain/test_tile_bags.py", "-k",
                                    "tile_map or gradcam or mil_head_pools or needs_a_tile_bag or global_share"],
           exclude=["<module>"], on_demand=True),
]

# Survivors that no test can tell apart from the original (or whose difference is not a defect):
# (file or folder/, text in the original line, text in the mutated line, why). Reviewed by hand after
# each run; paths are today's (the entries of the older layout's models/ were moved with their code).
EQUIVALENT: list[tuple[str, str, str, str]] = [
    ("estimator/tasks/label_folds.py", "np.zeros((n, 1))", "np.zeros((n, 2))",
     "KFold's split reads only the number of rows of the placeholder"),
    ("estimator/heads/mil_mlp.py", ".split(4 * batch))", ".split(5 * batch))",
     "the chunk size of the final loss's evaluation: the mean over images is the same"),
    ("_util/numerics.py", "1e-12)", "2e-12)", "the zero-norm guard's epsilon: any tiny value gives the same rows"),
    ("estimator/heads/mil.py", "self.logits(X[:0])", "self.logits(X[:1])",
     "instance_terms' width check: one row or none, the same refusal (the result is not used)"),
    ("estimator/fusion/base.py", "| None", "& None", "an annotation (postponed by `from __future__ import annotations`)"),
    ("estimator/feature_blocks.py", 'dict[int, "FeatureBlocks"]', "XXFeatureBlocksXX", "an annotation string"),
    ("estimator/heads/base.py", "overall if overall > 1e-12 else 1.0", "", "the scale of a constant training set: every "
     "centred value is 0, so the coefficients it multiplies are 0 whatever the scale"),
    ("estimator/heads/", "if len(counts) > 1 else 0", "else 1", "n = 1 is returned as 0 by the next line"),
    ("estimator/heads/", "if len(counts) > 1 else 0", ">= 1 else",
     "one class present: scikit-learn refuses to fit it anyway"),
    ("io/safe_files.py", "f.read(1 << 20)", "", "the read chunk size of the checksum: same digest"),
    ("estimator/saved/persistence.py", "type(classes[0])", "classes[1]", "every class label has the same type"),
    ("estimator/saved/persistence.py", "prior = None", 'prior = ""', "both are falsy where the loader reads them"),
    ("estimator/prior_mix.py", "round(scores[w][1], 6)", "round(scores[w][1], 7)", "the tie-break's rounding of the log-loss: "
     "any precision between float noise and a visible difference is equally right"),
    ("estimator/prior_mix.py", "scores.get(0.0, (0, 0))", "(0, 1)", "the default's log-loss is never read"),
    ("estimator/prior_mix.py", "if len(counts) else 0", "else 1", "k = 1 gives no folds like k = 0"),
    ("features/cache.py", "500", "501", "the SQL IN-list chunk size: same rows found"),
    ("frontend/upload_checks.py", "itertools.count(1)", "count(2)", "request ids only need to be unique"),
    ("frontend/upload_checks.py", "@dataclass(frozen=True)", "frozen=False", "Upload is internal and never modified"),
    ("serve/uploads.py", "max_upload_bytes + 1)", "max_upload_bytes + 2)", "reading one or two bytes past the limit "
     "refuses the same files"),
    ("frontend/upload_checks.py", 'f"upload-{rid}/{i}"', "", "the in-memory sample's name only needs to be unique"),
    ("frontend/upload_checks.py", 'rsplit("/", 1)[-1]', 'rsplit("/", 2)[-1]', "the last part is the same"),
    ("frontend/upload_checks.py", "if w == 0 or h == 0:", "", "defensive: PIL refuses zero-sized headers before this line "
     "(a PNG, GIF or BMP header saying 0 pixels is 'not an image')"),
    ("frontend/upload_checks.py", "image has no pixels", "", "defensive line, see above"),
    ("estimator/heads/forest.py", "P += a[\"value\"][base + node]", "P -= a", "the final normalisation removes the sign"),
    ("estimator/heads/forest.py", "P /= len(offsets) - 1", "", "the final normalisation removes any scale"),
    ("estimator/heads/", "f = np.where(leaf, 0, a[\"feature\"][g])", "", "a leaf's feature index is never used"),
    ("estimator/heads/", "1e-12)", "2e-12)", "the zero-norm guard's epsilon"),
    ("estimator/heads/", "cw.get(c, 1.0)", "cw.get(c, 2.0)", "a class with no training image never votes"),
    ("estimator/heads/", "max_iter", "", "the iteration cap: both fits converge well before it"),
    ("estimator/heads/", "intercept = np.full(n_classes, -1e3)", "-1001.0", "any very negative logit works"),
    ("estimator/heads/", "round(scores[c], 6)", "round(scores[c], 7)", "the tie-break's rounding of an accuracy"),
    ("estimator/fusion/base.py", "if parts else np.zeros", "", "unreachable: every valid fusion has a part"),
    ("evaluate/fewshot.py", "time.time() - t", "time.time() + t", "the elapsed seconds in a progress line"),
    ("estimator/tasks/class_scores.py", "1e-12, None", "2e-12, None", "the log-loss floor for a zero probability"),
    ("estimator/tasks/class_scores.py", "n_bins - 1)", "n_bins + 1)", "a confidence is at most 1, always in the last bin"),
    ("estimator/tasks/class_scores.py", "if present.any() else 0.0", "else 1.0", "only an empty test set has no class present"),
    ("features/cache.py", "self.root = None", 'self.root = ""', "MemoryCache.root is only read as 'no folder'"),
    ("encoders/config.py", 'install_hint: str = ""', "", "the default of a hint text shown to users"),
    ("encoders/config.py", "available: Callable", "compare=True", "configs are never compared for equality"),
    ("encoders/config.py", "available: Callable", "repr=True", "the repr of a config"),
    ("estimator/fusion/base.py", "int(text_dim or 0)", "or 1", "a text block always has its dimension (never None)"),
    ("estimator/heads/", "if folds == 0 and len(grid) > 1 else grid[0]", "len(grid) >= 1", "a one-C grid gives grid[0] "
     "either way"),
    ("estimator/heads/", "if folds == 0 and len(grid) > 1 else grid[0]", "folds == 0 or", "same: reached only when "
     "the grid has one C or there are no folds"),
    ("estimator/heads/", "model = None", 'model = ""', "both make the first C a fresh fit"),
    ("storage/write.py", "json.dumps(config, indent=2", "indent=3", "whitespace in config.json"),
    ("serve/batcher.py", "| None", "& None", "an annotation (postponed by `from __future__ import annotations`)"),
    ("serve/batcher.py", 'name=f"batcher-{self.name}"', "XXbatcher", "the asyncio task's name, for debugging only"),
    ("serve/batcher.py", "max_wait_ms / 1000.0", "/ 1001.0", "a wait 0.1% shorter"),
    ("serve/batcher.py", "if left <= 0:", "if left < 0:", "left is exactly 0.0 only by chance, and wait_for(0) times "
     "out at once"),
    ("serve/batcher.py", "break", "continue", "after wait_for timed out, the next turn finds no time left and breaks"),
    ("io/images.py", "(255, 255, 255, 255)", "256", "PIL clips a fill colour to 255"),
    ("io/images.py", '(mode == "P" and "transparency"', '(mode == "P" or', "a palette image without transparency, "
     "put on white, is the same image"),
    ("io/images.py", 'if mode == "RGB":', "XXRGBXX", "an RGB image converted to RGB is the same image (a shortcut)"),
    ("export/runner.py", 'if img.mode == "RGB":', "XXRGBXX", "an RGB image converted to RGB is the same image"),
    ("serve/predictor.py", "| None", "& None", "an annotation"),
    ("export/runner.py", '"RGBa", "La")', "XXRGBaXX", "premultiplied modes exist only in memory: no file opens as RGBa"),
    ("export/runner.py", '"RGBa", "La")', "XXLaXX", "premultiplied modes exist only in memory: no file opens as La"),
    ("serve/batcher.py", "if len(items) == 1:", "== 2:", "a one-item batch retried item by item fails the same way"),
    ("serve/predictor.py", 'sample.data or b""', 'b"XXXX"', "a Sample in the server always carries its bytes"),
    ("encoders/config.py", "PREPROCESS_VERSION = 1", "", "bumping the version is the documented way to renew the "
     "keys; the fingerprint tests compute with the module's value"),
    ("features/engines/shared_decode.py", 'return ("as-is",)', "XXas-isXX", "a tag: any constant that is not a "
     "JPEG's (mode, size) names 'decoded whole'"),
    ("features/engines/shared_decode.py", 'return ("unopened",)', "XXunopenedXX", "a tag: any constant names "
     "'the header does not open'"),
    ("features/engines/shared_decode.py", 'img.draft("RGB"', "XXRGBXX", "PIL's JPEG draft reads the mode only "
     "when it is L or YCbCr: any other request drafts as RGB (decode_image asks RGB)"),
    ("explain/tile_bags.py", "reading(view).matrix[:1]", "matrix[:2]", "the reading of one image has one row"),
    ("explain/tile_bags.py", 'head.info.get("pool", head.pool)', "XXpoolXX", "a fitted mil head's info holds the "
     "pool it was fitted with: the fallback is the same value"),
]


# Real survivors that the fast selection cannot reach, with the reason (not counted as equivalent).
NOT_REACHED: list[tuple[str, str, str]] = [
    ("estimator/heads/linear.py", "LinearHead._choose_c", "the large-problem path (one held-out split, warm starts) starts at "
     "5,000,000 matrix entries: exercised by benchmarks/fashion_mnist.py only; stratified folds hold every "
     "class"),
    ("export/runner.py", "_to_rgb", "mode PA: Pillow writes no PA file to test with (palette PNGs with alpha open as "
     "P + transparency, which is tested)"),
    ("serve/predictor.py", "Predictor._decode_error", "the fallback when the model itself raises on a batch: "
     "a batch of unreadable images gets each image's own error from predict_records before that"),
    ("serve/predictor.py", "Predictor.predict_batch", "the detector's branch: served and tested by "
     "tests/serve/test_anomaly_api.py, not in this fast selection"),
    ("encoders/config.py", "<module>", "the default of EncoderConfig.available is used only by hub-prefixed models "
     "(hf:, clip:, st:), which need the network"),
]


def not_reached_reason(row) -> str | None:
    for file, function, why in NOT_REACHED:
        if row["file"] == file and row["function"] == function:
            return why
    return None


def equivalent_reason(row) -> str | None:
    for file, before, after, why in EQUIVALENT:
        # a file, or a folder ending in "/" (a module that was split, e.g. the heads)
        same = row["file"] == file or (file.endswith("/") and row["file"].startswith(file))
        if same and before in row["original"] and (after in row["mutated"]):
            return why
    return None

def stale_entries(root: Path = ROOT) -> list[str]:
    """The :data:`EQUIVALENT` entries whose original text is in none of their files any more (the code
    moved or changed): reviewed once, they no longer match a mutant and should be dropped or moved."""
    src = root / "src" / "wordsight"
    stale = []
    for file, before, _after, _why in EQUIVALENT:
        paths = sorted((src / file).rglob("*.py")) if file.endswith("/") else [src / file]
        if not any(p.is_file() and before in p.read_text() for p in paths):
            stale.append(f"{file}: {before!r}")
    return stale


HEAVY = ["numpy", "scipy.special", "scipy.optimize", "sklearn.linear_model", "sklearn.svm", "sklearn.ensemble",
         "sklearn.neighbors", "sklearn.metrics", "sklearn.model_selection", "sklearn.utils.estimator_checks",
         "torch", "torchvision", "safetensors.numpy", "safetensors.torch", "PIL.Image", "threadpoolctl",
         "transformers", "sentence_transformers", "fastapi", "starlette.datastructures", "uvicorn", "httpx",
         "pyarrow", "pytest", "_pytest.python"]


# ----------------------------------------------------------------------------- the mutants
def functions_by_line(source: str) -> tuple[dict[int, str], set[int], set[int]]:
    """0-based line -> qualified name of the innermost enclosing function ("<module>" outside);
    the lines of function signatures (default values); the lines of messages (``raise``,
    ``warnings.warn``, ``log``, ``print`` calls), whose wording is not mutated."""
    out: dict[int, str] = {}
    signature: set[int] = set()
    messages: set[int] = set()

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                start = min([child.lineno] + [d.lineno for d in getattr(child, "decorator_list", [])])
                if not isinstance(child, ast.ClassDef):
                    for ln in range(start - 1, child.end_lineno):
                        out[ln] = name
                    signature.update(range(child.lineno - 1, child.body[0].lineno - 1))
                visit(child, name + ".")
            else:
                if isinstance(child, ast.Raise) or (
                        isinstance(child, ast.Call) and _called(child) in ("warn", "log", "print")):
                    messages.update(range(child.lineno - 1, child.end_lineno))
                visit(child, prefix)

    visit(ast.parse(source), "")
    return out, signature, messages


def _called(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")


def selected(name: str, target: Target) -> bool:
    def match(pattern):
        return name == pattern or name.startswith(pattern + ".")

    if any(match(p) for p in target.exclude):
        return False
    return target.include is None or any(match(p) for p in target.include)


def enumerate_mutants(target: Target) -> list[dict]:
    from mutmut import Context, list_mutations, mutate

    path = ROOT / "src" / "wordsight" / target.file
    source = path.read_text()
    where, signature, messages = functions_by_line(source)
    out = []
    for mid in list_mutations(Context(source=source, filename=str(path))):
        func = where.get(mid.line_number, "<module>")
        if not selected(func, target) or mid.line_number in signature:
            continue
        mutated, n = mutate(Context(source=source, mutation_id=mid, filename=str(path)))
        if n != 1:
            continue
        before = source.splitlines()
        after = mutated.splitlines()
        line = mid.line_number
        if line in messages and len(after) == len(before) and "XX" in after[line] and "XX" not in before[line]:
            continue  # the wording of an error message
        to_none = after[line].rstrip().endswith("= None") and not before[line].rstrip().endswith("= None")
        if len(after) == len(before) and to_none:
            continue  # "x = None": the next use of x crashes; left out to halve the run
        out.append({"file": target.file, "function": func, "line": line + 1, "index": mid.index,
                    "original": before[line].strip(), "mutated": after[line].strip() if line < len(after) else "",
                    "source": mutated})
    return out


# ----------------------------------------------------------------------------- running
def preload():
    import importlib

    for name in HEAVY:
        try:
            importlib.import_module(name)
        except Exception:  # an optional extra not installed: its tests skip
            pass


def run_child(copy: Path, tests: list[str], log: Path, timeout: float) -> tuple[str, float]:
    """Fork; the child runs pytest on ``copy``. Returns (status, seconds): passed, failed, timeout."""
    t0 = time.time()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.setpgid(0, 0)
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.chdir(copy)
            sys.path.insert(0, str(copy / "src"))
            sys.dont_write_bytecode = True
            import pytest

            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # no third-party plugin is needed
            rc = pytest.main(["-x", "-q", "-p", "no:cacheprovider", "--assert=plain", "--rootdir", str(copy), *tests])
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(int(rc))
        except BaseException:
            os._exit(99)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            return ("passed" if code == 0 else "failed"), time.time() - t0
        if time.time() - t0 > timeout:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return "timeout", time.time() - t0
        time.sleep(0.05)


def worker(index: int, copy: Path, jobs: list[dict], deadline: float, results: Path):
    """One process: preload, then per target a baseline run, then its share of the mutants."""
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    preload()
    log = copy / "mutant.log"
    baselines: dict[str, float] = {}
    with open(results, "w") as out:
        for job in jobs:
            target = next(t for t in TARGETS if t.file == job["file"])
            path = copy / "src" / "wordsight" / target.file
            if target.file not in baselines:
                status, secs = run_child(copy, target.tests, log, 600)
                if status != "passed":
                    shutil.copy(log, results.with_suffix(f".baseline-{Path(target.file).stem}.log"))
                    out.write(json.dumps({"baseline_failed": target.file}) + "\n")
                    out.flush()
                    baselines[target.file] = -1
                else:
                    baselines[target.file] = secs
            if baselines[target.file] < 0:
                continue
            if time.time() > deadline:
                out.write(json.dumps({**_public(job), "status": "not_run"}) + "\n")
                continue
            original = path.read_text()
            path.write_text(job["source"])
            try:
                status, secs = run_child(copy, target.tests, log, max(30.0, 3 * baselines[target.file] + 15))
            finally:
                path.write_text(original)
            out.write(json.dumps({**_public(job), "status": status, "seconds": round(secs, 2)}) + "\n")
            out.flush()


def _key(m) -> tuple:
    return (m["file"], m["line"], m["original"], m["mutated"])


def _public(job):
    return {k: v for k, v in job.items() if k != "source"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", help="run only targets whose file ends with this (several: comma-separated); "
                                   "targets marked on_demand run only when named here")
    ap.add_argument("--functions", help="mutate only these functions of the targets run (qualified names, "
                                        "comma-separated; a class name takes its methods); --merge then "
                                        "replaces only their rows")
    ap.add_argument("--budget-min", type=float, default=28.0, help="stop starting mutants after this")
    ap.add_argument("--list", action="store_true", help="count the mutants per target and stop")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--merge", action="store_true",
                    help="merge into the existing --out file: this run's modules replace their earlier rows, the "
                         "other modules keep theirs, and the run is added to its 'runs' list")
    ap.add_argument("--rerun", metavar="RESULT_JSON",
                    help="run again only the mutants that survived or were not run in an earlier result; the "
                         "others keep their earlier verdict (valid while tests are only added)")
    ap.add_argument("--survivors-only", action="store_true",
                    help="with --rerun: run again only the non-equivalent survivors (and new mutants); the others "
                         "keep their earlier verdict, 'not run' included")
    args = ap.parse_args(argv)

    only = [o for o in (args.only or "").split(",") if o]
    targets = [t for t in TARGETS if (any(t.file.endswith(o) for o in only) if only else not t.on_demand)]
    functions = [f for f in (args.functions or "").split(",") if f]
    mutants = [m for t in targets for m in enumerate_mutants(t)
               if not functions or selected(m["function"], Target(t.file, [], include=functions))]
    earlier: list[dict] = []
    if args.rerun:
        old = {_key(r): r for r in json.loads(Path(args.rerun).read_text())["rows"]}
        def again_(m) -> bool:
            r = old.get(_key(m))
            if r is None:
                return True
            if args.survivors_only:
                return r["status"] == "passed" and not equivalent_reason({**r, "file": m["file"]})
            return r["status"] in ("passed", "not_run")

        again = [m for m in mutants if again_(m)]
        earlier = [old[_key(m)] for m in mutants if _key(m) in old and not again_(m)]
        mutants = again
    if args.list:
        for t in targets:
            print(f"{t.file}: {sum(m['file'] == t.file for m in mutants)} mutants")
        print(f"total: {len(mutants)}")
        return 0

    os.environ.setdefault("WORDSIGHT_TEST_CACHE", str(Path(tempfile.gettempdir()) / "wordsight-mutation-cache"))
    Path(os.environ["WORDSIGHT_TEST_CACHE"]).mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    deadline = t0 + args.budget_min * 60
    work = Path(tempfile.mkdtemp(prefix="wordsight-mutation-"))
    procs = []
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    # target by target, spread over the workers, so that each worker pays few baselines
    # interleaved across modules, so that a run cut short by the budget has sampled every module
    by_file = [[m for m in mutants if m["file"] == t.file] for t in targets]
    order = [m for group in itertools.zip_longest(*by_file) for m in group if m is not None]
    shares = [[] for _ in range(args.jobs)]
    for i, m in enumerate(order):
        shares[i % args.jobs].append(m)
    for w in range(args.jobs):
        copy = work / f"w{w}"
        copy.mkdir()
        shutil.copytree(ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        shutil.copytree(ROOT / "tests", copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
        p = ctx.Process(target=worker, args=(w, copy, shares[w], deadline, work / f"w{w}.jsonl"))
        p.start()
        procs.append(p)
    for p in procs:
        p.join()
    rows = list(earlier)
    for w in range(args.jobs):
        f = work / f"w{w}.jsonl"
        if f.exists():
            rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    report = summarise(rows, targets, time.time() - t0, args)
    if args.merge and Path(args.out).exists():
        report = merged(json.loads(Path(args.out).read_text()), report, rows, args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"mutation score {report['score']:.1%} ({report['killed']} killed of {report['scored']} scored; "
          f"{report['survived']} survived, {report['equivalent']} equivalent, {report['not_run']} not run) "
          f"in {report['wall_min']:.1f} min -> {args.out}")
    for entry in report["stale_equivalent_entries"]:
        print(f"  stale EQUIVALENT entry (its text is gone from the source): {entry}")
    for s in report["survivors"]:
        tag = " [equivalent]" if s.get("equivalent") else ""
        print(f"  {s['file']}:{s['line']} {s['function']}: {s['original']}  ->  {s['mutated']}{tag}")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if not report["baseline_failed"] else 1


def _run_line(report: dict) -> dict:
    return {k: report.get(k) for k in ("command", "date", "machine", "wall_min", "score", "killed", "survived",
                                       "equivalent", "not_run")} | {
        "files": [t["file"] for t in report.get("targets", [])]}


def merged(old: dict, new: dict, new_rows: list[dict], args) -> dict:
    """``new`` merged into ``old``: rows of the modules run now replace their earlier ones; rows of
    other current targets are kept (rows of files that are no longer targets are dropped); the
    score is recomputed over every kept row and each run is listed under ``runs``."""
    ran = {t["file"] for t in new["targets"]}
    current = {f"src/wordsight/{t.file}" for t in TARGETS}
    functions = [f for f in (getattr(args, "functions", None) or "").split(",") if f]

    def replaced(r) -> bool:  # run again now: the file's rows (with --functions, those functions' rows)
        return f"src/wordsight/{r['file']}" in ran and (
            not functions or selected(r["function"], Target(r["file"], [], include=functions)))

    kept = [{**r, "file": r["file"]} for r in old.get("rows", [])
            if f"src/wordsight/{r['file']}" in current and not replaced(r)]
    rows = kept + [r for r in new_rows if "status" in r]
    targets = [t for t in TARGETS if any(r["file"] == t.file for r in rows)]
    runs = old.get("runs") or [_run_line(old)]
    report = summarise(rows, targets, sum(x.get("wall_min") or 0 for x in runs) * 60 + new["wall_min"] * 60, args)
    before = {t["file"]: t for t in old.get("targets", [])}
    for t in report["targets"]:  # what runs limited by --functions covered, kept from run to run
        was = before.get(t["file"], {}).get("functions_run")
        now = was
        if t["file"] in ran:  # the others' rows kept: their whole earlier run, or the functions it named
            had_rows = any(f"src/wordsight/{r['file']}" == t["file"] for r in kept)
            mine = {f for f in functions if any(f"src/wordsight/{r['file']}" == t["file"] and selected(
                r["function"], Target(r["file"], [], include=[f])) for r in new_rows if "status" in r)}
            now = sorted(mine | set(was or [])) if functions and (was or not had_rows) else None
        t.pop("functions_run", None)
        if now:
            t["functions_run"] = now
    report["command"] = "several runs merged (python scripts/mutation.py --only FILE --merge): see runs"
    report["runs"] = runs + [_run_line(new)]
    return report


def summarise(rows, targets, wall, args) -> dict:
    functions = [f for f in (getattr(args, "functions", None) or "").split(",") if f]
    failed_baselines = sorted({r["baseline_failed"] for r in rows if "baseline_failed" in r})
    done = [r for r in rows if "status" in r]
    for r in done:
        why = equivalent_reason(r)
        if why and r["status"] == "passed":
            r["equivalent"] = why
    per = []
    for t in targets:
        mine = [r for r in done if r["file"] == t.file]
        per.append({"file": f"src/wordsight/{t.file}", "tests": " ".join(t.tests),
                    "functions": "all" if t.include is None else t.include, "excluded": t.exclude,
                    "limited_because": t.why_limited or None, "mutants": len(mine),
                    "killed": sum(r["status"] in ("failed", "timeout") for r in mine),
                    "survived": sum(r["status"] == "passed" and not r.get("equivalent") for r in mine),
                    "equivalent": sum(bool(r.get("equivalent")) for r in mine),
                    "not_run": sum(r["status"] == "not_run" for r in mine)}
                   | ({"functions_run": [f for f in functions if any(
                       selected(r["function"], Target(t.file, [], include=[f])) for r in mine)]} if functions else {}))
    killed = sum(p["killed"] for p in per)
    equivalent = sum(p["equivalent"] for p in per)
    survived = sum(p["survived"] for p in per)
    scored = killed + survived
    return {
        "command": "python scripts/mutation.py --jobs %d --budget-min %g%s%s%s%s%s" % (
            args.jobs, args.budget_min, f" --only {args.only}" if args.only else "",
            f" --functions {args.functions}" if getattr(args, "functions", None) else "",
            f" --rerun {args.rerun}" if args.rerun else "", " --survivors-only" if args.survivors_only else "",
            " --merge" if args.merge else ""),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), Python {platform.python_version()}",
        "mutation_tool": "mutmut 2.5.1 operators, scripts/mutation.py driver",
        "wall_min": round(wall / 60, 1),
        "score": killed / scored if scored else 0.0,
        "score_counting_equivalent_as_survivors": killed / (scored + equivalent) if scored + equivalent else 0.0,
        "killed": killed, "survived": survived, "equivalent": equivalent, "scored": scored,
        "timeouts": sum(r["status"] == "timeout" for r in done),
        "not_run": sum(p["not_run"] for p in per),
        "baseline_failed": failed_baselines,
        "stale_equivalent_entries": stale_entries(),
        "targets": per,
        "rows": [{k: r[k] for k in ("file", "function", "line", "index", "original", "mutated", "status")}
                 for r in sorted(done, key=lambda r: (r["file"], r["line"], r["index"]))],
        "survivors": [{k: r[k] for k in ("file", "function", "line", "original", "mutated")}
                      | ({"equivalent": r["equivalent"]} if r.get("equivalent") else
                         {"not_killed_because": not_reached_reason(r)} if not_reached_reason(r) else {})
                      for r in sorted(done, key=lambda r: (r["file"], r["line"], r["index"]))
                      if r["status"] == "passed"],
    }


if __name__ == "__main__":
    sys.exit(main())
