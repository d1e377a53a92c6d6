"""`report.html`: the page people look at after training, written into every model folder and
by `training.evaluate --html`. One self-contained file: charts are inline SVG and photos are
PNG data URIs, with no script and nothing fetched from anywhere, so it opens from a bucket, a
mail attachment or the service's `/model` route alike.

Its figures are the report's (`metrics.json`): accuracy, ECE, the per-class table, the
confusion matrix, the threshold and the photo-condition table are printed from it, not
recomputed. What metrics.json does not hold, the photos themselves, is `Evidence`: the
mistakes' thumbnails, the reliability diagram and the threshold's trade-off curve."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from service.runtime import ModelMetadata
from training.report import ECE_BINS

MAX_MISTAKES = 48  # thumbnails shown, most confident mistakes first
THUMB_PX = 96


@dataclass(frozen=True)
class Evidence:
    """The evaluated photos and the model's answers for them, as the report's figures were
    measured: uint8 images [N, s, s, 3], true labels [N], probabilities [N, classes], and the
    novelty scores of these photos and of images of none of the classes (None without an
    unknown answer)."""

    images: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray
    novelty: np.ndarray | None = None
    non_class_novelty: np.ndarray | None = None


def report_title(metadata: ModelMetadata) -> str:
    return f"{metadata.title or metadata.name} · model {metadata.model_version}"


def write_report_html(path: Path, report: dict[str, Any], evidence: Evidence, title: str) -> None:
    path.write_text(render_report(report, evidence, title), encoding="utf-8")


def render_report(report: dict[str, Any], evidence: Evidence, title: str) -> str:
    """The whole page. `report` has metrics.json's shape: `evaluation` (required),
    `evaluated_on`, `model_version`, `trained_on`, `unknown`, `calibration`, `corruptions`,
    `history` (each optional)."""
    evaluation = report["evaluation"]
    sections = [
        _headline(report),
        _per_class(evaluation),
        _confusion(evaluation),
        _mistakes(evidence, evaluation["class_names"]),
        _reliability(evidence, evaluation["ece"]),
        _threshold_curve(evidence, report.get("unknown")),
        _conditions(report.get("corruptions")),
        _curves(report.get("history")),
    ]
    return PAGE.format(title=_esc(title), body="\n".join(sections))


def _headline(report: dict[str, Any]) -> str:
    evaluation = report["evaluation"]
    figures = [
        ("accuracy", "Accuracy", evaluation["accuracy"], f"{evaluation['accuracy']:.2%}"),
        ("ece", "Calibration error (ECE)", evaluation["ece"], f"{evaluation['ece']:.4f}"),
        ("errors", "Mistakes", evaluation["errors"],
         f"{evaluation['errors']} of {evaluation['n']}"),
    ]  # fmt: skip
    unknown = report.get("unknown")
    if unknown:
        figures += [
            ("threshold", "Unknown threshold", unknown["threshold"], f"{unknown['threshold']:.4f}"),
            ("kept-correct", "Kept with the right label", unknown["kept_correct"],
             f"{unknown['kept_correct']:.2%}"),
            ("non-class-unknown", "Images of none of the classes answered unknown",
             unknown["non_mug_validation_unknown"], f"{unknown['non_mug_validation_unknown']:.2%}"),
        ]  # fmt: skip
    calibration = report.get("calibration")
    if calibration:
        figures.append(
            ("temperature", "Temperature", calibration["temperature"],
             f"{calibration['temperature']:.4f}")
        )  # fmt: skip
    cells = "".join(
        f'<div class="figure"><dt>{_esc(label)}</dt>'
        f'<dd id="{key}" data-value="{value}">{_esc(text)}</dd></div>'
        for key, label, value, text in figures
    )
    about = [("Model version", report.get("model_version")),
             ("Evaluated on", report.get("evaluated_on")),
             ("Trained on", report.get("trained_on"))]  # fmt: skip
    facts = "".join(f"<li>{label}: {_esc(str(value))}</li>" for label, value in about if value)
    counts = report.get("eval_counts")
    if counts:
        facts += "<li>Photos per class: " + _esc(
            ", ".join(f"{name} {count}" for name, count in counts.items())
        )
    return f'<section><dl class="figures">{cells}</dl><ul class="about">{facts}</ul></section>'


def _per_class(evaluation: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr data-class="{_esc(name)}"><th>{_esc(name)}</th>'
        f'<td data-precision="{row["precision"]}">{row["precision"]:.3f}</td>'
        f'<td data-recall="{row["recall"]}">{row["recall"]:.3f}</td><td>{row["support"]}</td></tr>'
        for name, row in evaluation["per_class"].items()
    )
    return (
        '<section><h2>Per class</h2><table id="per-class"><thead><tr><th>class</th>'
        "<th>precision</th><th>recall</th><th>photos</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _confusion(evaluation: dict[str, Any]) -> str:
    names, matrix = evaluation["class_names"], evaluation["confusion_matrix"]
    largest = max((max(row) for row in matrix), default=0) or 1
    head = "".join(f"<th>{_esc(name)}</th>" for name in names)
    rows = ""
    for name, row in zip(names, matrix, strict=True):
        cells = "".join(
            f'<td data-count="{count}" style="background:rgba(37,99,235,{count / largest:.2f});'
            f'color:{"#fff" if count > largest / 2 else "inherit"}">{count}</td>'
            for count in row
        )
        rows += f"<tr><th>{_esc(name)}</th>{cells}</tr>"
    return (
        "<section><h2>Confusion matrix</h2><p>Rows are the true class, columns the answer.</p>"
        f'<table id="confusion"><thead><tr><th></th>{head}</tr></thead><tbody>{rows}</tbody>'
        "</table></section>"
    )


def _mistakes(evidence: Evidence, names: list[str]) -> str:
    answers = evidence.probabilities.argmax(1)
    wrong = np.flatnonzero(answers != evidence.labels)
    if not len(wrong):
        return '<section><h2>Mistakes</h2><p id="mistakes">None.</p></section>'
    confidence = evidence.probabilities[wrong, answers[wrong]]
    shown = wrong[np.argsort(-confidence, kind="stable")][:MAX_MISTAKES]
    tiles = "".join(
        f'<figure><img alt="" src="{_png_uri(evidence.images[i])}">'
        f"<figcaption>{_esc(names[evidence.labels[i]])} &rarr; <b>{_esc(names[answers[i]])}</b> "
        f"{evidence.probabilities[i, answers[i]]:.0%}</figcaption></figure>"
        for i in shown
    )
    more = f" The {len(shown)} most confident are shown." if len(wrong) > len(shown) else ""
    return (
        f"<section><h2>Mistakes</h2><p>{len(wrong)} photos, each with its true class, the "
        f"answer and the answer's probability.{more}</p>"
        f'<div id="mistakes" class="tiles">{tiles}</div></section>'
    )


def _reliability(evidence: Evidence, ece: float) -> str:
    """Accuracy against stated confidence in ECE_BINS bins: a calibrated model's bars reach
    the diagonal."""
    confidence = evidence.probabilities.max(1)
    correct = evidence.probabilities.argmax(1) == evidence.labels
    bins = np.minimum((confidence * ECE_BINS).astype(int), ECE_BINS - 1)
    plot = _Plot("confidence (top probability)", "accuracy")
    plot.line([(0, 0), (1, 1)], "#9ca3af", dashed=True)
    for b in range(ECE_BINS):
        members = bins == b
        if members.any():
            plot.bar(b / ECE_BINS, (b + 1) / ECE_BINS, float(correct[members].mean()),
                     f"{members.sum()} photos, accuracy {correct[members].mean():.2%}")  # fmt: skip
    return (
        f"<section><h2>Calibration</h2><p>Accuracy against the stated confidence, in "
        f"{ECE_BINS} bins; the bars of a calibrated model reach the diagonal. ECE {ece:.4f}."
        f'</p><div id="reliability">{plot.svg()}</div></section>'
    )


def _threshold_curve(evidence: Evidence, unknown: dict[str, Any] | None) -> str:
    if unknown is None or evidence.novelty is None or evidence.non_class_novelty is None:
        return "<section><h2>The unknown answer</h2><p>This model has none.</p></section>"
    scores = np.concatenate([evidence.novelty, evidence.non_class_novelty])
    thresholds = np.unique(np.quantile(scores, np.linspace(0, 1, 201)))
    points = [
        (float((evidence.novelty <= t).mean()), float((evidence.non_class_novelty > t).mean()))
        for t in thresholds
    ]
    chosen = unknown["threshold"]
    kept = float((evidence.novelty <= chosen).mean())
    refused = float((evidence.non_class_novelty > chosen).mean())
    plot = _Plot("share of the class photos kept", "share of the other images refused")
    plot.line(points, "#2563eb")
    plot.point(kept, refused, f"threshold {chosen:.4f}: kept {kept:.2%}, refused {refused:.2%}")
    return (
        "<section><h2>The unknown answer</h2><p>Every threshold on the novelty score, from "
        "refusing everything to keeping everything: the class photos kept against the images "
        f"of none of the classes ({len(evidence.non_class_novelty)}) answered unknown. The dot "
        f"is the chosen threshold, {chosen:.4f}: {kept:.2%} kept, {refused:.2%} refused.</p>"
        f'<div id="threshold-curve">{plot.svg()}</div></section>'
    )


def _conditions(corruptions: dict[str, Any] | None) -> str:
    if not corruptions:
        return (
            "<section><h2>Photo conditions</h2><p>Not measured for this report "
            "(<code>training.evaluate --corruptions</code> measures it).</p></section>"
        )
    rows = "".join(
        f"<tr><th>{_esc(c['name'].replace('_', ' '))}</th><td>{c['severity']}</td>"
        f"<td>{_esc(str(c['level']))}</td><td>{c['accuracy']:.2%}</td><td>{c['ece']:.4f}</td></tr>"
        for c in corruptions["conditions"]
    )
    return (
        "<section><h2>Photo conditions</h2><p>The evaluation photos under each condition of "
        f"the suite; mean accuracy {corruptions['mean_accuracy']:.2%}.</p>"
        '<table id="conditions"><thead><tr><th>condition</th><th>severity</th><th>level</th>'
        f"<th>accuracy</th><th>ECE</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _curves(history: dict[str, list[float]] | None) -> str:
    if not history or not history.get("loss"):
        return (
            "<section><h2>Training curves</h2><p>Not recorded in this model's metrics.json."
            "</p></section>"
        )
    loss = _Plot("epoch", "loss", x_max=len(history["loss"]), y_max=max(history["loss"]))
    accuracy = _Plot("epoch", "accuracy", x_max=len(history["loss"]))
    series = [("loss", loss, "#2563eb"), ("val_loss", loss, "#f59e0b"),
              ("accuracy", accuracy, "#2563eb"), ("val_accuracy", accuracy, "#f59e0b")]  # fmt: skip
    for key, plot, colour in series:
        values = history.get(key) or []
        every = history.get("val_every", 1) if key.startswith("val_") else 1
        plot.line([((i + 1) * every, v) for i, v in enumerate(values)], colour)
    return (
        "<section><h2>Training curves</h2><p>Blue: the training photos (augmented); orange: "
        f'the evaluation photos.</p><div id="curves" class="pair">{loss.svg()}{accuracy.svg()}'
        "</div></section>"
    )


class _Plot:
    """A square SVG chart from x_max by y_max data units (both from 0)."""

    SIZE, PAD = 320, 44

    def __init__(self, x_label: str, y_label: str, x_max: float = 1.0, y_max: float = 1.0):
        self.x_label, self.y_label = x_label, y_label
        self.x_max, self.y_max = x_max or 1.0, y_max or 1.0
        self.marks: list[str] = []

    def _xy(self, x: float, y: float) -> tuple[float, float]:
        span = self.SIZE - 2 * self.PAD
        return (self.PAD + x / self.x_max * span, self.SIZE - self.PAD - y / self.y_max * span)

    def line(self, points: list[tuple[float, float]], colour: str, dashed: bool = False) -> None:
        if not points:
            return
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in (self._xy(x, y) for x, y in points))
        dash = ' stroke-dasharray="4 4"' if dashed else ""
        self.marks.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{path}"/>'
        )

    def bar(self, x0: float, x1: float, height: float, tip: str) -> None:
        (left, top), (right, bottom) = self._xy(x0, height), self._xy(x1, 0)
        self.marks.append(
            f'<rect x="{left + 1:.1f}" y="{top:.1f}" width="{right - left - 2:.1f}" '
            f'height="{bottom - top:.1f}" fill="#2563eb" opacity="0.8"><title>{_esc(tip)}</title>'
            "</rect>"
        )

    def point(self, x: float, y: float, tip: str) -> None:
        px, py = self._xy(x, y)
        self.marks.append(
            f'<circle class="chosen" cx="{px:.1f}" cy="{py:.1f}" r="6" fill="#dc2626">'
            f"<title>{_esc(tip)}</title></circle>"
        )

    def svg(self) -> str:
        size, pad = self.SIZE, self.PAD
        low, high = pad, size - pad
        axes = (
            f'<path d="M{low},{low} V{high} H{high}" fill="none" stroke="#374151"/>'
            f'<text x="{size / 2}" y="{size - 8}" text-anchor="middle">{_esc(self.x_label)}</text>'
            f'<text transform="translate(12 {size / 2}) rotate(-90)" text-anchor="middle">'
            f"{_esc(self.y_label)}</text>"
            f'<text x="{low}" y="{high + 16}" text-anchor="middle">0</text>'
            f'<text x="{high}" y="{high + 16}" text-anchor="middle">{self.x_max:g}</text>'
            f'<text x="{low - 6}" y="{low + 4}" text-anchor="end">{self.y_max:.3g}</text>'
        )
        return (
            f'<svg viewBox="0 0 {size} {size}" width="{size}" height="{size}" role="img" '
            f'xmlns="http://www.w3.org/2000/svg">{axes}{"".join(self.marks)}</svg>'
        )


def _png_uri(image: np.ndarray) -> str:
    """A photo as a PNG data URI, scaled (nearest neighbour) to THUMB_PX on its longer side."""
    picture = Image.fromarray(image)
    scale = THUMB_PX / max(picture.size)
    if scale > 1:
        picture = picture.resize(
            (round(picture.width * scale), round(picture.height * scale)), Image.NEAREST
        )
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; color: #111827; margin: 0 auto; max-width: 60rem;
  padding: 1rem; }}
h1 {{ font-size: 1.6rem; }} h2 {{ font-size: 1.2rem; margin-top: 2rem; }}
.figures {{ display: flex; flex-wrap: wrap; gap: .75rem; margin: 0; }}
.figure {{ border: 1px solid #e5e7eb; border-radius: .5rem; padding: .5rem .75rem; }}
dt {{ font-size: .8rem; color: #4b5563; }} dd {{ margin: 0; font-size: 1.3rem; font-weight: 600; }}
.about {{ color: #4b5563; font-size: .9rem; }}
table {{ border-collapse: collapse; }}
th, td {{ padding: .25rem .6rem; text-align: right; border-bottom: 1px solid #e5e7eb; }}
th:first-child, #conditions td:nth-child(3) {{ text-align: left; }}
.tiles {{ display: flex; flex-wrap: wrap; gap: .5rem; }}
figure {{ margin: 0; width: 7rem; font-size: .75rem; }}
figure img {{ width: 96px; height: 96px; object-fit: contain; image-rendering: pixelated;
  background: #f3f4f6; }}
svg {{ max-width: 100%; height: auto; font-size: 11px; fill: #374151; }}
.pair {{ display: flex; flex-wrap: wrap; gap: 1rem; }}
</style>
</head>
<body>
<h1>{title}</h1>
{body}
</body>
</html>
"""
