"""The Seedream family on kie.ai, as data: per model its kind, its input fields, their types, limits and defaults.

Pure and free of I/O. ``request`` checks a request against its model's spec before anything is sent, builds the
createTask body from it, and the README's model table is drawn from it (``markdown_table``; a test keeps the two
equal). The emulator keeps its own statement of the same facts, written from kie's pages, so that a wrong spec here
is caught there instead of copied.

Sources, one page per model (kie's docs, read through the notes in ``shared/notes/kie-api.md``):
``SOURCES`` maps each model to its page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["edit", "text-to-image"]
KINDS: tuple[Kind, ...] = ("edit", "text-to-image")

#: How a field's value is checked: ``text`` (a string, ``minimum``..``maximum`` characters), ``urls`` (a list of
#: ``minimum``..``maximum`` http(s) URLs), ``choice`` (one of ``choices``), ``integer`` and ``number`` (within
#: ``minimum``..``maximum`` when given), ``switch`` (true or false).
FieldType = Literal["text", "urls", "choice", "integer", "number", "switch"]


@dataclass(frozen=True)
class FieldSpec:
    """One input field of a model, named as kie names it in ``input``."""

    name: str
    type: FieldType
    required: bool = False
    #: Sent when the request leaves the field unset (kie documents the same default); ``None``: not sent.
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    #: A word on the values, for errors and the README (``basic`` = 2K ...).
    note: str = ""

    def limits(self) -> str:
        """The allowed values in words, as an error and the README give them."""
        if self.type == "choice":
            text = ", ".join(self.choices)
        elif self.type == "text":
            text = f"{_number(self.minimum or 1)} to {_number(self.maximum)} characters"
        elif self.type == "urls":
            text = f"{_number(self.minimum or 1)} to {_number(self.maximum)} image URLs or files"
        elif self.type == "switch":
            text = "true or false"
        elif self.minimum is not None and self.maximum is not None:
            text = f"{'an integer' if self.type == 'integer' else 'a number'} from {_number(self.minimum)} to " \
                   f"{_number(self.maximum)}"
        else:
            text = "an integer" if self.type == "integer" else "a number"
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class ModelSpec:
    """A model of the family: its kie id, what it does, and its input fields in kie's order."""

    model: str
    kind: Kind
    title: str
    fields: tuple[FieldSpec, ...]

    def field(self, name: str) -> FieldSpec | None:
        return next((spec for spec in self.fields if spec.name == name), None)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.fields)

    @property
    def takes_images(self) -> bool:
        return self.field("image_urls") is not None


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


ASPECT_RATIOS = ("1:1", "4:3", "3:4", "16:9", "9:16", "2:3", "3:2", "21:9")
QUALITIES = ("basic", "high")
IMAGE_SIZES_V4 = ("square", "square_hd", "portrait_4_3", "portrait_3_2", "portrait_16_9", "landscape_4_3",
                  "landscape_3_2", "landscape_16_9", "landscape_21_9")
# Seedream 3.0's page gives six sizes; these six are the 4.0 list less the 3:2 and 21:9 shapes [uncertain].
IMAGE_SIZES_V3 = ("square", "square_hd", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9")
RESOLUTIONS = ("1K", "2K", "4K")

_NSFW = FieldSpec("nsfw_checker", "switch", note="kie's content filter; unset leaves kie's default")
_SEED = FieldSpec("seed", "integer", note="the same seed and inputs repeat a result")


def _prompt(minimum: int, maximum: int) -> FieldSpec:
    return FieldSpec("prompt", "text", required=True, minimum=minimum, maximum=maximum)


def _images(maximum: int) -> FieldSpec:
    return FieldSpec("image_urls", "urls", required=True, minimum=1, maximum=maximum,
                     note="jpeg, png or webp, at most 10 MB each")


def _v45(high: str) -> tuple[FieldSpec, FieldSpec]:
    # The 4.5 schema lists both as required although it gives them defaults: they are always sent.
    return (FieldSpec("aspect_ratio", "choice", default="1:1", choices=ASPECT_RATIOS),
            FieldSpec("quality", "choice", default="basic", choices=QUALITIES, note=f"basic = 2K, high = {high}"))


def _v4_shape() -> tuple[FieldSpec, ...]:
    return (FieldSpec("image_size", "choice", default="square_hd", choices=IMAGE_SIZES_V4),
            FieldSpec("image_resolution", "choice", default="1K", choices=RESOLUTIONS),
            FieldSpec("max_images", "integer", default=1, minimum=1, maximum=6,
                      note="the prompt should ask for as many"))


SPECS: dict[str, ModelSpec] = {spec.model: spec for spec in (
    ModelSpec("seedream/4.5-edit", "edit", "Seedream 4.5 edit",
              (_prompt(1, 3000), _images(14), *_v45("4K"), _NSFW)),
    ModelSpec("seedream/4.5-text-to-image", "text-to-image", "Seedream 4.5 text to image",
              (_prompt(1, 3000), *_v45("4K"), _NSFW)),
    ModelSpec("seedream/5-lite-image-to-image", "edit", "Seedream 5.0 Lite image to image",
              (_prompt(3, 3000), _images(14), *_v45("4K"), _NSFW)),
    ModelSpec("seedream/5-lite-text-to-image", "text-to-image", "Seedream 5.0 Lite text to image",
              (_prompt(3, 3000), *_v45("3K"), _NSFW)),
    ModelSpec("bytedance/seedream-v4-edit", "edit", "Seedream 4.0 edit",
              (_prompt(1, 5000), _images(10), *_v4_shape(), _SEED, _NSFW)),
    ModelSpec("bytedance/seedream-v4-text-to-image", "text-to-image", "Seedream 4.0 text to image",
              (_prompt(1, 5000), *_v4_shape(), _SEED, _NSFW)),
    ModelSpec("bytedance/seedream", "text-to-image", "Seedream 3.0 text to image",
              (_prompt(1, 5000),
               FieldSpec("image_size", "choice", default="square_hd", choices=IMAGE_SIZES_V3),
               FieldSpec("guidance_scale", "number", default=2.5, minimum=1, maximum=10,
                         note="how closely to follow the prompt"),
               _SEED)),
)}

#: kie's page for each model (where the facts above were read).
SOURCES = {
    "seedream/4.5-edit": "https://docs.kie.ai/market/seedream/4-5-edit",
    "seedream/4.5-text-to-image": "https://docs.kie.ai/market/seedream/4-5-text-to-image",
    "seedream/5-lite-image-to-image": "https://docs.kie.ai/market/seedream-5-lite-image-to-image",
    "seedream/5-lite-text-to-image": "https://docs.kie.ai/market/seedream/5-lite-text-to-image",
    "bytedance/seedream-v4-edit": "https://docs.kie.ai/market/seedream/seedream-v4-edit",
    "bytedance/seedream-v4-text-to-image": "https://docs.kie.ai/market/seedream/seedream-v4-text-to-image",
    "bytedance/seedream": "https://docs.kie.ai/market/seedream/seedream",
}

#: Newer members in kie's index whose fields are not known here: ``SeedreamHook.create_task`` sends their input as
#: given (unvalidated, and says so); the sensor and the triggers wait for any Market task.
UNSPECIFIED_MODELS = (
    "seedream/5-pro-text-to-image", "seedream/5-pro-image-to-image", "seedream/5-pro-layer-decomposition",
    "seedream/5-flash-text-to-image", "seedream/5-flash-image-to-image", "seedream/5-flash-layer-decomposition",
)

DEFAULT_EDIT_MODEL = "seedream/4.5-edit"
DEFAULT_TEXT_TO_IMAGE_MODEL = "seedream/4.5-text-to-image"

#: Every optional field some model has, as the operators take them (``None``: unset).
OPTIONAL_FIELDS = ("aspect_ratio", "quality", "image_size", "image_resolution", "max_images", "seed",
                   "guidance_scale", "nsfw_checker")


def spec_for(model: str) -> ModelSpec | None:
    """The spec of a family model, or ``None`` for a model this table does not know."""
    return SPECS.get(model) if isinstance(model, str) else None


def models_of(kind: Kind) -> tuple[str, ...]:
    """The family's models of one kind, in the table's order."""
    return tuple(name for name, spec in SPECS.items() if spec.kind == kind)


def markdown_table() -> str:
    """The README's model table: one row per model and field, drawn from ``SPECS``."""
    lines = ["| model | kind | field | required | default | allowed values |", "|---|---|---|---|---|---|"]
    for spec in SPECS.values():
        for index, item in enumerate(spec.fields):
            head = f"`{spec.model}` | {spec.kind}" if index == 0 else " | "
            default = "-" if item.default is None else f"`{item.default}`"
            lines.append(f"| {head} | `{item.name}` | {'yes' if item.required else 'no'} | {default} | "
                         f"{item.limits()} |")
    return "\n".join(lines)
