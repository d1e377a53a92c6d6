"""Train, calibrate, export, measure: the steps `training.task` and `training.full` share.

The figures in the report are measured on the exported LiteRT files, what the service runs:
the float model on the evaluation photos, clean and under the photo-condition suite, and the
quantised model beside it on the very same photos (its parity check).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from service.drift import reference_figures
from service.runtime import NOVELTY, PROBABILITIES, REPORT_HTML, load_predictor
from training.calibration import fit_temperature
from training.corruptions import SUITE, evaluate_suites, format_suite, under_every_condition
from training.dataset import LabelledImages
from training.export import export_model
from training.model import serving_model
from training.non_mugs import (
    PLAIN_CORNERS,
    corner_texture,
    corners_are_background,
    threshold_non_mugs,
    training_non_mugs,
    validation_non_mugs,
)
from training.novelty import (
    fit_threshold,
    format_threshold,
    format_unknown,
    novelty_by_source,
    on_another_table,
    unknown_figures,
)
from training.report import classification_metrics, format_metrics, write_report
from training.report_page import Evidence, report_title, write_report_html
from training.train import FULL_FRAME, PLAIN_GROUND, TrainConfig, predict_outputs, train

# The quantised model is served by default only this close to the float one.
PARITY_MAX_ACCURACY_GAP = 0.005
PARITY_MAX_PROBABILITY_GAP = 0.01


def train_and_export(
    config: TrainConfig,
    train_data: LabelledImages,
    export_dir: Path,
    trained_on: str,
    eval_data: LabelledImages,
    evaluated_on: str,
    eval_is_training_data: bool = False,
    about: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Hold out a share of `train_data`, train on the rest, fit the temperature on the held-out
    photos, export to `export_dir`, then evaluate the exported models on `eval_data` (clean and
    under the photo-condition suite). training.full evaluates on photos it also trained on
    (`eval_is_training_data`): its report says so. `about` goes into the metadata as it is
    (the model's name, title, description, data sources). Returns the report (metrics.json)."""
    class_names = train_data.class_names
    started = time.monotonic()
    fit_data, held_out = train_data.split_holdout(config.holdout_fraction, config.seed)
    corners = corners_are_background(fit_data.images)
    config = recipe_for(config, corners)
    non_mugs = training_non_mugs(fit_data.images, config.seed, corners)
    model, history = train(config, fit_data, None if eval_is_training_data else eval_data, non_mugs)
    wall_time = time.monotonic() - started

    # The held-out photos as taken and under every condition of the photo suite: what the
    # temperature and the unknown threshold are both fitted on.
    held_out_versions = under_every_condition(held_out.images, config.seed + 2000)
    held_out_logits = predict_outputs(model, held_out_versions)
    held_out_labels = np.tile(held_out.labels, len(held_out_versions) // len(held_out))
    calibration = fit_temperature(held_out_logits, held_out_labels)
    held_out_figures = held_out_accuracy(held_out_logits, held_out_labels, len(held_out))
    print(
        f"Held-out photos ({len(held_out)}, never trained on): accuracy "
        f"{held_out_figures['accuracy']:.2%} as taken, "
        f"{held_out_figures['suite_mean_accuracy']:.2%} under the photo suite"
    )
    calibration["fitted_on"] = (
        f"{len(held_out)} photos held out from {trained_on} ({config.holdout_fraction:.0%} of "
        f"each class, seed {config.seed}), as taken and under each of the {2 * len(SUITE)} "
        "conditions of the photo suite"
    )
    metadata = export_model(
        serving_model(model, calibration["temperature"]),
        export_dir,
        calibration,
        class_names,
        about,
    )

    served = load_predictor(export_dir, "litert", precision="float")
    quantized = load_predictor(export_dir, "litert", precision="int8")
    if eval_is_training_data:
        evaluated_on += " (in the training data: not a measure of generalisation)"
    another_table = config.threshold_on_another_table
    threshold_versions, threshold_labels = held_out_versions, held_out_labels
    if another_table:
        threshold_versions = np.concatenate(
            [held_out_versions, on_another_table(held_out.images, config.seed + 2000)]
        )
        threshold_labels = np.concatenate([held_out_labels, held_out.labels])
    version_outputs = served.output_batches(threshold_versions)
    novelty = fit_threshold(
        version_outputs[NOVELTY],
        version_outputs[PROBABILITIES].argmax(axis=1) == threshold_labels,
        served.output_batches(threshold_non_mugs(config.image_size, config.seed))[NOVELTY],
        f"the {len(held_out)} held-out photos, as taken and under each of the "
        f"{2 * len(SUITE)} conditions of the photo suite"
        + (", and on another table" if another_table else ""),
    )
    print(format_threshold(novelty))
    outputs = served.output_batches(eval_data.images)
    probabilities = outputs[PROBABILITIES]
    evaluation = classification_metrics(eval_data.labels, probabilities, class_names)
    print(f"\nEvaluation on {evaluated_on}:\n{format_metrics(evaluation)}")
    non_class_scores = novelty_by_source(
        served, validation_non_mugs(held_out.images, config.seed, corners)
    )
    unknown = unknown_figures(novelty["threshold"], outputs, eval_data.labels, non_class_scores)
    print(format_unknown(unknown))
    novelty |= {
        "evaluated_on": evaluated_on,
        "kept": unknown["kept"],
        "kept_correct": unknown["kept_correct"],
        "non_mug_validation_unknown": unknown["non_mug_unknown"],
        "non_mug_validation_counts": unknown["non_mug_counts"],
    }
    suites = evaluate_suites(
        {"float": served.predict_batches, "int8": quantized.predict_batches},
        eval_data.images,
        eval_data.labels,
    )
    robustness = suites["float"]
    print(f"\nUnder the photo-condition suite:\n{format_suite(robustness)}")
    print(
        f"\nTemperature {calibration['temperature']} (held-out ECE "
        f"{calibration['ece_before']:.3f} -> {calibration['ece_after']:.3f})"
    )
    quantization = quantization_parity(
        evaluation, probabilities, quantized.predict_batches(eval_data.images), eval_data, suites
    )
    print(
        f"Quantised model: accuracy {quantization['accuracy']:.2%} (float "
        f"{evaluation['accuracy']:.2%}), suite mean {quantization['suite_mean_accuracy']:.2%} "
        f"(float {robustness['mean_accuracy']:.2%}), probabilities within "
        f"{quantization['max_probability_gap']:.4f}: parity "
        f"{'passed' if quantization['passed'] else 'FAILED, float will be served'}"
    )

    train_accuracy = classification_metrics(
        fit_data.labels, served.predict_batches(fit_data.images), class_names
    )
    report: dict[str, Any] = {
        "trained_on": trained_on,
        "train_counts": fit_data.class_counts(),
        "held_out_counts": held_out.class_counts(),
        "config": config.as_dict(),
        "seed": config.seed,
        "epochs": config.epochs,
        "wall_time_s": round(wall_time, 1),
        "train_accuracy": train_accuracy["accuracy"],
        "held_out": held_out_figures,
        "calibration": calibration,
        "evaluated_on": evaluated_on,
        "eval_counts": eval_data.class_counts(),
        "evaluation": evaluation,
        "corruptions": robustness,
        "quantization": quantization,
        "history": history,
        "unknown": novelty
        | {
            "by_source": unknown["non_mug_unknown_by_source"],
            "photo_corners": {
                "used": corners,
                "texture": round(corner_texture(fit_data.images), 3),
                "rule": f"the photos' corners are taught as none of the classes when their "
                f"texture is under {PLAIN_CORNERS} of the centre's (plain background)",
            },
        },
    }
    summary_keys = ("trained_on", "train_counts", "epochs", "seed", "train_accuracy")
    summary = {key: report[key] for key in summary_keys}
    summary |= {
        "held_out_accuracy": held_out_figures["accuracy"],
        "held_out_suite_mean_accuracy": held_out_figures["suite_mean_accuracy"],
        "evaluated_on": evaluated_on,
        "eval_accuracy": evaluation["accuracy"],
        "eval_ece": evaluation["ece"],
        "corruption_mean_accuracy": robustness["mean_accuracy"],
        "corruption_worst": robustness["worst"],
        "unknown_kept_correct": unknown["kept_correct"],
        "non_mug_validation_unknown": unknown["non_mug_unknown"],
    }
    # The held-out photos as taken are the first rows of the versions the threshold saw.
    held_out_outputs = {name: out[: len(held_out)] for name, out in version_outputs.items()}
    reference = reference_figures(
        class_names,
        [
            "unknown" if score > novelty["threshold"] else class_names[int(top)]
            for top, score in zip(
                held_out_outputs[PROBABILITIES].argmax(1), held_out_outputs[NOVELTY], strict=True
            )
        ],
        held_out_outputs[PROBABILITIES].max(1).tolist(),
    )
    reference["fitted_on"] = f"the {len(held_out)} held-out photos, as taken"
    metadata = metadata.model_copy(
        update={
            "metrics": summary,
            "quantization": quantization,
            "novelty": novelty,
            "reference": reference,
        }
    )
    metadata.write(export_dir)
    report["model_version"] = metadata.model_version
    write_report(export_dir, report)
    evidence = Evidence(
        eval_data.images,
        eval_data.labels,
        probabilities,
        outputs[NOVELTY],
        np.concatenate(list(non_class_scores.values())),
    )
    write_report_html(export_dir / REPORT_HTML, report, evidence, report_title(metadata))
    print(f"\nTrained in {wall_time:.0f}s; model {metadata.model_version} written to {export_dir}")
    return report


def recipe_for(config: TrainConfig, corners_are_background: bool) -> TrainConfig:
    """The recipe the data chooses where the config leaves it open: "plain-ground" for a
    small subject on a plain ground (the corners are background), "full-frame" otherwise,
    with its networks and epochs (`training.train.RECIPES`) where the config leaves those
    open. The first is built for a table and light unlike the training photos': it balances
    the colour cast away and trains through strong changes of framing, light and feature
    statistics. Where the subject fills the frame, the cast is the subject's own colour (a
    yellow dandelion, a red rose), and the detail those changes wash out is what tells the
    classes apart."""
    chosen = PLAIN_GROUND if corners_are_background else FULL_FRAME
    return config.with_recipe(config.recipe or chosen)


def held_out_accuracy(logits: np.ndarray, labels: np.ndarray, photos: int) -> dict[str, Any]:
    """Accuracy on the held-out photos, as taken (the first `photos` rows) and under every
    condition of the suite (the rest): photos the model never trained on. For training.full
    the only measure of generalisation, since it evaluates on its own training data. Accuracy
    only: the temperature and the threshold are fitted on these photos, so an ECE or a share
    kept measured on them would flatter."""
    right = logits.argmax(axis=1) == labels
    return {
        "n": photos,
        "accuracy": round(float(right[:photos].mean()), 4),
        "suite_mean_accuracy": round(float(right[photos:].mean()), 4),
        "note": "the photos the temperature and unknown threshold are fitted on; "
        "the suite with a seed apart from the evaluation's",
    }


def quantization_parity(
    evaluation: dict[str, Any],
    float_probabilities: np.ndarray,
    int8_probabilities: np.ndarray,
    data: LabelledImages,
    suites: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The quantised model against the float one on the same photos: accuracy clean and over
    the suite within PARITY_MAX_ACCURACY_GAP, probabilities within PARITY_MAX_PROBABILITY_GAP."""
    accuracy = float((int8_probabilities.argmax(1) == data.labels).mean())
    gaps = {
        "accuracy_gap": abs(accuracy - evaluation["accuracy"]),
        "suite_mean_gap": abs(suites["int8"]["mean_accuracy"] - suites["float"]["mean_accuracy"]),
    }
    max_probability_gap = float(np.abs(int8_probabilities - float_probabilities).max())
    passed = (
        max(gaps.values()) <= PARITY_MAX_ACCURACY_GAP
        and max_probability_gap <= PARITY_MAX_PROBABILITY_GAP
    )
    return {
        "method": "LiteRT dynamic-range quantisation (int8 weights)",
        "accuracy": round(accuracy, 4),
        "suite_mean_accuracy": suites["int8"]["mean_accuracy"],
        "suite_worst": suites["int8"]["worst"],
        **{key: round(value, 4) for key, value in gaps.items()},
        "max_probability_gap": round(max_probability_gap, 4),
        "limits": {"accuracy": PARITY_MAX_ACCURACY_GAP, "probability": PARITY_MAX_PROBABILITY_GAP},
        "passed": passed,
    }
