"""Training benchmarks: the trainer against the reference loop, bf16 against float32, gated against ungated."""

from __future__ import annotations

import statistics

import torch

from benchmarks.config import BenchConfig
from benchmarks.reference import ReferenceLoop
from benchmarks.report import Figure, Report, load_average, median, ratio_figure
from benchmarks.workload import Cifar10, build_trainer, make_spec, train_seconds, training_data
from gating_core.data.pipeline import DeviceImages
from gating_core.train.precision import bf16_supported
from gating_core.train.trainer import Trainer, TrainingData

CPU = torch.device("cpu")
# Gate kinds of the throughput comparison, each against the ungated network.
GATED_KINDS = {"model1": ("block-gated (model1)", 0.97), "exclusive": ("layer-gated (exclusive)", 0.85)}


def benchmark_trainer(config: BenchConfig, cifar: Cifar10, report: Report) -> None:
    """Time trainer epochs against the reference loop and compare bf16 with float32 test accuracy.

    Every seed trains one float32 and one bf16 trainer from the same weights and
    batch order. The first seed's first `config.rounds` epochs are also the timed
    rounds: each round runs one reference epoch, one float32 epoch and one bf16
    epoch back to back, and the first `warmup_rounds` rounds are not counted.
    """
    precisions = ["float32", "bf16"] if bf16_supported(CPU) else ["float32"]
    data = training_data(cifar, config.train_images, config.epoch_test_images, CPU)
    final_test = DeviceImages.from_image_set(cifar.test, cifar.test_indices(config.test_images), CPU)
    seconds: dict[str, list[float]] = {"reference": [], **{precision: [] for precision in precisions}}
    accuracy: dict[str, list[float]] = {precision: [] for precision in precisions}

    reference = ReferenceLoop(
        make_spec(config, precision="float32"),
        cifar.train.images[data.train.indices],
        cifar.train.labels[data.train.indices],
        cifar.mean,
        cifar.std,
        workers=config.reference_workers,
    )
    for seed in range(config.accuracy_seeds):
        trainers = _train_seed(config, data, precisions, seed, reference, seconds)
        for precision, trainer in trainers.items():
            accuracy[precision].append(trainer.evaluate(final_test).accuracy)

    timed_seconds = {name: values[config.warmup_rounds:] for name, values in seconds.items()}
    report.figures.extend(_epoch_figures(timed_seconds, precisions))
    report.figures.append(_accuracy_figure(accuracy, config))
    report.add_details("a. Trainer against the reference loop", _trainer_details(config, seconds, accuracy))


def _train_seed(config: BenchConfig, data: TrainingData, precisions: list[str], seed: int,
                reference: ReferenceLoop, seconds: dict[str, list[float]]) -> dict[str, Trainer]:
    """Train one trainer per precision for `accuracy_epochs`; seed 0 also times its first rounds."""
    trainers = {
        precision: build_trainer(
            make_spec(config, precision=precision, seed=seed, epochs=config.accuracy_epochs), data, CPU
        )
        for precision in precisions
    }
    for epoch in range(config.accuracy_epochs):
        timed = seed == 0 and epoch < config.rounds
        if timed:
            seconds["reference"].append(reference.run_epoch()[0])
        for precision, trainer in trainers.items():
            metrics = trainer.run_epoch()
            if timed:
                seconds[precision].append(train_seconds(len(data.train), metrics.images_per_second))
    return trainers


def _epoch_figures(seconds: dict[str, list[float]], precisions: list[str]) -> list[Figure]:
    reference = median(seconds["reference"])
    figures = []
    for precision, target in (("float32", 0.55), ("bf16", 0.35)):
        name = f"Epoch time, trainer ({precision}) / reference loop (float32)"
        if precision not in precisions:
            figures.append(Figure("a", name, "not measured: this CPU has no bf16 support", "≤ 0.35", None,
                                  load_average()))
            continue
        ours = median(seconds[precision])
        detail = f"{ours:.2f} s / {reference:.2f} s"
        figures.append(ratio_figure("a", name, ours / reference, target, at_most=True, detail=detail))
    return figures


def _accuracy_figure(accuracy: dict[str, list[float]], config: BenchConfig) -> Figure:
    name = f"Test accuracy, bf16 − float32 (mean of {config.accuracy_seeds} seeds)"
    if "bf16" not in accuracy:
        return Figure("a", name, "not measured: this CPU has no bf16 support", "within ±0.5 points", None,
                      load_average())
    float32 = 100 * statistics.fmean(accuracy["float32"])
    bf16 = 100 * statistics.fmean(accuracy["bf16"])
    difference = bf16 - float32
    value = f"{difference:+.2f} points ({bf16:.2f} % vs {float32:.2f} %)"
    return Figure("a", name, value, "within ±0.5 points", abs(difference) <= 0.5, load_average())


def _trainer_details(config: BenchConfig, seconds: dict[str, list[float]],
                     accuracy: dict[str, list[float]]) -> list[str]:
    lines = [
        f"ResNet-{config.depth}, batch {config.batch_size}, {config.train_images} CIFAR-10 training images, "
        "SGD (lr 0.1, momentum 0.9, weight decay 1e-4), on the CPU. The reference loop (`benchmarks.reference`) "
        f"feeds PIL images through torchvision transforms and a DataLoader with {config.reference_workers} worker "
        "process(es) to a contiguous float32 model and uses SGD's default implementation. The trainer keeps the "
        "images as uint8 tensors, crops and flips whole batches, and uses channels_last and the fused SGD step. "
        "The trainer's time is that of its training pass, without the evaluation that follows each epoch. "
        f"Seconds of each round ({_warmup_note(config)}):",
        "",
        "| Round | " + " | ".join(seconds) + " |",
        "|---|" + "---|" * len(seconds),
    ]
    for index in range(len(seconds["reference"])):
        values = " | ".join(f"{column[index]:.2f}" for column in seconds.values())
        lines.append(f"| {index + 1} | {values} |")
    return lines + ["", *_accuracy_details(config, accuracy)]


def _accuracy_details(config: BenchConfig, accuracy: dict[str, list[float]]) -> list[str]:
    milestones = make_spec(config, epochs=config.accuracy_epochs).train.lr_milestones
    schedule = f"lr ÷10 after epochs {', '.join(map(str, milestones))}" if milestones else "constant lr"
    lines = [
        f"Accuracy: {config.accuracy_epochs} epoch(s) on the same {config.train_images} images ({schedule}), "
        f"then evaluation on {config.test_images} CIFAR-10 test "
        "images in the run's own precision. Each seed trains both precisions from the same initial weights and "
        "batch order.",
        "",
        "| Seed | " + " | ".join(f"{precision} accuracy (%)" for precision in accuracy) + " |",
        "|---|" + "---|" * len(accuracy),
    ]
    for seed in range(config.accuracy_seeds):
        values = " | ".join(f"{100 * column[seed]:.2f}" for column in accuracy.values())
        lines.append(f"| {seed} | {values} |")
    if config.accuracy_seeds < 2 or "bf16" not in accuracy:
        return lines
    differences = [100 * (bf16 - float32) for bf16, float32 in zip(accuracy["bf16"], accuracy["float32"])]
    standard_error = statistics.stdev(differences) / len(differences) ** 0.5
    spread = 100 * statistics.stdev(accuracy["float32"])
    return lines + [
        "",
        f"bf16 − float32 per seed: {', '.join(f'{difference:+.2f}' for difference in differences)} points; mean "
        f"{statistics.fmean(differences):+.2f} ± {standard_error:.2f} (standard error). The float32 accuracy "
        f"varies by {spread:.2f} points (standard deviation) from seed to seed.",
    ]


def benchmark_gates(config: BenchConfig, cifar: Cifar10, report: Report) -> None:
    """Compare the training throughput of gated ResNets with the ungated one, epoch by epoch in turn.

    Both precisions are measured where the CPU has bf16, which the trainer then picks by default.
    """
    data = training_data(cifar, config.throughput_images, config.batch_size, CPU)
    rounds = config.warmup_rounds + config.throughput_repeats
    precisions = ["bf16", "float32"] if bf16_supported(CPU) else ["float32"]
    variants = [(kind, precision) for precision in precisions for kind in ("none", *GATED_KINDS)]
    trainers = {}
    for kind, precision in variants:
        weight = 0.0 if kind == "none" else config.gate_loss_weight
        spec = make_spec(config, gate=kind, precision=precision, gate_loss_weight=weight, epochs=rounds)
        trainers[kind, precision] = build_trainer(spec, data, CPU)
    rates: dict[tuple[str, str], list[float]] = {variant: [] for variant in variants}
    for _ in range(rounds):
        for variant, trainer in trainers.items():
            rates[variant].append(trainer.run_epoch().images_per_second)

    for precision in precisions:
        ungated = median(rates["none", precision][config.warmup_rounds:])
        for kind, (title, target) in GATED_KINDS.items():
            gated = median(rates[kind, precision][config.warmup_rounds:])
            name = f"Training throughput, {title} / ungated, {precision}"
            detail = f"{gated:.0f} / {ungated:.0f} images/s"
            report.figures.append(ratio_figure("b", name, gated / ungated, target, at_most=False, detail=detail))
    report.add_details("b. Gated against ungated training throughput", _gates_details(config, rates, rounds))


def _gates_details(config: BenchConfig, rates: dict[tuple[str, str], list[float]], rounds: int) -> list[str]:
    lines = [
        f"ResNet-{config.depth}, batch {config.batch_size}, epochs of {config.throughput_images} CIFAR-10 images "
        f"through the trainer, gate-loss weight {config.gate_loss_weight}, on the CPU. All variants take turns, one "
        f"epoch each per round. Images per second of each round ({_warmup_note(config)}):",
        "",
        "| Round | " + " | ".join(f"{kind}, {precision}" for kind, precision in rates) + " |",
        "|---|" + "---|" * len(rates),
    ]
    for index in range(rounds):
        lines.append(f"| {index + 1} | " + " | ".join(f"{values[index]:.0f}" for values in rates.values()) + " |")
    return lines


def _warmup_note(config: BenchConfig) -> str:
    if config.warmup_rounds == 0:
        return "no warm-up round"
    return f"the first {config.warmup_rounds} round(s) are the warm-up and are left out of the medians"
