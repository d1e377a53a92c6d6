"""Request and response bodies of the HTTP API. Their field descriptions hold for any model;
the examples /docs shows are made from the loaded model (`service.openapi`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.model import Classification

EXAMPLE_B64 = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHR..."


class HealthResponse(BaseModel):
    status: str = Field(examples=["ok"])
    model_version: str | None
    api_key_required: bool = Field(False, description="whether prediction routes need a key")
    feedback: bool = Field(False, description="whether /feedback keeps corrections")


class ErrorResponse(BaseModel):
    error: str = Field(description="machine-readable code", examples=["not_an_image"])
    detail: str = Field(examples=["image: the upload is not a recognisable image"])
    field: str | None = Field(None, description="the request part at fault", examples=["image"])


class PredictJSON(BaseModel):
    """One image as `image`, or several as `images`; base64 (standard or URL-safe, padding
    optional, a `data:` URL prefix allowed)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"image": EXAMPLE_B64}, {"images": [EXAMPLE_B64] * 2}]},
    )

    image: str | None = None
    images: list[str] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def exactly_one(self) -> PredictJSON:
        if (self.image is None) == (self.images is None):
            raise ValueError("send exactly one of `image` (one base64 string) or `images` (a list)")
        return self


class ExplainJSON(BaseModel):
    """One image as `image`, base64 as for /predict."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"image": EXAMPLE_B64}]}
    )

    image: str


class Novelty(BaseModel):
    score: float = Field(
        description="how little the image looks like any one of the classes: 0 for a clear "
        "case, up to log(number of classes) when the model cannot tell them apart",
    )
    threshold: float | None = Field(
        description="above it the answer is `unknown`; null when that answer is turned off "
        "(UNKNOWN_THRESHOLD=off)",
    )


class Prediction(BaseModel):
    label: str = Field(
        description="the predicted class (one of the model's labels), or `unknown` when the "
        "photo does not look like any of them"
    )
    index: int | None = Field(
        description="the class's index in the model's label order; null for unknown"
    )
    probabilities: dict[str, float] = Field(
        description="every class's probability, keyed by label, also for an unknown answer; "
        "they sum to 1"
    )
    novelty: Novelty | None = Field(
        None, description="the novelty score and the threshold in use (null: the model has none)"
    )
    model_version: str

    @staticmethod
    def body(classification: Classification, model_version: str) -> dict[str, Any]:
        """The answer as this model documents it, built as the JSON object sent: the
        service's own answers are not validated again on their way out (the tests check
        every route's answers against the model)."""
        novelty = None
        if classification.novelty is not None:
            novelty = {
                "score": round(float(classification.novelty), 4),
                "threshold": classification.threshold,
            }
        return {
            "label": classification.label,
            "index": classification.index,
            "probabilities": classification.probability_map(),
            "novelty": novelty,
            "model_version": model_version,
        }


HEATMAP_DESCRIPTION = (
    "where the answer came from: 8x8 values in 0..1 over the centre square the model sees "
    "(row 0 the top, column 0 the left): how much the predicted class's lead over the "
    "next class (in logits) drops when each cell of a 4x4 grid is hidden, interpolated and "
    "scaled to its peak"
)
EXAMPLE_HEATMAP = [[0.0] * 8, [0.0, 0.1, 0.4, 0.6, 0.6, 0.4, 0.1, 0.0]] + [[0.0] * 8] * 6


def heatmap_rows(classification: Classification) -> list[list[float]]:
    if classification.heatmap is None:
        raise ValueError("the classification carries no heatmap")
    return [[round(float(v), 4) for v in row] for row in classification.heatmap]


class Explanation(Prediction):
    heatmap: list[list[float]] = Field(description=HEATMAP_DESCRIPTION, examples=[EXAMPLE_HEATMAP])

    @classmethod
    def of(cls, classification: Classification, model_version: str) -> Explanation:
        prediction = Prediction.body(classification, model_version)
        return cls(**prediction, heatmap=heatmap_rows(classification))


class BatchPrediction(BaseModel):
    predictions: list[Prediction] = Field(description="one per image, in request order")


ERROR_RESPONSES = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "not an image, corrupt or unsupported image, malformed body",
        413: "body or image too large",
        415: "content type is neither multipart/form-data nor application/json",
        422: "missing field, invalid base64 or JSON, too many images",
    }.items()
}


# --- TensorFlow Serving / Cloud ML Engine REST form -------------------------------------------


class Base64Bytes(BaseModel):
    b64: str


class TFServingInstance(BaseModel):
    """`{"bytes": {"b64": ...}}`, `{"image_bytes": {"b64": ...}}` or `{"b64": ...}`."""

    model_config = ConfigDict(extra="forbid")

    bytes: Base64Bytes | None = None
    image_bytes: Base64Bytes | None = None
    b64: str | None = None

    @model_validator(mode="after")
    def exactly_one(self) -> TFServingInstance:
        if sum(v is not None for v in (self.bytes, self.image_bytes, self.b64)) != 1:
            raise ValueError('an instance is {"bytes": {"b64": "..."}} (or image_bytes, or b64)')
        return self

    @property
    def base64(self) -> str:
        if self.b64 is not None:
            return self.b64
        wrapped = self.bytes or self.image_bytes
        assert wrapped is not None  # guaranteed by exactly_one
        return wrapped.b64


class TFServingRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"instances": [{"bytes": {"b64": EXAMPLE_B64}}]}]}
    )

    instances: list[TFServingInstance] = Field(min_length=1)


class TFServingPrediction(BaseModel):
    classes: int = Field(
        description="the index of the most probable class, also when `unknown` is true"
    )
    probabilities: list[float] = Field(description="in the model's label order")
    unknown: bool = Field(False, description="the photo does not look like any of the classes")

    @staticmethod
    def body(classification: Classification) -> dict[str, Any]:
        """As `Prediction.body`: the JSON object sent, not validated again."""
        return {
            "classes": classification.top_index,
            "probabilities": list(classification.probabilities),
            "unknown": classification.unknown,
        }


class TFServingResponse(BaseModel):
    predictions: list[TFServingPrediction]
    model_version: str = Field(description="the model version that answered")


class TFServingExplanation(TFServingPrediction):
    heatmap: list[list[float]] = Field(description=HEATMAP_DESCRIPTION, examples=[EXAMPLE_HEATMAP])


class TFServingExplainResponse(BaseModel):
    explanations: list[TFServingExplanation]
    model_version: str = Field(description="the model version that answered")


class TFServingVersionStatus(BaseModel):
    version: str
    state: str
    status: dict[str, str]


class TFServingModelStatus(BaseModel):
    model_version_status: list[TFServingVersionStatus]
