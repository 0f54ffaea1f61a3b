"""`speclearn classify train|predict`: material identification from spectra."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speclearn.cli.common import (BudgetOption, DeviceOption, OutOption, OverwriteOption, QuietOption, ReportOption,
                                  SchedulerOption, SeedOption, SpectraOption, check_domain, check_outputs, say,
                                  write_report)
from speclearn.core.errors import InputError
from speclearn.io import read_spectra, write_table_csv

app = typer.Typer(no_args_is_help=True, help="Classify spectra: CNN with transfer learning, kNN, SVM, RF, PLS-DA.")


@app.command("train")
def train_command(
    spectra: SpectraOption,
    labels: Annotated[Path, typer.Option("--targets", help="The class of each spectrum, CSV: id,label (or id,class).")],
    out: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    method: Annotated[str, typer.Option("--method", help="auto (knn, svm, rf, plsda, cnn ranked by stratified "
                                                         "cross-validation), cnn, knn, svm, rf or plsda.")] = "auto",
    groups: Annotated[Path | None, typer.Option("--groups", help="CSV id,group (sample ids): auto keeps each "
                                                                 "group in one fold.")] = None,
    budget_s: BudgetOption = None,
    epochs: Annotated[int, typer.Option("--epochs", help="CNN fine-tuning epochs.")] = 100,
    pretrain: Annotated[bool, typer.Option("--pretrain/--no-pretrain", metavar="", help="CNN: pretrain on simulated spectra.")] = True,
    pretrain_epochs: Annotated[int, typer.Option("--pretrain-epochs", help="CNN pretraining epochs.")] = 10,
    seed: SeedOption = 0,
    device: DeviceOption = "auto",
    report: ReportOption = None,
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Train a classifier on labelled spectra and save it to a model folder."""
    from speclearn.classify.base import read_labels
    from speclearn.models import methods

    types = methods("classify")
    if method != "auto" and method not in types:
        raise InputError(f"unknown --method {method!r}; choose from auto, {', '.join(types)}")
    if epochs < 1 or pretrain_epochs < 1:
        raise InputError("--epochs and --pretrain-epochs must be at least 1")
    check_outputs(out, report=report, overwrite=overwrite, inputs=[spectra, labels, groups])
    data = read_spectra(spectra)
    target = read_labels(labels, data)
    cnn = dict(epochs=epochs, pretrain=pretrain, pretrain_epochs=pretrain_epochs, device=device)
    if method == "auto":
        from speclearn.classify.auto import select_classifier
        from speclearn.models.selection import read_groups, show

        classifier, ranking = select_classifier(data, target, groups=read_groups(groups, data) if groups else None,
                                                seed=seed, budget_s=budget_s, cnn=cnn)
        show(ranking)
        method = ranking.winner
    else:
        options = {"seed": seed} | ({**cnn, "progress": True} if method == "cnn" else {})
        classifier = types[method](**options).fit(data, target)
    classifier.save(out, overwrite=overwrite)
    say(f"wrote {method} classifier for {len(classifier.classes_)} classes "
        f"({data.n_spectra} spectra, {data.n_channels} channels) to {out}")
    write_report(report, "classify train", inputs={"spectra": spectra, "targets": labels, "groups": groups,
                                                   "method": method, "seed": seed}, spectra=data, model=out)


@app.command("predict")
def predict_command(
    model: Annotated[Path, typer.Option("--model", help="Model folder from `classify train`.")],
    spectra: SpectraOption,
    out: OutOption,
    device: DeviceOption = "auto",
    scheduler: SchedulerOption = None,
    report: ReportOption = None,
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Write id, class, probability and top1..top3 with probabilities."""
    from speclearn.classify import SpectralClassifier
    from speclearn.distributed import predict_table, scheduler as cluster
    from speclearn.models import load, use_device

    check_outputs(out, report=report, overwrite=overwrite, inputs=[spectra, model])
    classifier = use_device(load(model, SpectralClassifier), device)
    data = read_spectra(spectra, expect=classifier.axis_)
    check_domain(classifier, data,
                 consequence="their classes are guesses among the trained ones (a class never trained on?)")
    with cluster(scheduler):
        table = predict_table(data, lambda block, rows: classifier.predict(block))
    write_table_csv(table, out, overwrite=overwrite)
    say(f"wrote {len(table)} predictions to {out}")
    write_report(report, "classify predict", inputs={"model": model, "spectra": spectra}, spectra=data, table=table,
                 model=model)
