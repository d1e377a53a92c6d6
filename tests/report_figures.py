"""Read the figures back out of a report page (training.report_page) as the tests compare
them with metrics.json: the headline `data-value`s, the per-class table, the confusion
matrix, and every external reference (a self-contained page has none)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class ReportFigures:
    values: dict[str, float] = field(default_factory=dict)  # headline id -> data-value
    precision: dict[str, float] = field(default_factory=dict)
    recall: dict[str, float] = field(default_factory=dict)
    confusion: list[list[int]] = field(default_factory=list)
    mistakes: int = 0  # thumbnails shown
    polylines: dict[str, int] = field(default_factory=dict)  # chart id -> lines drawn
    chosen_points: int = 0
    external: list[str] = field(default_factory=list)  # src/href not data: or #


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.figures = ReportFigures()
        self.row_class: str | None = None
        self.in_confusion = False
        self.chart: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        figures = self.figures
        for name in ("src", "href"):
            if name in found and not found[name].startswith(("data:", "#")):
                figures.external.append(found[name])
        if "data-value" in found:
            figures.values[found["id"]] = float(found["data-value"])
        if tag == "tr" and "data-class" in found:
            self.row_class = found["data-class"]
        if "data-precision" in found and self.row_class:
            figures.precision[self.row_class] = float(found["data-precision"])
        if "data-recall" in found and self.row_class:
            figures.recall[self.row_class] = float(found["data-recall"])
        if tag == "table":
            self.in_confusion = found.get("id") == "confusion"
        if self.in_confusion and tag == "tr":
            figures.confusion.append([])
        if self.in_confusion and "data-count" in found:
            figures.confusion[-1].append(int(found["data-count"]))
        if tag == "div" and found.get("id") in {"reliability", "threshold-curve", "curves"}:
            self.chart = found["id"]
        if tag == "polyline" and self.chart:
            figures.polylines[self.chart] = figures.polylines.get(self.chart, 0) + 1
        if tag == "circle" and "chosen" in found.get("class", ""):
            figures.chosen_points += 1
        if tag == "img" and found.get("src", "").startswith("data:image/png"):
            figures.mistakes += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.in_confusion = False
            self.figures.confusion = [row for row in self.figures.confusion if row]
        if tag == "div":
            self.chart = None


def figures_of(page: str) -> ReportFigures:
    reader = _Reader()
    reader.feed(page)
    return reader.figures
