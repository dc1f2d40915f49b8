"""Chart and table builders: each takes a DataFrame and returns a Plotly figure or a DataFrame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

SUMMARY_COLUMNS = [
    "lambda",
    "runs",
    "finished",
    "mean_test_accuracy",
    "std_test_accuracy",
    "median_test_accuracy",
    "mean_train_loss",
    "mean_gate",
    "skip_rate",
]


def training_curves(metrics: pd.DataFrame) -> go.Figure:
    """Plot losses, errors, the mean gate value and the learning rate per epoch."""
    figure = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=("Loss per image", "Accuracy and error", "Mean gate value", "Learning rate"),
    )
    epochs = metrics["epoch"]
    figure.add_trace(go.Scatter(x=epochs, y=metrics["train_loss"], name="training cross-entropy"), row=1, col=1)
    figure.add_trace(go.Scatter(x=epochs, y=metrics["gate_loss"], name="gate loss"), row=1, col=1)
    figure.add_trace(go.Scatter(x=epochs, y=metrics["test_loss"], name="test cross-entropy"), row=1, col=1)
    figure.add_trace(go.Scatter(x=epochs, y=metrics["test_accuracy"], name="test accuracy"), row=1, col=2)
    figure.add_trace(go.Scatter(x=epochs, y=metrics["train_error"], name="training error"), row=1, col=2)
    if "validation_accuracy" in metrics and metrics["validation_accuracy"].notna().any():
        figure.add_trace(go.Scatter(x=epochs, y=metrics["validation_accuracy"], name="validation accuracy"), row=1, col=2)
    if metrics["mean_gate"].notna().any():
        figure.add_trace(go.Scatter(x=epochs, y=metrics["mean_gate"], name="mean g, training"), row=2, col=1)
        figure.add_trace(go.Scatter(x=epochs, y=metrics["test_mean_gate"], name="mean g, test"), row=2, col=1)
    figure.add_trace(go.Scatter(x=epochs, y=metrics["lr"], name="learning rate", line_shape="hv"), row=2, col=2)
    figure.update_xaxes(title_text="epoch")
    figure.update_layout(height=560, margin={"t": 40, "b": 40}, legend={"orientation": "h", "y": -0.15})
    return figure


def gate_histogram(samples: pd.DataFrame, threshold: float | None = None, bins: int = 40) -> go.Figure:
    """Histogram of the gate value, correctly and wrongly classified images stacked."""
    figure = go.Figure()
    edges = {"start": 0.0, "end": 1.0, "size": 1.0 / bins}
    for correct, name, colour in ((True, "correct", "#2a9d8f"), (False, "wrong", "#e76f51")):
        values = samples.loc[samples["correct"] == correct, "gate"]
        figure.add_trace(go.Histogram(x=values, xbins=edges, name=name, marker_color=colour))
    if threshold is not None:
        figure.add_vline(x=threshold, line_dash="dash", annotation_text=f"threshold {threshold:.2f}")
    figure.update_layout(
        barmode="stack",
        xaxis_title="gate value g (low: skips the gated computation)",
        yaxis_title="test images",
        height=360,
        margin={"t": 30, "b": 40},
    )
    return figure


def sweep_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per lambda: run counts and test accuracy as mean, standard deviation and median over seeds."""
    if runs.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    finished = runs[runs["status"] == "succeeded"]
    rows = []
    for value, group in runs.groupby("gate_loss_weight"):
        done = finished[finished["gate_loss_weight"] == value]
        accuracy = done["test_accuracy"].astype(float)
        rows.append(
            {
                "lambda": value,
                "runs": len(group),
                "finished": len(done),
                "mean_test_accuracy": accuracy.mean() if len(done) else np.nan,
                # Sample standard deviation over seeds; undefined for a single seed.
                "std_test_accuracy": accuracy.std(ddof=1) if len(done) > 1 else np.nan,
                "median_test_accuracy": accuracy.median() if len(done) else np.nan,
                "mean_train_loss": done["train_loss"].astype(float).mean() if len(done) else np.nan,
                "mean_gate": done["mean_gate"].astype(float).mean() if len(done) else np.nan,
                "skip_rate": done["skip_rate"].astype(float).mean() if len(done) else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS).sort_values("lambda").reset_index(drop=True)


def accuracy_vs_lambda(summary: pd.DataFrame, baseline_accuracy: float | None = None) -> go.Figure:
    """Test accuracy (mean ± std over seeds, and median) against lambda on a log axis, skip rate on a second axis.

    Lambda 0 cannot sit on a log axis, so its accuracy is drawn as the baseline line
    when no other baseline is given.
    """
    positive = summary[summary["lambda"] > 0]
    zero = summary[summary["lambda"] == 0]
    if baseline_accuracy is None and not zero.empty:
        baseline_accuracy = float(zero["mean_test_accuracy"].iloc[0])

    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(
        go.Scatter(
            x=positive["lambda"],
            y=positive["mean_test_accuracy"],
            error_y={"type": "data", "array": positive["std_test_accuracy"].fillna(0)},
            mode="lines+markers",
            name="test accuracy, mean ± std",
        ),
        secondary_y=False,
    )
    figure.add_trace(
        go.Scatter(
            x=positive["lambda"],
            y=positive["median_test_accuracy"],
            mode="markers",
            marker_symbol="diamond-open",
            marker_size=10,
            name="test accuracy, median",
        ),
        secondary_y=False,
    )
    if positive["skip_rate"].notna().any():
        figure.add_trace(
            go.Scatter(
                x=positive["lambda"],
                y=positive["skip_rate"],
                mode="lines+markers",
                line_dash="dot",
                name="skip rate (g < 0.5)",
            ),
            secondary_y=True,
        )
    if baseline_accuracy is not None:
        figure.add_hline(
            y=baseline_accuracy,
            line_dash="dash",
            line_color="grey",
            annotation_text=f"baseline {baseline_accuracy:.4f}",
        )
    figure.update_xaxes(type="log", title_text="λ (gate-loss weight)")
    figure.update_yaxes(title_text="test accuracy", secondary_y=False)
    figure.update_yaxes(title_text="skip rate", range=[0, 1], secondary_y=True)
    figure.update_layout(height=420, margin={"t": 30, "b": 40}, legend={"orientation": "h", "y": -0.25})
    return figure
