"""The Seedream models kie serves on createTask, each stated on its own: its inputs, its output and its price.

Each statement is restated from that model's kie page (the link in ``ModelSpec.doc``), as summarised in the research
notes ``shared/notes/kie-api.md`` section 1 ("input for seedream/4.5-edit", "Sibling: seedream/4.5-text-to-image",
"Other Seedream models on kie"), with the raw OpenAPI schemas of the same pages (Chinese mirror
github.com/henjicc/Henji-AI, ``docs/api/KIE/Image Models/Seedream/003..009``) for what the notes leave out (which
fields are under ``required``, the type of ``max_images``). Nothing here is shared with the provider's client: the
client states what it sends, this module states what kie accepts, and the tests find out whether they agree.

How strict the emulator is where the documents are silent or loose (the rule is: refuse what kie might refuse, so
that a client leaning on undocumented leniency fails here first):

- A field listed under the schema's ``required`` is enforced as present even when the schema also gives it a
  default: ``aspect_ratio`` and ``quality`` for the 4.5 and the 5-lite models (all four schemas list them).
- A field with a default that the schema does not list as required (4.0's ``image_size``, ``image_resolution``,
  ``max_images``; 3.0's ``image_size``, ``guidance_scale``) is optional, and its default decides the output.
  ``seed`` and ``nsfw_checker`` are optional and change nothing in the output.
- A field the model does not have (``image_urls`` on a text-to-image model, ``max_images`` on 4.5, ``quality`` on
  4.0, ...) is refused: kie's pages state each model's fields, and a misspelt or misplaced field would otherwise
  be dropped silently by kie (or refused: undocumented), which no client should count on.
- Types are strict: a boolean is not an integer, a string is not a number, and a JSON number with a fraction part
  (``3.0`` included) is not an integer; ``max_images`` is refused as a float although the 4.0 schemas type it
  ``number`` with "step 1", because a whole count is what the page describes. ``null`` counts as absent for a
  required field and is refused for an optional one (it is not of the field's type).
- Limits are inclusive; a prompt must hold a non-blank character, and is measured in characters as sent.
- ``seed`` accepts any integer (the 4.0 doc example sends ``-88165251``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: ``aspect_ratio`` enum of the 4.5 and 5-lite pages (the same eight values on all four).
ASPECT_RATIOS: tuple[str, ...] = ("1:1", "4:3", "3:4", "16:9", "9:16", "2:3", "3:2", "21:9")
#: ``quality`` enum of the 4.5 and 5-lite pages.
QUALITIES: tuple[str, ...] = ("basic", "high")
#: ``image_size`` of the 4.0 pages -> the aspect ratio it gives ("square" and "square_hd" are both 1:1; the size
#: in pixels comes from ``image_resolution``: "4:3 + 4K gives 4096 x 3072", 4.0 pages, ``image_resolution``).
IMAGE_SIZE_RATIOS_V4: dict[str, str] = {
    "square": "1:1",
    "square_hd": "1:1",
    "portrait_4_3": "3:4",
    "portrait_3_2": "2:3",
    "portrait_16_9": "9:16",
    "landscape_4_3": "4:3",
    "landscape_3_2": "3:2",
    "landscape_16_9": "16:9",
    "landscape_21_9": "21:9",
}
#: ``image_size`` of the 3.0 page. kie-api.md only says "6 values"; these six are assumed **[UNCERTAIN]** (they are
#: the six of the 3.0 schema in the Henji-AI mirror: the 4.0 list without portrait_3_2, landscape_3_2,
#: landscape_21_9).
IMAGE_SIZE_RATIOS_V3: dict[str, str] = {
    name: IMAGE_SIZE_RATIOS_V4[name]
    for name in ("square", "square_hd", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9")
}
#: 4.0 ``image_resolution`` -> long side in pixels (the 4.0 pages: 4:3 at 4K is 4096 x 3072).
RESOLUTIONS_V4: dict[str, int] = {"1K": 1024, "2K": 2048, "4K": 4096}
#: 3.0 long side per ``image_size``. **Assumption**: the 3.0 page gives no pixel sizes; "square" is taken as 1K
#: and "square_hd" as 2K, and the four other shapes (which have no "_hd" twin) as the 2K class of the default.
LONG_SIDES_V3: dict[str, int] = {name: 2048 for name in IMAGE_SIZE_RATIOS_V3} | {"square": 1024}

#: Price of one Seedream 4.5 image: 6.5 credits (kie pricing snapshot of 2026-06-30, kie-api.md section 6).
CREDITS_4_5 = 6.5
#: Price of one Seedream 5.0 Lite image: $0.0275 = 5.5 credits at $0.005 a credit (same pricing snapshot, rows
#: "seedream 5.0 Lite, image-to-image / text-to-image"; kie-api.md itself lists only 4.5) **[UNCERTAIN]**.
CREDITS_5_LITE = 5.5
#: Price of one Seedream 4.0 or 3.0 image: not in the notes nor in that snapshot; **assumed** to be 4.5's.
CREDITS_ASSUMED = CREDITS_4_5

EDIT = "edit"
TEXT_TO_IMAGE = "text-to-image"

#: Field kinds (what ``validation`` checks for each).
TEXT, URLS, CHOICE, BOOLEAN, INTEGER, NUMBER = "text", "urls", "choice", "boolean", "integer", "number"


@dataclass(frozen=True)
class FieldSpec:
    """One ``input`` field of one model, as its page states it.

    :param name: the key under ``input``.
    :param kind: ``text`` (length in characters), ``urls`` (array of http(s) URIs, length in items), ``choice``
        (one of ``choices``), ``boolean``, ``integer`` or ``number`` (value within ``minimum``..``maximum``).
    :param required: refused when absent (or ``null``).
    :param default: the value kie uses when the field is absent (``None``: none documented, or not needed).
    :param minimum: least length (text, urls) or value (integer, number), inclusive; ``None``: no bound.
    :param maximum: greatest length or value, inclusive; ``None``: no bound.
    :param choices: the allowed values of a ``choice``.
    """

    name: str
    kind: str
    required: bool = False
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Output:
    """What a task of a model makes: ``count`` images of ``aspect_ratio`` whose long side is ``long_side`` pixels."""

    aspect_ratio: str
    long_side: int
    count: int = 1


@dataclass(frozen=True)
class ModelSpec:
    """One Seedream model on kie's createTask: its fields, how they decide the output, its price per image.

    :param name: the ``model`` value.
    :param kind: ``edit`` (takes ``image_urls``) or ``text-to-image``.
    :param doc: the kie page this statement is written from.
    :param fields: the ``input`` fields, in the page's order.
    :param shape_field: the field giving the shape (``aspect_ratio`` or ``image_size``).
    :param shape_ratios: value of ``shape_field`` -> aspect ratio ``"w:h"``.
    :param scale_field: the field giving the size class (``quality``, ``image_resolution``), or ``None`` when the
        shape alone decides it.
    :param long_sides: value of ``scale_field`` (or of ``shape_field`` when ``scale_field`` is ``None``) -> long
        side in pixels.
    :param count_field: the field giving the number of images (``max_images``), or ``None`` for one image.
    :param credits_per_image: price of one output image.
    """

    name: str
    kind: str
    doc: str
    fields: tuple[FieldSpec, ...]
    shape_field: str
    shape_ratios: Mapping[str, str]
    scale_field: str | None
    long_sides: Mapping[str, int]
    credits_per_image: float
    count_field: str | None = None

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields)

    def field(self, name: str) -> FieldSpec:
        """Return the field called ``name`` (``KeyError`` if the model has none)."""
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(name)

    def value(self, data: Mapping[str, Any], name: str) -> Any:
        """Return ``input[name]`` as kie would use it: the sent value, else the field's default."""
        sent = data.get(name)
        return self.field(name).default if sent is None else sent

    def output(self, data: Mapping[str, Any]) -> Output:
        """Return what a task with the (already validated) ``input`` makes, at true (unscaled) size."""
        shape = self.value(data, self.shape_field)
        scale = shape if self.scale_field is None else self.value(data, self.scale_field)
        count = 1 if self.count_field is None else int(self.value(data, self.count_field))
        return Output(aspect_ratio=self.shape_ratios[shape], long_side=self.long_sides[scale], count=count)


# --------------------------------------------------------------------------- the fields, page by page


def _prompt(minimum: int, maximum: int) -> FieldSpec:
    return FieldSpec("prompt", TEXT, required=True, minimum=minimum, maximum=maximum)


def _image_urls(maximum: int) -> FieldSpec:
    # "required" on every edit page, with no minItems: required is taken to mean at least one.
    return FieldSpec("image_urls", URLS, required=True, minimum=1, maximum=maximum)


#: 4.5 and 5-lite: listed under ``required`` although they have defaults, so enforced as present (see above).
_ASPECT_RATIO = FieldSpec("aspect_ratio", CHOICE, required=True, default="1:1", choices=ASPECT_RATIOS)
_QUALITY = FieldSpec("quality", CHOICE, required=True, default="basic", choices=QUALITIES)
_NSFW_CHECKER = FieldSpec("nsfw_checker", BOOLEAN)
_SEED = FieldSpec("seed", INTEGER)
_IMAGE_SIZE_V4 = FieldSpec("image_size", CHOICE, default="square_hd", choices=tuple(IMAGE_SIZE_RATIOS_V4))
_IMAGE_RESOLUTION_V4 = FieldSpec("image_resolution", CHOICE, default="1K", choices=tuple(RESOLUTIONS_V4))
_MAX_IMAGES_V4 = FieldSpec("max_images", INTEGER, default=1, minimum=1, maximum=6)

#: 4.5: basic = 2K output, high = 4K output (4.5 edit and text-to-image pages, ``quality``).
_LONG_SIDES_4_5 = {"basic": 2048, "high": 4096}
_RATIOS = {ratio: ratio for ratio in ASPECT_RATIOS}


def _v4(name: str, doc: str, kind: str) -> ModelSpec:
    urls = (_image_urls(10),) if kind == EDIT else ()
    return ModelSpec(
        name=name,
        kind=kind,
        doc=doc,
        fields=(_prompt(1, 5000), *urls, _IMAGE_SIZE_V4, _IMAGE_RESOLUTION_V4, _MAX_IMAGES_V4, _SEED, _NSFW_CHECKER),
        shape_field="image_size",
        shape_ratios=IMAGE_SIZE_RATIOS_V4,
        scale_field="image_resolution",
        long_sides=RESOLUTIONS_V4,
        count_field="max_images",
        credits_per_image=CREDITS_ASSUMED,
    )


_SPECS: tuple[ModelSpec, ...] = (
    # kie-api.md, "input for seedream/4.5-edit": prompt <= 3000, image_urls <= 14 (required), aspect_ratio and
    # quality listed as required, nsfw_checker.
    ModelSpec(
        name="seedream/4.5-edit",
        kind=EDIT,
        doc="https://docs.kie.ai/market/seedream/4-5-edit",
        fields=(_prompt(1, 3000), _image_urls(14), _ASPECT_RATIO, _QUALITY, _NSFW_CHECKER),
        shape_field="aspect_ratio",
        shape_ratios=_RATIOS,
        scale_field="quality",
        long_sides=_LONG_SIDES_4_5,
        credits_per_image=CREDITS_4_5,
    ),
    # kie-api.md, "Sibling: seedream/4.5-text-to-image": the same fields minus image_urls.
    ModelSpec(
        name="seedream/4.5-text-to-image",
        kind=TEXT_TO_IMAGE,
        doc="https://docs.kie.ai/market/seedream/4-5-text-to-image",
        fields=(_prompt(1, 3000), _ASPECT_RATIO, _QUALITY, _NSFW_CHECKER),
        shape_field="aspect_ratio",
        shape_ratios=_RATIOS,
        scale_field="quality",
        long_sides=_LONG_SIDES_4_5,
        credits_per_image=CREDITS_4_5,
    ),
    # kie-api.md, family table, seedream/5-lite-image-to-image: "like 4.5-edit (image_urls <= 14, ...; prompt
    # 3-3000; quality basic=2K/high=4K)".
    ModelSpec(
        name="seedream/5-lite-image-to-image",
        kind=EDIT,
        doc="https://docs.kie.ai/market/seedream-5-lite-image-to-image",
        fields=(_prompt(3, 3000), _image_urls(14), _ASPECT_RATIO, _QUALITY, _NSFW_CHECKER),
        shape_field="aspect_ratio",
        shape_ratios=_RATIOS,
        scale_field="quality",
        long_sides=_LONG_SIDES_4_5,
        credits_per_image=CREDITS_5_LITE,
    ),
    # kie-api.md, family table, seedream/5-lite-text-to-image: prompt 3-3000; aspect_ratio (same 8); quality
    # basic/high, "high = 3K for this one".
    ModelSpec(
        name="seedream/5-lite-text-to-image",
        kind=TEXT_TO_IMAGE,
        doc="https://docs.kie.ai/market/seedream/5-lite-text-to-image",
        fields=(_prompt(3, 3000), _ASPECT_RATIO, _QUALITY, _NSFW_CHECKER),
        shape_field="aspect_ratio",
        shape_ratios=_RATIOS,
        scale_field="quality",
        long_sides={"basic": 2048, "high": 3072},
        credits_per_image=CREDITS_5_LITE,
    ),
    # kie-api.md, family table, bytedance/seedream-v4-edit: prompt <= 5000; image_urls <= 10; image_size (9,
    # default square_hd); image_resolution 1K/2K/4K (default 1K); max_images 1-6 (default 1); seed; nsfw_checker.
    _v4("bytedance/seedream-v4-edit", "https://docs.kie.ai/market/seedream/seedream-v4-edit", EDIT),
    # kie-api.md, family table, bytedance/seedream-v4-text-to-image: "as 4.0 edit without image_urls".
    _v4(
        "bytedance/seedream-v4-text-to-image",
        "https://docs.kie.ai/market/seedream/seedream-v4-text-to-image",
        TEXT_TO_IMAGE,
    ),
    # kie-api.md, family table, bytedance/seedream (3.0): prompt <= 5000; image_size (6 values, default square_hd);
    # guidance_scale 1-10 (default 2.5); seed. No nsfw_checker on this page.
    ModelSpec(
        name="bytedance/seedream",
        kind=TEXT_TO_IMAGE,
        doc="https://docs.kie.ai/market/seedream/seedream",
        fields=(
            _prompt(1, 5000),
            FieldSpec("image_size", CHOICE, default="square_hd", choices=tuple(IMAGE_SIZE_RATIOS_V3)),
            FieldSpec("guidance_scale", NUMBER, default=2.5, minimum=1, maximum=10),
            _SEED,
        ),
        shape_field="image_size",
        shape_ratios=IMAGE_SIZE_RATIOS_V3,
        scale_field=None,
        long_sides=LONG_SIDES_V3,
        credits_per_image=CREDITS_ASSUMED,
    ),
)

#: Every Seedream model the emulator serves, by ``model`` value. The newer 5-pro and 5-flash models that kie's
#: index lists are not served: their fields have not been researched (kie-api.md: "not researched in detail").
MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}
