"""Table tests of the model specs: every model's body, every enum value, every limit on both sides, fields of other
models refused naming the field and the model, and the README's model table drawn from the same specs."""

from __future__ import annotations

import pathlib
import re

import pytest

from airflow_provider_seedream import models, request
from airflow_provider_seedream import exceptions as exc

URL = "https://example.com/a.png"
README = pathlib.Path(__file__).resolve().parents[1] / "README.md"

# The body each model's smallest valid request sends, field names and order as kie's pages give them.
MINIMAL_BODIES = {
    "seedream/4.5-edit": {"prompt": "abc", "image_urls": [URL], "aspect_ratio": "1:1", "quality": "basic"},
    "seedream/4.5-text-to-image": {"prompt": "abc", "aspect_ratio": "1:1", "quality": "basic"},
    "seedream/5-lite-image-to-image": {"prompt": "abc", "image_urls": [URL], "aspect_ratio": "1:1",
                                       "quality": "basic"},
    "seedream/5-lite-text-to-image": {"prompt": "abc", "aspect_ratio": "1:1", "quality": "basic"},
    "bytedance/seedream-v4-edit": {"prompt": "abc", "image_urls": [URL], "image_size": "square_hd",
                                   "image_resolution": "1K", "max_images": 1},
    "bytedance/seedream-v4-text-to-image": {"prompt": "abc", "image_size": "square_hd", "image_resolution": "1K",
                                            "max_images": 1},
    "bytedance/seedream": {"prompt": "abc", "image_size": "square_hd", "guidance_scale": 2.5},
}


def minimal(model: str, **fields) -> request.TaskRequest:
    spec = models.SPECS[model]
    images = [URL] if spec.takes_images else None
    return request.TaskRequest(**{"prompt": "abc", "image_urls": images, "model": model, **fields})


def refused(task: request.TaskRequest) -> exc.SeedreamValidationError:
    with pytest.raises(exc.SeedreamValidationError) as err:
        request.build_input(task)
    return err.value


def test_the_table_covers_the_family_with_a_source_each():
    assert set(models.SPECS) == set(MINIMAL_BODIES) == set(models.SOURCES)
    assert set(models.models_of("edit")) | set(models.models_of("text-to-image")) == set(models.SPECS)
    assert not set(models.UNSPECIFIED_MODELS) & set(models.SPECS)


@pytest.mark.parametrize("model", sorted(MINIMAL_BODIES))
def test_minimal_request_sends_the_documented_body(model):
    body = request.build_input(minimal(model)).body()
    assert body == {"model": model, "input": MINIMAL_BODIES[model]}
    assert list(body["input"]) == list(MINIMAL_BODIES[model])  # kie's order: prompt first, image_urls next


@pytest.mark.parametrize("model", sorted(MINIMAL_BODIES))
def test_fingerprint_includes_the_model(model):
    other = next(name for name, spec in models.SPECS.items()
                 if name != model and spec.kind == models.SPECS[model].kind)
    same = request.build_input(minimal(model)).fingerprint()
    assert same == request.build_input(minimal(model)).fingerprint()
    assert same != request.build_input(minimal(other)).fingerprint()


CHOICES = [(model, spec.name, value) for model, ms in models.SPECS.items() for spec in ms.fields
           for value in spec.choices]


@pytest.mark.parametrize("model, field, value", CHOICES, ids=[f"{m}-{f}-{v}" for m, f, v in CHOICES])
def test_every_enum_value_is_accepted_and_sent(model, field, value):
    assert request.build_input(minimal(model, **{field: value})).body()["input"][field] == value


def _bounds(model: str) -> list[tuple[str, object, bool]]:
    """(field, value, accepted) at each limit of each field of ``model``, on both sides."""
    cases: list[tuple[str, object, bool]] = []
    for spec in models.SPECS[model].fields:
        low, high = spec.minimum, spec.maximum
        if spec.type == "text":
            cases += [(spec.name, "x" * int(low), True), (spec.name, "x" * int(high), True),
                      (spec.name, "x" * (int(high) + 1), False)]
            if low > 1:
                cases.append((spec.name, "x" * (int(low) - 1), False))
        elif spec.type == "urls":
            cases += [(spec.name, [URL] * int(high), True), (spec.name, [URL] * (int(high) + 1), False),
                      (spec.name, [], False)]
        elif spec.type == "integer" and low is not None:
            cases += [(spec.name, int(low), True), (spec.name, int(high), True), (spec.name, int(low) - 1, False),
                      (spec.name, int(high) + 1, False)]
        elif spec.type == "number":
            cases += [(spec.name, low, True), (spec.name, high, True), (spec.name, low - 0.01, False),
                      (spec.name, high + 0.01, False)]
    return cases


LIMITS = [(model, *case) for model in models.SPECS for case in _bounds(model)]


@pytest.mark.parametrize("model, field, value, accepted", LIMITS,
                         ids=[f"{m}-{f}-{len(v) if isinstance(v, (str, list)) else v}-{'ok' if a else 'refused'}"
                              for m, f, v, a in LIMITS])
def test_each_limit_holds_on_both_sides(model, field, value, accepted):
    task = minimal(model, **{field: value})
    if accepted:
        sent = request.build_input(task).body()["input"][field]
        assert sent == value
    else:
        error = refused(task)
        assert error.field == field and model in str(error)


def test_the_limits_differ_where_the_pages_do():
    # 5.0 Lite wants 3 characters where 4.5 takes 1; 4.0 takes 5000 where 4.5 stops at 3000; 4.0 takes 10 images.
    assert request.build_input(minimal("seedream/4.5-edit", prompt="ab")).body()["input"]["prompt"] == "ab"
    assert refused(minimal("seedream/5-lite-image-to-image", prompt="ab")).field == "prompt"
    assert request.build_input(minimal("bytedance/seedream-v4-edit", prompt="x" * 5000))
    assert "1 to 3000 characters" in str(refused(minimal("seedream/4.5-edit", prompt="x" * 5000)))
    assert "1 to 10 URLs" in str(refused(minimal("bytedance/seedream-v4-edit", image_urls=[URL] * 11)))


FOREIGN = [(model, name) for model, spec in models.SPECS.items()
           for name in ("image_urls", *models.OPTIONAL_FIELDS) if spec.field(name) is None]


@pytest.mark.parametrize("model, field", FOREIGN, ids=[f"{m}-{f}" for m, f in FOREIGN])
def test_a_field_of_another_model_is_refused_naming_field_and_model(model, field):
    donor = next(spec for spec in models.SPECS.values() if spec.field(field) is not None).field(field)
    value = [URL] if field == "image_urls" else (donor.choices[0] if donor.choices else donor.minimum or True)
    error = refused(minimal(model, **{field: value}))
    assert error.field == field
    assert str(error).startswith(f"{field}: model {model} has no such field (its fields: ")


@pytest.mark.parametrize("field, value, expected", [
    ("max_images", "3", 3), ("max_images", " 6 ", 6), ("seed", "42", 42), ("seed", -7, -7),
])
def test_templated_numbers_are_read_back(field, value, expected):
    assert request.build_input(minimal("bytedance/seedream-v4-edit", **{field: value})).body()["input"][field] \
        == expected


@pytest.mark.parametrize("model, field, value", [
    ("bytedance/seedream-v4-edit", "max_images", True), ("bytedance/seedream-v4-edit", "max_images", 2.0),
    ("bytedance/seedream-v4-edit", "max_images", "two"), ("bytedance/seedream-v4-edit", "seed", 1.5),
    ("bytedance/seedream", "guidance_scale", "high"), ("bytedance/seedream", "guidance_scale", float("nan")),
    ("bytedance/seedream", "seed", "None"), ("seedream/4.5-edit", "nsfw_checker", "false"),
])
def test_wrong_types_are_refused(model, field, value):
    assert refused(minimal(model, **{field: value})).field == field


def test_guidance_scale_takes_templated_decimals():
    assert request.build_input(minimal("bytedance/seedream", guidance_scale="7.5")).body()["input"][
        "guidance_scale"] == 7.5


@pytest.mark.parametrize("model, kind, fragment", [
    ("seedream/4.5-text-to-image", "edit", "seedream/4.5-text-to-image makes images from text"),
    ("bytedance/seedream-v4-edit", "text-to-image", "bytedance/seedream-v4-edit makes edits"),
    ("seedream/9-edit", "edit", "one of seedream/4.5-edit, seedream/5-lite-image-to-image, "
                                "bytedance/seedream-v4-edit; got 'seedream/9-edit'"),
    ("None", "edit", "rendered to the text 'None'"),
    (None, None, "one of seedream/4.5-edit"),
])
def test_a_model_of_the_wrong_kind_is_refused(model, kind, fragment):
    with pytest.raises(exc.SeedreamValidationError) as err:
        request.build_input(request.TaskRequest("abc", [URL], model=model), kind)
    assert err.value.field == "model" and fragment in str(err.value)


def test_required_fields_are_named_with_the_model():
    error = refused(request.TaskRequest("abc", None, model="bytedance/seedream-v4-edit"))
    assert str(error) == "image_urls: required by model bytedance/seedream-v4-edit (1 to 10 image URLs or files " \
                         "(jpeg, png or webp, at most 10 MB each))"


def test_readme_model_table_is_the_spec_table():
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- models:begin -->\n(.*?)\n<!-- models:end -->", text, re.S)
    assert found, "README.md has no model table between <!-- models:begin --> and <!-- models:end -->"
    assert found.group(1).strip() == models.markdown_table()
