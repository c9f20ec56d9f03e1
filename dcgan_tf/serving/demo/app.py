"""The local web demo of an exported generator: numbered samples from a seed, sliders over chosen z dimensions, a
walk between two seeds (strip + GIF), vector arithmetic on the numbered samples, forgetting to draw (boxes clicked on
the numbered samples, the filters that draw them found and dropped), and a label picker for conditional exports.

The pictures come from plain functions (an ExportedGenerator and numbers in, uint8 [H, W, 3] out) so tests call
them without a browser; `build_demo` wires them to Gradio components and `launch` serves them on this computer.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio loads: the page and server call no one

import atexit
import json
import logging
import random
import shutil
import signal
import tempfile
import threading

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw

from dcgan_tf import images, latent
from dcgan_tf.serving.export import KERAS_FILE, ExportedGenerator, load_export

GRID_ROWS, GRID_COLS = 4, 4  # the numbered samples: indices 0-15 for arithmetic and the sliders
SAMPLE_COUNT = GRID_ROWS * GRID_COLS
CELL_SIDE = 96  # small images are enlarged (nearest pixel) to at least this many pixels a side
BIG_SIDE = 256  # the slider's single image
DEFAULT_SLIDERS = 8  # z dimensions with a slider unless `dims` names them
SLIDER_STEP = 0.01
DEFAULT_WALK_STEPS = 8
MAX_WALK_STEPS = 32
WALK_FPS = 5.0
ARITHMETIC_EXAMPLE = "0,1 - 2 + 3"
FORGET_BOX_COLOUR = (255, 0, 0)  # the boxes drawn so far, on the numbered samples
FORGET_CORNER_COLOUR = (0, 160, 255)  # a box's first corner, until the second click
SEED_LIMIT = 2**31 - 1
WALK_FOLDER_PREFIX = "dcgan_demo_walks_"
CACHE_LIFETIME = (600, 1800)  # Gradio's cache of served pictures: every 10 minutes, files older than 30 are deleted
# System fonts only: the default theme's web fonts would be one more file to fetch.
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


# ------------------------------------------------------------------------------------------------ labels
def label_choices(gen: ExportedGenerator) -> list[str]:
    """The names a conditional export's labels go by (its class_names, else "0".."y_dim-1"); [] when unconditional."""
    y_dim = gen.info.get("y_dim")
    if not y_dim:
        return []
    return list(gen.info.get("class_names") or [str(label) for label in range(y_dim)])


def label_index(gen: ExportedGenerator, label) -> int | None:
    """A label as the picker shows it (a class name) or an index -> its index; None for an unconditional export.

    A conditional export without a label uses label 0. ValueError for a name or index it does not have.
    """
    choices = label_choices(gen)
    if not choices:
        return None
    if label is None or label == "":
        return 0
    if isinstance(label, str) and label in choices:
        return choices.index(label)
    if isinstance(label, (int, np.integer)) and 0 <= label < len(choices):
        return int(label)
    raise ValueError(f"label {label!r} is not one of this generator's: {', '.join(choices)}")


def _generate(gen: ExportedGenerator, z: np.ndarray, label) -> np.ndarray:
    """z [N, z_dim] -> uint8 [N, H, W, C], every image with `label` on a conditional export."""
    index = label_index(gen, label)
    return gen.generate(z, None if index is None else np.full(len(z), index, np.int32))


# ------------------------------------------------------------------------------------------------ z
def _whole(value, name: str, low: int = 0, high: int = SEED_LIMIT) -> int:
    """A number box's value as an int in [low, high]; ValueError naming the box otherwise."""
    if value is None or value == "":
        raise ValueError(f"{name}: empty; type a whole number {low}-{high}")
    number = float(value)
    if not number.is_integer() or not low <= number <= high:
        raise ValueError(f"{name}: {value!r} is not a whole number {low}-{high}")
    return int(number)


def z_bank(gen: ExportedGenerator, seed: int) -> np.ndarray:
    """The z of the numbered samples of `seed`: [SAMPLE_COUNT, z_dim] float32 from the export's z distribution."""
    seed = _whole(seed, "seed")
    return np.asarray(latent.sample_z((SAMPLE_COUNT, gen.info["z_dim"]), gen.info["z_dist"], seed), np.float32)


def slider_dims(gen: ExportedGenerator, dims=None) -> list[int]:
    """The z dimensions with a slider: `dims`, else the first DEFAULT_SLIDERS; ValueError for one z does not have."""
    z_dim = gen.info["z_dim"]
    if dims is None:
        return list(range(min(DEFAULT_SLIDERS, z_dim)))
    dims = [int(dim) for dim in dims]
    outside = [dim for dim in dims if not 0 <= dim < z_dim]
    if outside or not dims:
        raise ValueError(f"slider dimensions must be 0-{z_dim - 1} (z has {z_dim}); got {dims}")
    return dims


def sample_values(gen: ExportedGenerator, seed: int, index: int, dims) -> list[float]:
    """Sample `index` of `seed`'s z at `dims`, clipped to the sliders' range (normal z can fall outside +-2)."""
    index = _whole(index, "sample", 0, SAMPLE_COUNT - 1)
    low, high = latent.sweep_range(gen.info["z_dist"])
    return [float(value) for value in np.clip(z_bank(gen, seed)[index, list(dims)], low, high)]


# ------------------------------------------------------------------------------------------------ pictures
def numbered_picture(samples: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """uint8 [N, H, W, C] -> an RGB grid, cells enlarged to >= CELL_SIDE pixels, each with its index drawn on it."""
    return images.numbered_grid(images.upscale(samples, CELL_SIDE) / 127.5 - 1.0, rows, cols)


def samples_picture(gen: ExportedGenerator, seed: int, label=None) -> np.ndarray:
    """The numbered GRID_ROWS x GRID_COLS samples of `seed`: uint8 [rows*side + padding, cols*side + padding, 3]."""
    return numbered_picture(_generate(gen, z_bank(gen, seed), label), GRID_ROWS, GRID_COLS)


def slider_picture(gen: ExportedGenerator, seed: int, index: int, values, dims, label=None) -> np.ndarray:
    """Sample `index` of `seed` with z[dims] set to `values`, one image enlarged to >= BIG_SIDE: uint8 [S, S, 3]."""
    index = _whole(index, "sample", 0, SAMPLE_COUNT - 1)
    if len(values) != len(dims):
        raise ValueError(f"{len(values)} slider values for {len(dims)} dimensions")
    z = z_bank(gen, seed)[index].copy()
    z[list(dims)] = np.asarray(values, np.float32)
    return images.upscale(_generate(gen, z[None], label), BIG_SIDE)[0]


def sample_picture(gen: ExportedGenerator, seed: int, index: int, label=None) -> np.ndarray:
    """Sample `index` of `seed` as it is on the grid (its own z, unclipped), enlarged to >= BIG_SIDE: [S, S, 3]."""
    index = _whole(index, "sample", 0, SAMPLE_COUNT - 1)
    return images.upscale(_generate(gen, z_bank(gen, seed)[index][None], label), BIG_SIDE)[0]


def walk(gen: ExportedGenerator, seed_a: int, seed_b: int, steps: int, label, folder: str) -> tuple[np.ndarray, str]:
    """Slerp from sample 0 of seed_a to sample 0 of seed_b in `steps` frames: (strip uint8 [side, steps*side + padding,
    3], path of a GIF of the frames written in `folder`)."""
    steps = _whole(steps, "steps", 2, MAX_WALK_STEPS)
    seed_a, seed_b = _whole(seed_a, "from seed"), _whole(seed_b, "to seed")
    path_z = latent.interpolation_path(z_bank(gen, seed_a)[0], z_bank(gen, seed_b)[0], steps, "slerp")
    frames = _generate(gen, path_z, label)
    strip = images.tile(images.upscale(frames, CELL_SIDE), 1, steps, images.CELL_PADDING)
    index = label_index(gen, label)
    name = f"walk_seed{seed_a}_to_seed{seed_b}_{steps}steps" + ("" if index is None else f"_label{index}") + ".gif"
    gif = images.save_gif(images.upscale(frames, BIG_SIDE), os.path.join(folder, name), WALK_FPS)
    return strip, gif


def arithmetic_picture(gen: ExportedGenerator, seed: int, expression: str, label=None) -> np.ndarray:
    """Vector arithmetic on `seed`'s numbered samples (DCGAN paper section 6.3.2, as visualize's arithmetic).

    `expression` like "0,1 - 2 + 3": groups of sample indices joined by + and -. One row per group: its sign, its
    samples and, last, G(mean z of the group); the last row: "=", ARITHMETIC_VARIANTS images of the signed sum of the
    means plus U(+-ARITHMETIC_NOISE) noise, and last G(the sum) itself. uint8 [rows*side + padding, ..., 3].
    ValueError with a message for the user on text that is not such an expression or an index off the grid.
    """
    try:
        groups = latent.parse_arithmetic(expression)
    except ValueError as error:  # a ConfigError naming --arith: the demo's user typed no flag
        raise ValueError(getattr(error, "message", str(error))) from None
    bank = z_bank(gen, seed)
    new_z = latent.arithmetic_z(bank, groups, _whole(seed, "seed"))  # ValueError naming an index off the grid
    new_images = images.upscale(_generate(gen, new_z, label), CELL_SIDE)
    return images.arithmetic_figure(images.upscale(_generate(gen, bank, label), CELL_SIDE), new_images, groups)


# ------------------------------------------------------------------------------------------------ forgetting
def forget_layout(gen: ExportedGenerator) -> images.GridLayout:
    """Where each numbered sample lies on samples_picture: the layout the boxes' pixels refer to."""
    info = gen.info
    return images.GridLayout.numbered(SAMPLE_COUNT, GRID_ROWS, GRID_COLS, info["height"], info["width"], CELL_SIDE)


def _box_rows(text: str) -> list[tuple[int, float, float, float, float]]:
    """The rows of the boxes text that read as sample,x0,y0,x1,y1 (for drawing; forgetting checks every row)."""
    rows = []
    for line in (text or "").splitlines():
        parts = [part.strip() for part in line.split(",")]
        try:
            sample, x0, y0, x1, y1 = int(parts[0]), *(float(part) for part in parts[1:])
        except (ValueError, IndexError, TypeError):
            continue
        rows.append((sample, min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    return rows


def add_corner(gen: ExportedGenerator, text: str, corner, x: float, y: float) -> tuple[str, tuple | None]:
    """A click on pixel (x, y) of the numbered samples: the first corner of a box (returned as `corner`, (sample, x,
    y)), or, with a corner pending, the opposite one: the box holding both clicked pixels, kept inside the first
    corner's sample, appended to the boxes text as a row `sample,x0,y0,x1,y1` (pixel edges). ValueError for a first
    click that is on no sample."""
    layout = forget_layout(gen)
    if corner is None:
        sample = layout.cell_at(int(x) + 0.5, int(y) + 0.5)
        if sample is None:
            raise ValueError("click on a sample: that was between them")
        return text, (sample, int(x), int(y))
    sample, x0, y0 = corner
    left, top = layout.origin(sample)
    x1 = min(max(int(x), left), left + layout.width * layout.scale - 1)
    y1 = min(max(int(y), top), top + layout.height * layout.scale - 1)
    row = f"{sample},{min(x0, x1)},{min(y0, y1)},{max(x0, x1) + 1},{max(y0, y1) + 1}"
    rows = [line for line in (text or "").splitlines() if line.strip()]
    return "\n".join(rows + [row]), None


def boxes_picture(gen: ExportedGenerator, seed: int, boxes: str, corner=None, label=None) -> np.ndarray:
    """samples_picture with the boxes of the text outlined in red and a pending first corner marked."""
    picture = Image.fromarray(samples_picture(gen, seed, label))
    draw = ImageDraw.Draw(picture)
    for _, x0, y0, x1, y1 in _box_rows(boxes):
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=FORGET_BOX_COLOUR, width=2)
    if corner is not None:
        _, x, y = corner
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), outline=FORGET_CORNER_COLOUR, width=2)
    return np.asarray(picture)


def forget_picture(gen: ExportedGenerator, seed: int, boxes: str, layer, label, folder: str) -> tuple:
    """Forgetting to draw (DCGAN paper section 6.3.1) on `seed`'s numbered samples: the filters of `layer` (None:
    the second-highest conv layer) that draw what the boxes (text, sample,x0,y0,x1,y1 in samples_picture's pixels)
    mark, fitted and dropped. (before|after picture uint8, path of the JSON record written in `folder`, one line on
    what was found). ValueError with a message for the user on bad boxes."""
    forgetter = gen.forgetter(layer or None)
    index = label_index(gen, label)
    labels = None if index is None else np.eye(gen.info["y_dim"], dtype=np.float32)[np.full(SAMPLE_COUNT, index)]
    seed = _whole(seed, "seed")
    try:
        result = forgetter.forget_on_grid(z_bank(gen, seed), labels, boxes or "", forget_layout(gen), "boxes",
                                          seed=seed)
    except ValueError as error:  # a ConfigError naming --forget_boxes: the demo's user typed no flag
        raise ValueError(getattr(error, "message", str(error))) from None
    record = result.record(run=gen.info.get("run"), step=gen.info.get("step"),
                           generator="EMA" if gen.info.get("ema") else "G", seed=seed, label=index,
                           z=f"the demo's {SAMPLE_COUNT} numbered samples of seed {seed}",
                           boxes_on=f"the demo's numbered samples ({' x '.join(map(str, forget_layout(gen).size))} "
                                    f"pixels)")
    name = f"forget_seed{seed}_{result.layer}" + ("" if index is None else f"_label{index}") + ".json"
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
    return result.picture(GRID_COLS, CELL_SIDE), path, result.summary()


# ------------------------------------------------------------------------------------------------ the page
def header_markdown(info: dict) -> str:
    """The page's header: run, step, data set, which generator, image size, z and labels."""
    channels = {1: "grayscale", 3: "RGB"}.get(info.get("c_dim"), f"{info.get('c_dim')} channels")
    generator = "the EMA generator" if info.get("ema") else "G (the run keeps no EMA generator)"
    z_draw = info.get("z_draw") or info.get("z_dist")
    labels = f", {info['y_dim']} labels" if info.get("y_dim") else ""
    return (f"## DCGAN demo: `{info.get('run')}`\n"
            f"Step {info.get('step')} on data set `{info.get('dataset')}`, {generator}; "
            f"{info.get('height')}x{info.get('width')} {channels} images from z [{info.get('z_dim')}] "
            f"{z_draw}{labels}.")


def forget_section(gen: ExportedGenerator, seed, label, first_label, walk_folder: str) -> None:
    """The demo's "Forgetting to draw" section, inside build_demo's Blocks: the numbered samples to box (two clicks a
    box), the layer, Forget, and its before/after picture and JSON; a note instead when the export has no Keras file.
    `seed`, `label`: the demo's components (new samples clear the boxes, which marked the old ones)."""
    if not gen.has_keras:
        gr.Markdown(f"This export has no `{KERAS_FILE}`, whose layers forgetting reads: export the run again with "
                    f"`--export_format keras,savedmodel`.", elem_id="forget-message")
        return
    layers = list(gen.forgetter().layers)
    with gr.Row():
        forget_grid = gr.Image(boxes_picture(gen, 0, "", None, first_label), format="png",
                               label="Click two corners of each box", interactive=False,
                               buttons=["fullscreen"], elem_id="forget-grid")
        with gr.Column():
            boxes = gr.Textbox("", label="Boxes: sample, x0, y0, x1, y1 in the picture's pixels", lines=6,
                               elem_id="forget-boxes")
            forget_layer = gr.Radio(layers, value=layers[-1], label="Layer (default: the second-highest)",
                                    elem_id="forget-layer")
            with gr.Row():
                clear_button = gr.Button("Clear boxes", elem_id="forget-clear")
                forget_button = gr.Button("Forget", variant="primary", elem_id="forget")
    forget_message = gr.Markdown("", elem_id="forget-message")
    forget_result = gr.Image(None, format="png", label="Each sample, then the same z without the filters",
                             interactive=False, buttons=["download", "fullscreen"], elem_id="forget-result")
    forget_json = gr.File(None, label="The filters found (JSON)", interactive=False, elem_id="forget-json")
    corner = gr.State(None)

    def click_corner(seed, text, pending, label, event: gr.SelectData):
        """A click on the samples: a box's first corner, or its second (the box joins the text)."""
        try:
            text, pending = add_corner(gen, text, pending, *event.index)
        except ValueError as error:
            gr.Warning(str(error))
        return text, pending, boxes_picture(gen, seed, text, pending, label)

    def redraw_boxes(seed, text, label):
        return boxes_picture(gen, seed, text, None, label), None

    def run_forget(seed, text, layer, label):
        """(picture, JSON file, message): bad boxes are a warning and a line, not an error page."""
        try:
            picture, path, summary = forget_picture(gen, seed, text, layer, label, walk_folder)
            return picture, path, summary
        except ValueError as error:
            gr.Warning(str(error))
            return None, None, f"**Cannot forget:** {error}"

    forget_grid.select(click_corner, [seed, boxes, corner, label], [boxes, corner, forget_grid],
                       show_progress="hidden")
    boxes.input(redraw_boxes, [seed, boxes, label], [forget_grid, corner], show_progress="hidden")
    for trigger in (seed, label):  # other samples: the boxes marked the old ones
        trigger.change(lambda seed, label: ("", None, boxes_picture(gen, seed, "", None, label)),
                       [seed, label], [boxes, corner, forget_grid], show_progress="hidden")
    clear_button.click(lambda seed, label: ("", None, boxes_picture(gen, seed, "", None, label)),
                       [seed, label], [boxes, corner, forget_grid], show_progress="hidden")
    forget_button.click(run_forget, [seed, boxes, forget_layer, label],
                        [forget_result, forget_json, forget_message])


def build_demo(gen: ExportedGenerator, dims=None, title: str | None = None) -> gr.Blocks:
    """The Gradio app of an exported generator (unlaunched; `launch` passes THEME, which Gradio 6 takes there).

    `dims`: the z dimensions with a slider (default the first DEFAULT_SLIDERS).
    """
    info = gen.info
    dims = slider_dims(gen, dims)
    choices = label_choices(gen)
    low, high = latent.sweep_range(info["z_dist"])
    walk_folder = tempfile.mkdtemp(prefix=WALK_FOLDER_PREFIX)  # Gradio serves copies from its own cache
    atexit.register(shutil.rmtree, walk_folder, True)  # launch removes it when it stops; this, for other callers
    first_label = choices[0] if choices else None

    def redraw_sample(seed, index, label):
        """The sample changed: the sliders at its z, its single image."""
        try:
            values = sample_values(gen, seed, index, dims)  # a normal z's rare |value| > 2 shows clipped
            return [*values, sample_picture(gen, seed, index, label)]  # the sample itself, until a slider moves
        except ValueError as error:
            raise gr.Error(str(error)) from None

    def redraw_samples(seed, index, label):
        """The seed or label changed: the grid, and the sample as redraw_sample."""
        try:
            return [samples_picture(gen, seed, label), *redraw_sample(seed, index, label)]
        except ValueError as error:
            raise gr.Error(str(error)) from None

    def redraw_slider(seed, index, label, *values):
        try:
            return slider_picture(gen, seed, index, list(values), dims, label)
        except ValueError as error:
            raise gr.Error(str(error)) from None

    def redraw_walk(seed_a, seed_b, steps, label):
        try:
            return walk(gen, seed_a, seed_b, steps, label, walk_folder)
        except ValueError as error:
            raise gr.Error(str(error)) from None

    def redraw_arithmetic(seed, expression, label):
        """(picture or None, message): bad text is a warning and a line under the box, not an error page."""
        try:
            return arithmetic_picture(gen, seed, expression, label), ""
        except ValueError as error:
            gr.Warning(str(error))
            return None, f"**Not an expression:** {error}"

    with gr.Blocks(title=title or f"DCGAN demo: {info.get('run')}", analytics_enabled=False,
                   delete_cache=CACHE_LIFETIME) as demo:
        gr.Markdown(header_markdown(info), elem_id="header")
        with gr.Row():
            seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=SEED_LIMIT, elem_id="seed")
            new_samples = gr.Button("New samples", variant="primary", elem_id="new-samples")
            label = gr.Dropdown(choices, value=first_label, label="Label (every image)", visible=bool(choices),
                                elem_id="label")
        grid = gr.Image(samples_picture(gen, 0, first_label), format="png", label="Samples (numbered)",
                        interactive=False, buttons=["download", "fullscreen"], elem_id="grid")

        gr.Markdown(f"### One sample's z\nEach slider sets one z dimension ({low:g} to {high:g}); they start at the "
                    f"sample's own values.")
        with gr.Row():
            with gr.Column():
                index = gr.Number(0, label=f"Sample (0-{SAMPLE_COUNT - 1})", precision=0, minimum=0,
                                  maximum=SAMPLE_COUNT - 1, elem_id="sample-index")
                start = sample_values(gen, 0, 0, dims)
                sliders = [gr.Slider(low, high, value=value, step=SLIDER_STEP, label=f"z[{dim}]",
                                     buttons=[], elem_id=f"z-{dim}") for dim, value in zip(dims, start)]
            single = gr.Image(sample_picture(gen, 0, 0, first_label), format="png",
                              label="The sample", interactive=False, buttons=["download", "fullscreen"],
                              elem_id="slider-image")

        gr.Markdown("### Walk between two seeds\nA slerp from sample 0 of one seed's grid to sample 0 of another's.")
        with gr.Row():
            seed_a = gr.Number(0, label="From seed", precision=0, minimum=0, maximum=SEED_LIMIT, elem_id="walk-from")
            seed_b = gr.Number(1, label="To seed", precision=0, minimum=0, maximum=SEED_LIMIT, elem_id="walk-to")
            steps = gr.Number(DEFAULT_WALK_STEPS, label=f"Steps (2-{MAX_WALK_STEPS})", precision=0, minimum=2,
                              maximum=MAX_WALK_STEPS, elem_id="walk-steps")
            walk_button = gr.Button("Walk", elem_id="walk")
        strip = gr.Image(None, format="png", label="The walk", interactive=False, buttons=["download", "fullscreen"],
                         elem_id="walk-strip")
        gif = gr.File(None, label="The walk as a GIF", interactive=False, elem_id="walk-gif")

        gr.Markdown(f"### Vector arithmetic\nGroups of sample indices from the numbered grid joined by + and - "
                    f"(e.g. `{ARITHMETIC_EXAMPLE}`): each group's mean z, their signed sum, then that sum with "
                    f"U(±{latent.ARITHMETIC_NOISE:g}) noise. Rows: each group and its mean (last column); the results, the "
                    f"exact one last.")
        with gr.Row():
            expression = gr.Textbox(ARITHMETIC_EXAMPLE, label="Expression", elem_id="expression", scale=3)
            arithmetic_button = gr.Button("Compute", elem_id="compute")
        arithmetic_message = gr.Markdown("", elem_id="arithmetic-message")
        arithmetic = gr.Image(None, format="png", label="Arithmetic", interactive=False,
                              buttons=["download", "fullscreen"], elem_id="arithmetic")

        gr.Markdown("### Forgetting to draw\nThe DCGAN paper's section 6.3.1: box an object on the numbered samples "
                    "(click two opposite corners; a sample without a box counts as one without the object), then "
                    "**Forget**: a logistic regression on the chosen layer's feature maps finds the filters that "
                    "draw inside the boxes (those of positive weight), and each sample is drawn again without them, "
                    "beside itself.")
        forget_section(gen, seed, label, first_label, walk_folder)

        sample_outputs = [grid, *sliders, single]
        new_samples.click(lambda: random.randint(0, 999_999), outputs=seed)  # seed.change redraws
        for trigger in (seed, label):
            trigger.change(redraw_samples, [seed, index, label], sample_outputs, show_progress="hidden")
        index.change(redraw_sample, [seed, index, label], [*sliders, single], show_progress="hidden")
        for slider in sliders:
            slider.input(redraw_slider, [seed, index, label, *sliders], single, show_progress="hidden",
                         trigger_mode="always_last")
        walk_button.click(redraw_walk, [seed_a, seed_b, steps, label], [strip, gif])
        for trigger in (arithmetic_button.click, expression.submit):
            trigger(redraw_arithmetic, [seed, expression, label], [arithmetic, arithmetic_message])
    demo.walk_folder = walk_folder
    return demo


def listening_message(host: str, port: int) -> str:
    """The first line `launch` logs: where the demo listens and who can reach it."""
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    if host in LOCAL_HOSTS:
        return (f"demo at {url}: only this computer can reach it (--host 0.0.0.0 opens it to the network, "
                f"with no password)")
    return (f"warning: demo listening on {host}:{port}: other machines on the network can reach it, with no password "
            f"(open http://localhost:{port}/ here; --host 127.0.0.1 keeps it to this computer)")


def launch(folder: str, host: str = "127.0.0.1", port: int = 7860, dims=None, block: bool = True, log=print,
           announce: bool = True):
    """Serve the export in `folder` on host:port (never a public share link).

    `announce`: log listening_message once it listens (a caller that said it already passes False). block=True
    serves until Ctrl-C or SIGTERM, then stops the server and removes its files; block=False returns the running
    Blocks (`.local_url`, `.close()`).
    """
    gen = load_export(folder)
    demo = build_demo(gen, dims)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's start-up checks of its own URL, one line each
    demo.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=True, quiet=True,
                theme=THEME, ssr_mode=False, show_error=True, inbrowser=False)
    log(listening_message(host, port) if announce else f"serving at {demo.local_url}")
    if not block:
        return demo
    log("press Ctrl+C to stop")
    previous = signal.signal(signal.SIGTERM, _interrupt) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        demo.block_thread()  # until Ctrl+C (Gradio catches it and returns, or it reaches here)
    except KeyboardInterrupt:
        pass
    finally:
        demo.close(verbose=False)
        shutil.rmtree(demo.walk_folder, ignore_errors=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    log("demo stopped")
    return demo


def _interrupt(signum, frame):
    """SIGTERM stops the demo as Ctrl-C does (its files removed)."""
    raise KeyboardInterrupt
