"""`make demo`: a page on 127.0.0.1 to try the model. Pick a held-out test sequence or upload
a clip, set the horizon, and watch the context, the prediction and, for a test sequence, the
truth, as animations side by side.

Gradio, set up to load nothing from off this machine: system fonts (no web fonts), analytics
off, no share link. Needs the `demo` extra (`make demo` installs it).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nextframe import cli
from nextframe.clips import CLIP_SUFFIXES
from nextframe.domains import get_part
from nextframe.errors import NextframeError

# Before gradio is imported: it reads this once, and would otherwise report usage online.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

MAX_HORIZON = 50
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
SYSTEM_MONO_FONTS = ["ui-monospace", "monospace"]
PANELS = [("Context (given)", "context"), ("Prediction", "prediction"), ("Truth", "truth")]
ENSEMBLE_PANELS = [("A member", "member"), ("Exceedance probabilities", "probability")]


@dataclass(frozen=True)
class Shown:
    """What the page shows after a prediction: three GIF paths (truth None for an upload)
    and a line about it; with ensemble members, a member's and the probabilities' GIFs."""

    context_gif: str
    prediction_gif: str
    truth_gif: str | None
    caption: str
    member_gif: str | None = None
    probability_gif: str | None = None


class Predictor:
    """The model and the test split behind the page; writes the GIFs it shows. What it shows
    and how is the model's domain's (`nextframe.domains`)."""

    def __init__(
        self, model, test_uint8, n_context: int, out_dir: Path, manifest: dict | None = None
    ):
        self.model = model
        self.shows = get_part(model.frames.domain, "demo")  # what the page shows of it
        self.test_uint8 = test_uint8
        self.n_context = n_context
        self.out_dir = out_dir
        self.manifest = manifest or {}  # the pipeline's (a radar archive's time step)

    def test_sequence(self, index: int, horizon: int, members: int = 0, seed: int = 0) -> Shown:
        if not 0 <= index < len(self.test_uint8):
            raise NextframeError(f"pick a test sequence from 0 to {len(self.test_uint8) - 1}")
        if members and not 2 <= members <= self.shows.MAX_MEMBERS:
            raise NextframeError(
                f"members must be 0 (none) or 2 to {self.shows.MAX_MEMBERS}, got {members}"
                if self.shows.MAX_MEMBERS
                else "members: this model gives one forecast; members come from radar models"
            )
        sequence = self.shows.window(self.model, self.test_uint8[index])
        context, truth = sequence[: self.n_context], sequence[self.n_context :][:horizon]
        shown = self._predict(context, horizon, truth)
        caption = f"Test sequence {index}: {shown.caption}"
        if len(truth) < horizon:
            caption += f"; the truth ends after {len(truth)} frames"
        ensemble: dict[str, str] = {}
        if members:
            member, probability, fps, about = self.shows.ensemble_panels(
                self.model, context, horizon, self.manifest, members, seed
            )
            ensemble = self._gifs({"member": member, "probability": probability}, None, fps)
            caption += f"; {about}"
        return Shown(
            shown.context_gif,
            shown.prediction_gif,
            shown.truth_gif,
            caption,
            ensemble.get("member"),
            ensemble.get("probability"),
        )

    def upload(self, path: str, horizon: int) -> Shown:
        if self.shows.UPLOAD_REFUSAL is not None:
            raise NextframeError(self.shows.UPLOAD_REFUSAL)
        from nextframe.predicting import read_context

        # its last frames at the model's rate, as `nextframe predict` reads them; named by its
        # file name, not Gradio's cache path
        frames = self.model.frames
        context, described = read_context(
            Path(path), frames, frames.n_context or self.n_context, name=Path(path).name
        )
        note = f" ({'; '.join(described)})" if described else ""
        shown = self._predict(context, horizon, None)
        return Shown(
            shown.context_gif,
            shown.prediction_gif,
            None,
            f"{Path(path).name}: {shown.caption}{note}",
        )

    def _predict(self, context: np.ndarray, horizon: int, truth: np.ndarray | None) -> Shown:
        if not 1 <= horizon <= MAX_HORIZON:
            raise NextframeError(f"horizon must be between 1 and {MAX_HORIZON}, got {horizon}")
        predicted, draw, fps, caption = self.shows.panels(
            self.model, context, horizon, self.manifest
        )
        paths = self._gifs({"context": context, "predicted": predicted, "truth": truth}, draw, fps)
        return Shown(paths["context"], paths["predicted"], paths.get("truth"), caption)

    def _gifs(self, panels: dict, draw, fps: float) -> dict[str, str]:
        """Each panel's frames drawn (`draw(frames, kind)`; None: drawn already) as a GIF in
        the page's folder; their paths by kind (a panel with no frames has none)."""
        from nextframe.render import save_gif

        paths = {}
        for kind, frames in panels.items():
            if frames is None or len(frames) == 0:
                continue
            paths[kind] = str(self.out_dir / f"{kind}-{uuid.uuid4().hex}.gif")
            save_gif(paths[kind], frames if draw is None else draw(frames, kind), fps)
        return paths


def build_page(predictor: Predictor, default_horizon: int):
    """The page (a `gradio.Blocks`): inputs, the Predict button, three animations."""
    import gradio as gr

    n_test = len(predictor.test_uint8)

    max_members = predictor.shows.MAX_MEMBERS

    def run(index, upload, horizon, members=0) -> tuple:
        try:
            if upload:
                shown = predictor.upload(upload, int(horizon))
            else:
                shown = predictor.test_sequence(int(index), int(horizon), int(members))
        except NextframeError as exc:
            raise gr.Error(str(exc)) from None
        answer = (shown.context_gif, shown.prediction_gif, shown.truth_gif, shown.caption)
        return (*answer, shown.member_gif, shown.probability_gif) if max_members else answer

    # Gradio keeps a copy of every GIF it shows: those older than an hour go, hourly.
    with gr.Blocks(
        title="nextframe demo", analytics_enabled=False, delete_cache=(3600, 3600)
    ) as page:
        about = predictor.shows.ABOUT
        gr.Markdown(
            "## nextframe: next-frame prediction\n"
            f"{about} Every predicted frame is made from the model's own previous predictions "
            "(closed loop)."
        )
        with gr.Row():
            index = gr.Number(
                value=0,
                minimum=0,
                maximum=n_test - 1,
                precision=0,
                label=f"Test sequence (0 to {n_test - 1})",
            )
            upload = gr.File(
                label="or upload a clip: a video, GIF or .npy/.npz of frames",
                file_types=[*CLIP_SUFFIXES],
                type="filepath",
                elem_id="upload",
            )
            horizon = gr.Slider(
                1, MAX_HORIZON, value=default_horizon, step=1, label="Frames to predict"
            )
        button = gr.Button("Predict", variant="primary")
        caption = gr.Markdown()
        outputs = _animations(gr, PANELS)  # three abreast, even on narrow screens
        inputs = [index, upload, horizon]
        if max_members:  # the model's own ensemble: a member and the probabilities
            members = gr.Slider(0, max_members, value=0, step=1, label="Ensemble members (0: none)")
            inputs.append(members)
            ensemble = _animations(gr, ENSEMBLE_PANELS)
            button.click(run, inputs, [*outputs, caption, *ensemble])
        else:
            button.click(run, inputs, [*outputs, caption])
    return page


def _animations(gr, panels: list[tuple[str, str]]) -> list:
    """A row of titled animations, one per (title, element id), for GIF paths."""
    images = []
    with gr.Row():
        for title, elem_id in panels:
            with gr.Column(min_width=200):
                gr.Markdown(f"**{title}**")
                images.append(
                    gr.Image(
                        type="filepath",
                        show_label=False,
                        interactive=False,
                        buttons=["download", "fullscreen"],
                        elem_id=elem_id,
                    )
                )
    return images


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        help="a .keras file or an MLflow model URI such as models:/nextframe-convlstm@champion "
        "(default: the pipeline's model, paths.model in dvc.yaml)",
    )
    parser.add_argument(
        "--test", type=Path, help="test windows (default: the pipeline's, paths.test in dvc.yaml)"
    )
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--port", default=7860, type=int)
    args = parser.parse_args()
    if importlib.util.find_spec("gradio") is None:
        raise NextframeError("the demo needs Gradio, the `demo` extra: `make demo` installs it")

    import gradio as gr

    from nextframe.data.windows import WindowFile
    from nextframe.ops.layout import pipeline_path
    from nextframe.ops.registry import load_model
    from nextframe.params import load_params
    from nextframe.rollout import compiled_rollout

    data = load_params(args.params).data
    test_path = args.test or pipeline_path("test")
    if test_path is None:
        raise NextframeError("no dvc.yaml here to take the test split from: give --test")
    test_windows = WindowFile(test_path)
    if test_windows.shape[1] <= data.n_context:
        raise NextframeError(
            f"{test_path}: expected windows of more than {data.n_context} frames, "
            f"got {test_windows.shape}"
        )
    model = load_model(str(args.model or pipeline_path("model")))
    expected = get_part(model.frames.domain, "demo").frame_shape(model.frames)
    if expected is not None and test_windows.shape[2:] != expected:
        raise NextframeError(
            f"{test_path}: frames of {test_windows.shape[2:]}, the model's are {expected}"
        )
    manifest_path = pipeline_path("manifest")
    manifest = {}
    if manifest_path is not None and manifest_path.is_file():
        from nextframe.io import load_json

        manifest = load_json(manifest_path)
    compiled_rollout(model).warm_up()  # the first Predict answers as fast as the rest
    theme = gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO_FONTS)
    with tempfile.TemporaryDirectory(prefix="nextframe-demo-") as out_dir:
        predictor = Predictor(model, test_windows, data.n_context, Path(out_dir), manifest)
        page = build_page(predictor, data.horizon)
        print(f"demo: http://127.0.0.1:{args.port}/ (Ctrl-C stops it)", flush=True)
        try:  # until Ctrl-C or SIGTERM; then the server stops before the temp files go
            page.launch(
                server_name="127.0.0.1",
                server_port=args.port,
                share=False,
                ssr_mode=False,
                theme=theme,
                allowed_paths=[out_dir],
                show_error=True,
                quiet=True,
                # No run history (its page offers a Hugging Face bucket) and no "Built with Gradio".
                run_history=False,
                footer_links=["api", "settings"],
            )
        finally:
            page.close()


def main() -> None:
    cli.run(_main)


if __name__ == "__main__":
    main()
