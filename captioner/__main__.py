"""Command line: python -m captioner {caption,features,train,scenes,photos,evaluate,bench,export,push} ..."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import captioner


def _add_decoding(parser) -> None:
    """Every decoding knob becomes a flag, with its help and limits from captioner.options."""
    from .options import DecodingOptions
    for knob in DecodingOptions.knobs():
        meta, flag = knob.metadata, "--" + knob.name.replace("_", "-")
        if meta["choices"]:
            parser.add_argument(flag, choices=meta["choices"], default=None, help=f"{meta['help']} (default {knob.default})")
        else:
            kind = float if "float" in str(knob.type) else int
            parser.add_argument(flag, type=kind, default=None,
                                help=f"{meta['help']}; {meta['low']:g}..{meta['high']:g} (default {knob.default})")


def _decoding_kwargs(args) -> dict:
    """The decoding flags that were given (the rest keep DecodingOptions' defaults)."""
    from .options import DecodingOptions
    return {knob.name: getattr(args, knob.name) for knob in DecodingOptions.knobs()
            if getattr(args, knob.name) is not None}


def _weights(value: str):
    """`--encoder-weights none` builds the encoder with random weights (offline tests)."""
    return None if value.lower() == "none" else value


def cmd_caption(args) -> int:
    from .api import Captioner
    from .images import InputError
    model = Captioner.load(args.checkpoint, _weights(args.encoder_weights))
    failed = 0
    for image in args.images:
        try:
            result = model.caption(image, **_decoding_kwargs(args))
        except InputError as error:
            failed += 1
            print(json.dumps({"image": image, "error": str(error)}) if args.json
                  else f"{image}: error: {error}", file=sys.stdout if args.json else sys.stderr)
            continue
        if args.json:
            print(json.dumps({"image": image, **result.to_dict()}))
        else:
            print(f"{image}: {result.text}")
    return 1 if failed else 0


def _model_and_train_config(args):
    from .config import ModelConfig, TrainConfig
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    values = vars(args)
    return (ModelConfig(**{k: values[k] for k in model_fields if values.get(k) is not None}),
            TrainConfig(**{k: values[k] for k in train_fields if values.get(k) is not None}))


def _add_config_fields(parser, cls, skip=()) -> None:
    """Every dataclass field becomes a flag (`--batch-size`), so every setting is on the CLI."""
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = type(f.default)
        if kind is bool:
            parser.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=None,
                                help=f"(default {f.default})")
        else:
            parser.add_argument(flag, type=kind, default=None, help=f"(default {f.default})")


def cmd_train(args) -> int:
    from .train import train
    model_config, train_config = _model_and_train_config(args)
    if not train_config.captions or not train_config.images:
        raise SystemExit("train: --captions and --images are required")
    # Box supervision reads the emoji world's nouns and irregular plurals ("pairs of skis", "mice").
    from .worlds import EMOJI
    history = train(train_config, model_config, args.cache, _weights(args.encoder_weights), resume=args.resume,
                    known_phrases=EMOJI.category_words() if train_config.instances else None)
    print(json.dumps({"checkpoint": train_config.out, **history}))
    return 0


def cmd_features(args) -> int:
    from . import data
    from .encoders import build_encoder
    captions = data.load_captions(args.captions, args.images, args.limit_captions)
    encoder = build_encoder(args.encoder, _weights(args.encoder_weights), args.image_size, litert=True)
    folder = data.extract_features(encoder, args.images, captions.files, args.cache, args.batch_size)
    print(f"features for {len(captions.files)} images in {folder}")
    return 0


def cmd_scenes(args) -> int:
    from .worlds import render
    from .worlds.emoji import HELDOUT_FAMILY, TRAIN_FAMILIES
    families = args.textures.split(",") if args.textures else \
        ((HELDOUT_FAMILY,) if args.heldout_texture else TRAIN_FAMILIES)
    try:
        summary = render("emoji", args.out, args.images, args.seed, workers=args.workers,
                         image_size=args.size, families=families)
    except ValueError as error:
        raise SystemExit(f"scenes: {error}") from None
    print(json.dumps(summary))
    return 0


def cmd_photos(args) -> int:
    from .worlds import render
    from .worlds.photos.sources import SourceError
    try:
        summary = render("photos", args.out, args.images, args.seed, split=args.split,
                         workers=args.workers, image_size=args.size)
    except SourceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


def cmd_evaluate(args) -> int:
    from .api import Captioner
    from .evaluate import evaluate
    if not args.labels and not (args.captions and args.images):
        raise SystemExit("evaluate: give --captions and --images (a COCO-format set), or --labels and --photos")
    if args.labels and not args.photos:
        raise SystemExit("evaluate: --labels needs --photos (the folder the labelled files are in)")
    model = Captioner.load(args.checkpoint)
    figures = {}
    if args.captions and args.images:
        figures.update(evaluate(model, args.captions, args.images, args.instances, args.limit,
                                world=args.world, **_decoding_kwargs(args)))
    if args.labels:
        from .subjects import evaluate_photos
        photo_figures, captions = evaluate_photos(model, args.labels, args.photos, args.captions_out,
                                                  **_decoding_kwargs(args))
        for file, text in captions.items():
            print(f"{file}: {text}", file=sys.stderr)
        figures.update(photo_figures)
    print(json.dumps(figures) if args.json else "\n".join(f"{k}: {v}" for k, v in figures.items()))
    return 0


def cmd_bench(args, sections=()) -> int:
    """`sections`: more figures for bench.run_benchmarks (captioner.web.bench adds the page's)."""
    from .api import Captioner
    from .bench import example_scenes, markdown_table, run_benchmarks
    model = Captioner.load(args.checkpoint).warm_up()   # as the app serves: warmed, BLAS on one thread
    images = [args.image] if args.image else example_scenes()
    figures = run_benchmarks(model, images[0], repeats=args.repeats, decode_images=images, sections=sections)
    if args.markdown:
        path = Path(args.markdown)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Sections measured by other means (`make loadtest`'s "## Serving a crowd") stay.
        kept = path.read_text(encoding="utf-8").partition("\n## ")[1:] if path.is_file() else ()
        path.write_text("# Benchmarks\n\n" + markdown_table(figures) + "".join(kept), encoding="utf-8")
    print(json.dumps(figures) if args.json else "\n".join(f"{k}: {v}" for k, v in figures.items()))
    return 0


def cmd_push(args) -> int:
    from .hub import push
    print(push(args.checkpoint, args.repo_id, private=args.private))
    return 0


def cmd_export(args) -> int:
    from .api import Captioner
    from .export import export_saved_model
    model = Captioner.load(args.checkpoint, _weights(args.encoder_weights))
    print(f"SavedModel written to {export_saved_model(model, args.out)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m captioner", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add_commands in (_model_commands, _data_commands, _tool_commands):
        add_commands(sub)
    return parser


def _model_commands(sub) -> None:
    """caption, features, train."""
    from .config import ModelConfig, TrainConfig
    p = sub.add_parser("caption", help="caption image files")
    p.add_argument("images", nargs="+")
    p.add_argument("--checkpoint", default=None, help="checkpoint dir or hf://owner/repo (default: shipped model)")
    p.add_argument("--json", action="store_true", help="one JSON object per line per image")
    p.add_argument("--encoder-weights", default="default", help="a local weights file, or none (random)")
    _add_decoding(p)
    p.set_defaults(run=cmd_caption)

    p = sub.add_parser("features", help="cache encoder features of a COCO-format dataset")
    for flag in ("--captions", "--images"):
        p.add_argument(flag, required=True)
    p.add_argument("--cache", default="data/features")
    p.add_argument("--encoder", default="efficientnet_lite0")
    p.add_argument("--image-size", type=int, default=0, help="encoder input side; 0: the encoder's own")
    p.add_argument("--encoder-weights", default="default")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit-captions", type=int, default=0)
    p.set_defaults(run=cmd_features)

    p = sub.add_parser("train", help="train on a COCO-format dataset")
    _add_config_fields(p, TrainConfig)
    _add_config_fields(p, ModelConfig, skip=("grid_size", "feature_dim"))   # from the encoder
    p.add_argument("--cache", default="data/features", help="feature cache root")
    p.add_argument("--encoder-weights", default="default")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.set_defaults(run=cmd_train)


def _data_commands(sub) -> None:
    """scenes, photos, evaluate."""
    p = sub.add_parser("scenes", help="render the emoji world: emoji scenes")
    p.add_argument("--out", required=True)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--heldout-texture", action="store_true",
                   help="render only the texture family held out of training (to measure settings on it)")
    p.add_argument("--textures", default="", help="comma-separated texture families (default: the training ones)")
    p.set_defaults(run=cmd_scenes)

    p = sub.add_parser("photos", help="compose the photo world: real cut-outs on real background photos")
    p.add_argument("--out", required=True)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", choices=("train", "heldout"), default="train",
                   help="compose from the training stamps and backgrounds, or only from the held-out ones")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--size", type=int, default=256)
    p.set_defaults(run=cmd_photos)

    p = sub.add_parser("evaluate", help="BLEU/CIDEr and a world's metrics on held-out images")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--captions", default=None, help="COCO captions.json of held-out images")
    p.add_argument("--images", default=None, help="the folder of those images")
    p.add_argument("--instances", default=None, help="a rendered world's instances.json for its metrics")
    p.add_argument("--world", default="emoji", help="the registered world whose tables score --instances: "
                   "emoji (the emoji scenes) or photos (the photo composites)")
    p.add_argument("--labels", default=None, help="hand labels of real photos (assets/validation/labels.json): "
                   "main_subject_recall, overall and where the subject is in the model's vocabulary")
    p.add_argument("--photos", default=None, help="the folder the labelled photos are in (data/validation)")
    p.add_argument("--captions-out", default=None, help="also write each photo's caption here (JSON lines)")
    _add_decoding(p)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_evaluate)


def _tool_commands(sub) -> None:
    """bench, push, export."""
    p = sub.add_parser("bench", help="speed of encoding, decoding and training vs the eager way")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--image", default=None, help="time everything on this image (default: the example scenes "
                   "for decoding, the first of them for the rest)")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--markdown", default=None, help="also write the figures as a Markdown table here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_bench)

    p = sub.add_parser("push", help="upload a checkpoint to the Hugging Face Hub")
    p.add_argument("checkpoint")
    p.add_argument("repo_id", help="owner/name")
    p.add_argument("--private", action="store_true")
    p.set_defaults(run=cmd_push)

    p = sub.add_parser("export", help="write a TensorFlow SavedModel (image bytes in, caption out)")
    p.add_argument("--out", required=True)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--encoder-weights", default="default")
    p.set_defaults(run=cmd_export)


def main(argv=None) -> int:
    captioner.import_tensorflow_quietly()        # CAPTIONER_TF_LOGS=1 shows TensorFlow's C++ start-up log
    return run(build_parser().parse_args(argv))


def run(args, **extra) -> int:
    """Run a parsed command; `extra` goes to it as keywords (captioner.web.bench: bench's sections)."""
    from .checkpoint import CheckpointError
    try:
        return args.run(args, **extra)
    except (CheckpointError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
