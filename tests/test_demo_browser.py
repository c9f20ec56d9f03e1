"""The web demo in a real browser (headless Chromium through Playwright): the page shows the run and its numbered
samples and asks nothing of any other host; a slider, "New samples", the walk, arithmetic, forgetting (boxes clicked
on the samples, then the before/after picture and its JSON) and (conditional exports) the label picker each redraw
their picture.

Needs gradio, playwright and a Chromium executable ($CHROMIUM, else chromium / chromium-browser on PATH, else
/usr/lib/chromium/chromium); never downloads a browser. $DEMO_EXPORT points the tests at an existing export folder
instead of the tiny one; $DEMO_SCREENSHOT saves a full-page screenshot of the used page there (docs/serving.md's).
"""

import os
import shutil
import urllib.parse

import pytest

pytest.importorskip("gradio", reason="the web demo needs gradio (pip install gradio)")
pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright (pip install playwright)")


def chromium_path() -> str | None:
    """A Chromium executable already on this machine, or None."""
    candidates = [os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                  "/usr/lib/chromium/chromium"]
    return next((path for path in candidates if path and os.access(path, os.X_OK)), None)


CHROMIUM = chromium_path()
if CHROMIUM is None:
    pytest.skip("no Chromium executable: set CHROMIUM or install chromium (the tests never download one)",
                allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402

from conftest import free_port, tiny_export
from dcgan_tf.serving.demo import launch  # noqa: E402
from dcgan_tf.serving.export import read_info  # noqa: E402

TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def open_page(browser, demo):
    """A page on the demo, loaded, with the hosts it asked anything of in `page.hosts`."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.hosts = set()
    page.on("request", lambda request: page.hosts.add(urllib.parse.urlsplit(request.url).netloc))
    page.goto(demo.local_url)
    page.wait_for_selector("#grid img")
    return page


@pytest.fixture(scope="module")
def demo_page(browser, tmp_path_factory):
    """(page, demo, export.json) of the demo of $DEMO_EXPORT, else of the tiny conditional export (fake MNIST:
    every part of the page, the label picker too, from one training); the tests below use it in turn, and the
    screenshot shows what they left."""
    folder = os.environ.get("DEMO_EXPORT") or tiny_export(tmp_path_factory, conditional=True)
    demo = launch(folder, port=free_port(), block=False, log=lambda line: None)
    page = open_page(browser, demo)
    yield page, demo, read_info(folder)
    if os.environ.get("DEMO_SCREENSHOT"):
        for close in page.query_selector_all("[data-testid='toast-close']"):  # the bad expression's warning
            close.click()
        page.wait_for_selector("[data-testid='toast-body']", state="detached")
        page.screenshot(path=os.environ["DEMO_SCREENSHOT"], full_page=True)
    page.close()
    demo.close(verbose=False)


def image_src(page, selector: str) -> str | None:
    found = page.query_selector(f"{selector} img")
    return found and found.get_attribute("src")


def wait_for_new_image(page, selector: str, old: str | None):
    """Wait until `selector` shows an image other than `old` (Gradio names each picture by its content's hash)."""
    page.wait_for_function("([selector, old]) => { const img = document.querySelector(selector + ' img');"
                           " return img && img.complete && img.naturalWidth > 0 && img.src !== old; }",
                           arg=[selector, old])
    return image_src(page, selector)


def test_the_page_shows_the_run_and_its_numbered_samples(demo_page):
    page, demo, info = demo_page
    header = page.inner_text("#header")
    assert info["run"] in header and f"Step {info['step']}" in header and info["dataset"] in header
    assert ("the EMA generator" if info["ema"] else "no EMA generator") in header
    assert page.is_visible("#label") == bool(info["y_dim"])
    wait_for_new_image(page, "#grid", None)
    assert page.eval_on_selector("#grid img", "img => img.naturalWidth") >= 4 * 96
    assert page.hosts == {urllib.parse.urlsplit(demo.local_url).netloc}  # no fonts, analytics or CDN


def test_a_slider_redraws_the_single_sample(demo_page):
    page, _, _ = demo_page
    before = wait_for_new_image(page, "#slider-image", None)
    value = float(page.input_value("#z-0 input[type=number]"))
    page.focus("#z-0 input[type=range]")
    page.keyboard.press("Home" if value > 0 else "End")  # to the far end of the range: a visible change
    wait_for_new_image(page, "#slider-image", before)
    assert float(page.input_value("#z-0 input[type=number]")) != value


def test_new_samples_redraw_the_grid(demo_page):
    page, _, _ = demo_page
    before, seed = image_src(page, "#grid"), page.input_value("#seed input")
    page.click("#new-samples")
    wait_for_new_image(page, "#grid", before)
    assert page.input_value("#seed input") != seed


def test_the_walk_gives_a_strip_and_a_gif(demo_page):
    page, _, _ = demo_page
    page.fill("#walk-steps input", "4")
    page.click("#walk")
    wait_for_new_image(page, "#walk-strip", None)
    link = page.wait_for_selector("#walk-gif a[href$='.gif']")
    assert link.get_attribute("download").startswith("walk_seed0_to_seed1_4steps")
    assert page.request.get(link.get_attribute("href")).body()[:6] == b"GIF89a"


def test_arithmetic_draws_a_picture_or_says_what_is_wrong(demo_page):
    page, _, _ = demo_page
    page.fill("#expression textarea", "0,x - 1")
    page.click("#compute")
    page.wait_for_function("document.querySelector('#arithmetic-message').innerText.includes('Not an expression')")
    assert "not a group of sample indices" in page.inner_text("#arithmetic-message")
    assert "not a group of sample indices" in page.inner_text("[data-testid='toast-body']")  # and a warning
    page.fill("#expression textarea", "0 - 1 + 2")
    page.click("#compute")
    wait_for_new_image(page, "#arithmetic", None)
    page.wait_for_function("document.querySelector('#arithmetic-message').innerText.trim() === ''")


def click_pixel(page, selector: str, x: int, y: int):
    """Click pixel (x, y) of the picture in `selector` (its natural pixels, wherever the page shows it and however
    large)."""
    page.locator(f"{selector} img").scroll_into_view_if_needed()
    left, top, width, height, natural_width, natural_height = page.eval_on_selector(
        f"{selector} img", "img => { const r = img.getBoundingClientRect();"
                           " return [r.left, r.top, r.width, r.height, img.naturalWidth, img.naturalHeight]; }")
    scale = min(width / natural_width, height / natural_height, 1)  # Gradio fits the picture in its box
    page.mouse.click(left + (width - natural_width * scale) / 2 + (x + 0.5) * scale,
                     top + (height - natural_height * scale) / 2 + (y + 0.5) * scale)


def boxes_text(page) -> str:
    return page.input_value("#forget-boxes textarea")


def test_forgetting_boxes_clicked_on_the_samples_give_before_after_and_the_json(demo_page):
    page, _, info = demo_page
    before = wait_for_new_image(page, "#forget-grid", None)
    click_pixel(page, "#forget-grid", 8, 12)  # a box's first corner on sample 0: marked
    marked = wait_for_new_image(page, "#forget-grid", before)
    click_pixel(page, "#forget-grid", 60, 70)  # its opposite corner: the box joins the text, outlined
    page.wait_for_function("document.querySelector('#forget-boxes textarea').value.startsWith('0,')")
    wait_for_new_image(page, "#forget-grid", marked)
    first = boxes_text(page)
    assert len(first.splitlines()) == 1 and len(first.split(",")) == 5
    page.click("#forget")
    result = wait_for_new_image(page, "#forget-result", None)
    page.wait_for_function("document.querySelector('#forget-message').innerText.includes('inside the boxes')")
    assert "forget: layer" in page.inner_text("#forget-message")
    link = page.wait_for_selector("#forget-json a[href$='.json']")
    assert link.get_attribute("download").startswith(f"forget_seed{page.input_value('#seed input')}_")
    record = page.request.get(link.get_attribute("href")).json()
    assert [box["sample"] for box in record["boxes"]] == [0] and record["run"] == info["run"]
    assert len(record["weights"]) == record["layer_shape"][-1]
    page.fill("#forget-boxes textarea", "0,1,2")  # a bad row: a message instead of the picture
    page.click("#forget")
    page.wait_for_function("document.querySelector('#forget-message').innerText.includes('Cannot forget')")
    assert "boxes row 1: want 5 values" in page.inner_text("#forget-message")
    assert image_src(page, "#forget-result") in (None, result)
    page.click("#forget-clear")
    page.wait_for_function("document.querySelector('#forget-boxes textarea').value === ''")


def test_the_label_picker_redraws_the_grid(demo_page):
    page, _, info = demo_page
    if not info["y_dim"]:
        pytest.skip(f"{info['run']} is not conditional: no label picker")
    other = (info["class_names"] or [str(label) for label in range(info["y_dim"])])[-1]
    before = wait_for_new_image(page, "#grid", None)
    page.click("#label input")
    page.click(f"#label li[aria-label='{other}']")
    wait_for_new_image(page, "#grid", before)
    assert page.input_value("#label input") == other
