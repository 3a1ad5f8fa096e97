"""Every model of the family submitted, waited for and stored against the emulator (a real HTTP server that checks
each model's fields by its own statement of kie's pages), plus the generic ``create_task`` path and re-attachment
across models."""

from __future__ import annotations

import pytest

from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream import models
from airflow_provider_seedream.hooks.seedream import SeedreamHook
from airflow_provider_seedream.operators.seedream import (
    SeedreamBatchEditOperator,
    SeedreamEditOperator,
    SeedreamTextToImageOperator,
)
from airflow_provider_seedream.version_compat import TaskDeferred
from support import DictStateStore, RunningTI, context, run_trigger

# Per model: the fields a user sets, the body's input fields the emulator must receive, the result's shape
# (width / height) and how many images one task makes.
CASES = {
    "seedream/4.5-edit": ({"aspect_ratio": "16:9", "quality": "high"}, 16 / 9, 1),
    "seedream/4.5-text-to-image": ({"aspect_ratio": "21:9"}, 21 / 9, 1),
    "seedream/5-lite-image-to-image": ({"aspect_ratio": "3:4", "nsfw_checker": True}, 3 / 4, 1),
    "seedream/5-lite-text-to-image": ({"aspect_ratio": "2:3", "quality": "high"}, 2 / 3, 1),
    "bytedance/seedream-v4-edit": ({"image_size": "landscape_16_9", "image_resolution": "2K", "max_images": 3,
                                    "seed": 11}, 16 / 9, 3),
    "bytedance/seedream-v4-text-to-image": ({"image_size": "portrait_3_2", "max_images": 2}, 2 / 3, 2),
    "bytedance/seedream": ({"image_size": "portrait_4_3", "guidance_scale": 7.5, "seed": 3}, 3 / 4, 1),
}


def operator(emulator, model: str, **fields):
    common = {"task_id": "make", "prompt": "a red sneaker on white marble", "model": model, "poll_interval": 0.05,
              **fields}
    if models.SPECS[model].kind == "edit":
        return SeedreamEditOperator(image_urls=[emulator.sample_url()], **common)
    return SeedreamTextToImageOperator(**common)


def image_ratio(path) -> float:
    from PIL import Image

    with Image.open(path) as img:
        return img.width / img.height


def test_every_model_has_a_case():
    assert set(CASES) == set(models.SPECS)


@pytest.mark.parametrize("model", sorted(CASES))
def test_each_model_submitted_waited_for_and_stored(emulator, tmp_path, model):
    fields, ratio, count = CASES[model]
    op = operator(emulator, model, wait_for_completion=True, deferrable=False, output_path=str(tmp_path), **fields)
    ctx = context()
    ctx["ti"] = RunningTI(task_id="make")
    task_id = op.execute(ctx)

    sent = emulator.stats()["tasks"][task_id]["input"]
    defaults = {spec.name: spec.default for spec in models.SPECS[model].fields if spec.default is not None}
    assert {name: sent[name] for name in sent if name not in ("prompt", "image_urls")} == {**defaults, **fields}
    assert ("image_urls" in sent) == (models.SPECS[model].kind == "edit")
    xcoms = ctx["ti"].xcoms
    assert xcoms["seedream_task"]["model"] == model
    assert len(xcoms["result_urls"]) == len(set(xcoms["result_urls"])) == count
    stored = sorted(tmp_path.rglob("image-*"))
    assert [p.stem for p in stored] == [f"image-{i}" for i in range(count)]
    assert len(xcoms["stored_images"]) == count
    assert len({p.read_bytes() for p in stored}) == count  # several images are several pictures
    for path in stored:
        assert image_ratio(path) == pytest.approx(ratio, rel=0.03)


def test_text_to_image_defers_and_resumes_with_every_image(emulator, tmp_path):
    op = operator(emulator, "bytedance/seedream-v4-text-to-image", wait_for_completion=True, deferrable=True,
                  output_path=str(tmp_path), max_images=4)
    ctx = context()
    ctx["ti"] = RunningTI(task_id="make")
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    assert emulator.count("recordInfo") == 0
    event = run_trigger(deferred.value.trigger)
    op.execute_complete(ctx, event)
    assert len(ctx["ti"].xcoms["result_urls"]) == 4 and len(list(tmp_path.rglob("image-*"))) == 4


def test_templated_model_and_numbers_are_rendered_then_checked(emulator):
    op = SeedreamTextToImageOperator(task_id="make", prompt="{{ params.p }}", model="{{ params.model }}",
                                     max_images="{{ params.n }}", image_resolution="{{ params.res }}")
    ctx = context()
    ctx["params"] = {"p": "a studio shot", "model": "bytedance/seedream-v4-text-to-image", "n": 2, "res": "4K"}
    op.render_template_fields(ctx)
    task_id = op.execute(ctx)
    sent = emulator.stats()["tasks"][task_id]["input"]
    assert sent["max_images"] == 2 and sent["image_resolution"] == "4K"

    ctx["params"]["model"] = "seedream/4.5-text-to-image"  # 4.5 has no max_images: refused before any request
    again = SeedreamTextToImageOperator(task_id="make", prompt="{{ params.p }}", model="{{ params.model }}",
                                        max_images="{{ params.n }}")
    again.render_template_fields(ctx)
    with pytest.raises(exc.SeedreamValidationError, match=r"^max_images: model seedream/4.5-text-to-image has no "
                                                          r"such field"):
        again.execute(ctx)
    assert emulator.count("createTask") == 1


@pytest.mark.parametrize("cls, model, fragment", [
    (SeedreamEditOperator, "seedream/4.5-text-to-image", "must be a Seedream edit model"),
    (SeedreamTextToImageOperator, "bytedance/seedream-v4-edit", "must be a Seedream text-to-image model"),
    (SeedreamEditOperator, "seedream/5-pro-image-to-image", "must be a Seedream edit model of kie.ai: one of "
                                                             "seedream/4.5-edit"),
])
def test_a_literal_model_of_the_wrong_kind_fails_when_the_dag_is_parsed(emulator, cls, model, fragment):
    extra = {"image_urls": ["https://example.com/a.png"]} if cls is SeedreamEditOperator else {}
    with pytest.raises(exc.SeedreamValidationError, match=f"^model: {fragment}"):
        cls(task_id="make", prompt="abc", model=model, **extra)
    assert emulator.count("createTask") == 0


def test_a_retry_reattaches_only_to_the_same_model(emulator):
    store = DictStateStore()
    first = operator(emulator, "seedream/4.5-edit").execute(context(store))
    assert operator(emulator, "seedream/4.5-edit").execute(context(store)) == first
    assert emulator.count("createTask") == 1
    other = operator(emulator, "seedream/5-lite-image-to-image").execute(context(store))
    assert other != first and emulator.count("createTask") == 2


# ------------------------------------------------------------------------------------------------------ create_task
def test_create_task_validates_family_models_before_any_request(emulator):
    hook = SeedreamHook()
    with pytest.raises(exc.SeedreamValidationError, match=r"^image_resolution: must be one of 1K, 2K, 4K for "
                                                          r"bytedance/seedream-v4-text-to-image; got '8K'"):
        hook.create_task("bytedance/seedream-v4-text-to-image", {"prompt": "abc", "image_resolution": "8K"})
    with pytest.raises(exc.SeedreamValidationError, match=r"^negative_prompt: model seedream/4.5-text-to-image has "
                                                          r"no such field"):
        hook.create_task("seedream/4.5-text-to-image", {"prompt": "abc", "negative_prompt": "blur"})
    assert emulator.count("createTask") == 0
    task_id = hook.create_task("bytedance/seedream", {"prompt": "a lighthouse", "guidance_scale": 4})
    assert emulator.stats()["tasks"][task_id]["input"] == {"prompt": "a lighthouse", "image_size": "square_hd",
                                                          "guidance_scale": 4}
    assert emulator.stats()["tasks"][task_id]["model"] == "bytedance/seedream"


def test_create_task_sends_other_models_unvalidated_and_says_so(emulator, logs):
    hook = SeedreamHook()
    with pytest.raises(exc.SeedreamValidationError):  # the emulator serves only the family: kie's 422 comes back
        hook.create_task("seedream/5-flash-image-to-image", {"prompt": "abc", "image_urls": ["https://e.com/a.png"],
                                                             "aspect_ratio": "1:1"})
    assert emulator.count("createTask") == 1  # it was sent as given
    assert "Model seedream/5-flash-image-to-image is not in this provider's Seedream spec table" in logs.text()
    with pytest.raises(exc.SeedreamValidationError, match="^model: "):
        hook.create_task("seedream flash", {"prompt": "abc"})
    with pytest.raises(exc.SeedreamValidationError, match="^input: must be JSON"):
        hook.create_task("vendor/other", {"prompt": object()})
    assert emulator.count("createTask") == 1


# ------------------------------------------------------------------------------------------------------------ batch
def test_a_batch_mixes_models_and_stores_every_image(emulator, tmp_path):
    sample = emulator.sample_url()
    op = SeedreamBatchEditOperator(
        task_id="batch", poll_interval=0.05, deferrable=False, output_path=str(tmp_path),
        edits=[{"prompt": "abc", "image_urls": [sample]},
               {"prompt": "abc", "image_urls": [sample], "model": "bytedance/seedream-v4-edit", "max_images": 2},
               {"prompt": "a scene", "model": "seedream/5-lite-text-to-image"}])
    ctx = context()
    ctx["ti"] = RunningTI(task_id="batch")
    outcomes = op.execute(ctx)
    assert [len(o["result_urls"]) for o in outcomes] == [1, 2, 1]
    assert sorted(p.stem for p in tmp_path.rglob("edit-*")) == ["edit-0_image-0", "edit-1_image-0", "edit-1_image-1",
                                                               "edit-2_image-0"]


def test_a_batch_item_for_the_wrong_model_fails_before_the_first_submit(emulator):
    op = SeedreamBatchEditOperator(task_id="batch", edits=[
        {"prompt": "abc", "image_urls": ["https://e.com/a.png"]},
        {"prompt": "abc", "image_urls": ["https://e.com/a.png"], "model": "seedream/4.5-edit", "seed": 4}])
    with pytest.raises(exc.SeedreamValidationError, match=r"^edits\[1\]\.seed: model seedream/4.5-edit has no such"):
        op.execute(context())
    assert emulator.count("createTask") == 0



def test_local_files_are_uploaded_for_every_edit_model(emulator, tmp_path):
    import requests

    photo = tmp_path / "photo.png"
    photo.write_bytes(requests.get(emulator.sample_url(), timeout=10).content)
    for model in models.models_of("edit"):
        task_id = SeedreamEditOperator(task_id="make", prompt="a red sneaker", model=model,
                                       image_urls=[str(photo)]).execute(context())
        sent = emulator.stats()["tasks"][task_id]["input"]["image_urls"]
        assert len(sent) == 1 and sent[0].startswith(emulator.url)  # kie's upload host (the emulator) serves it
    assert emulator.count("upload") == len(models.models_of("edit"))
