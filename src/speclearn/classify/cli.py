"""`speclearn classify train|predict`: material identification from spectra."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speclearn.cli.common import DeviceOption, OutOption, OverwriteOption, SeedOption, SpectraOption, say
from speclearn.core.errors import InputError
from speclearn.io import check_output, read_spectra, write_table_csv

app = typer.Typer(no_args_is_help=True, help="Classify spectra: CNN with transfer learning, kNN, SVM, RF, PLS-DA.")


@app.command("train")
def train_command(
    spectra: SpectraOption,
    labels: Annotated[Path, typer.Option("--labels", help="CSV: id,label (or id,class).")],
    out: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    method: Annotated[str, typer.Option("--method", help="cnn, knn, svm, rf or plsda.")] = "cnn",
    epochs: Annotated[int, typer.Option("--epochs", help="CNN fine-tuning epochs.")] = 100,
    pretrain: Annotated[bool, typer.Option("--pretrain/--no-pretrain", help="CNN: pretrain on simulated spectra.")] = True,
    pretrain_epochs: Annotated[int, typer.Option("--pretrain-epochs", help="CNN pretraining epochs.")] = 10,
    seed: SeedOption = 0,
    device: DeviceOption = "auto",
    overwrite: OverwriteOption = False,
) -> None:
    """Train a classifier on labelled spectra and save it to a model folder."""
    from speclearn.classify.base import classifier_types, read_labels

    types = classifier_types()
    if method not in types:
        raise InputError(f"unknown --method {method!r}; choose from {', '.join(types)}")
    if epochs < 1 or pretrain_epochs < 1:
        raise InputError("--epochs and --pretrain-epochs must be at least 1")
    check_output(out, overwrite=overwrite, inputs=[spectra, labels])
    data = read_spectra(spectra)
    target = read_labels(labels, data)
    options = {"seed": seed}
    if method == "cnn":
        options.update(epochs=epochs, pretrain=pretrain, pretrain_epochs=pretrain_epochs, device=device,
                       progress=True)
    classifier = types[method](**options).fit(data, target)
    classifier.save(out, overwrite=overwrite)
    say(f"wrote {method} classifier for {len(classifier.classes_)} classes "
        f"({data.n_spectra} spectra, {data.n_channels} channels) to {out}")


@app.command("predict")
def predict_command(
    model: Annotated[Path, typer.Option("--model", help="Model folder from `classify train`.")],
    spectra: SpectraOption,
    out: OutOption,
    device: DeviceOption = "auto",
    overwrite: OverwriteOption = False,
) -> None:
    """Write id, class, probability and top1..top3 with probabilities."""
    from speclearn.classify.base import load_classifier
    from speclearn.models import use_device

    check_output(out, overwrite=overwrite, inputs=[spectra, model])
    classifier = use_device(load_classifier(model), device)
    data = read_spectra(spectra, expect=classifier.axis_)
    table = classifier.predict(data)
    write_table_csv(table, out, overwrite=overwrite)
    say(f"wrote {len(table)} predictions to {out}")
