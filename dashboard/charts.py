"""Chart builders: each takes a DataFrame or an API aggregate and returns a Plotly figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

CORRECT_COLOUR = "#2a9d8f"
WRONG_COLOUR = "#e76f51"


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


def gate_histogram(histogram: dict, threshold: float | None = None) -> go.Figure:
    """Stack the counts of correctly and wrongly classified images per gate-value bin.

    `histogram` is the API's aggregate: bin `edges` over [0, 1] and `correct` and
    `wrong` counts per bin.
    """
    edges = np.asarray(histogram["edges"])
    centres = (edges[:-1] + edges[1:]) / 2
    width = float(edges[1] - edges[0]) if len(edges) > 1 else 1.0
    figure = go.Figure()
    for key, name, colour in (("correct", "correct", CORRECT_COLOUR), ("wrong", "wrong", WRONG_COLOUR)):
        figure.add_trace(go.Bar(x=centres, y=histogram[key], width=width, name=name, marker_color=colour))
    if threshold is not None:
        figure.add_vline(x=threshold, line_dash="dash", annotation_text=f"threshold {threshold:.2f}")
    figure.update_layout(
        barmode="stack",
        bargap=0,
        xaxis_title="gate value g (low: skips the gated computation)",
        yaxis_title="images",
        xaxis_range=[0, 1],
        height=360,
        margin={"t": 30, "b": 40},
    )
    return figure


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


def class_skip_rates(classes: pd.DataFrame, threshold: float) -> go.Figure:
    """Draw the skip rate per class as bars, with mean g and accuracy in the hover text."""
    figure = go.Figure(
        go.Bar(
            x=classes["class_name"],
            y=classes["skip_rate"],
            customdata=np.stack([classes["mean_gate"], classes["accuracy"], classes["count"]], axis=1),
            hovertemplate="%{x}: skip rate %{y:.3f}<br>mean g %{customdata[0]:.3f}, accuracy %{customdata[1]:.3f}"
            "<br>%{customdata[2]} images<extra></extra>",
            marker_color="#457b9d",
        )
    )
    figure.update_layout(
        yaxis_title=f"skip rate (g < {threshold:.2f})",
        yaxis_range=[0, 1],
        height=340,
        margin={"t": 30, "b": 40},
    )
    return figure


def unit_class_heatmap(heatmap: dict) -> go.Figure:
    """Draw the mean gate value per residual unit (rows, input to output) and class (columns) as a heatmap."""
    figure = go.Figure(
        go.Heatmap(
            z=heatmap["values"],
            x=heatmap["classes"],
            y=heatmap["units"],
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            colorbar={"title": "mean g"},
            hovertemplate="%{y}, %{x}: mean g %{z:.3f}<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed", title_text="unit (depth)")
    figure.update_layout(height=max(300, 16 * len(heatmap["units"]) + 120), margin={"t": 30, "b": 40})
    return figure


def decile_skip_rates(deciles: pd.DataFrame, score_name: str) -> go.Figure:
    """Draw the skip rate per score decile as bars, lowest scores first, with mean g on a second axis."""
    labels = [f"{row.decile}: {row.score_from:.3g}–{row.score_to:.3g}" for row in deciles.itertuples()]
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(go.Bar(x=labels, y=deciles["skip_rate"], name="skip rate", marker_color="#457b9d"), secondary_y=False)
    figure.add_trace(
        go.Scatter(x=labels, y=deciles["mean_gate"], name="mean g", mode="lines+markers", line_color="#e76f51"),
        secondary_y=True,
    )
    figure.update_xaxes(title_text=f"{score_name} decile and range")
    figure.update_yaxes(title_text="skip rate", range=[0, 1], secondary_y=False)
    figure.update_yaxes(title_text="mean g", range=[0, 1], secondary_y=True)
    figure.update_layout(height=380, margin={"t": 30, "b": 40}, legend={"orientation": "h", "y": -0.3})
    return figure


def in_out_histograms(histograms: dict, out_name: str) -> go.Figure:
    """Overlay the gate-value distributions of in-distribution and OOD images, each as a fraction of its images."""
    edges = np.asarray(histograms["edges"])
    centres = (edges[:-1] + edges[1:]) / 2
    width = float(edges[1] - edges[0])
    figure = go.Figure()
    for key, name, colour in (("in", "in-distribution test images", "#457b9d"), ("out", out_name, "#e76f51")):
        counts = np.asarray(histograms[key], dtype=float)
        fractions = counts / counts.sum() if counts.sum() else counts
        figure.add_trace(go.Bar(x=centres, y=fractions, width=width, name=name, marker_color=colour, opacity=0.6))
    figure.update_layout(
        barmode="overlay",
        bargap=0,
        xaxis_title="gate value g",
        yaxis_title="fraction of images",
        xaxis_range=[0, 1],
        height=360,
        margin={"t": 30, "b": 40},
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def hard_skip_curve(points: pd.DataFrame, baseline: dict | None, full_macs: float) -> go.Figure:
    """Plot accuracy against MACs per image over the skip thresholds, beside the full gated network and the baseline."""
    millions = points["macs_per_image"] / 1e6
    figure = go.Figure(
        go.Scatter(
            x=millions,
            y=points["accuracy"],
            mode="lines+markers+text",
            text=[f"τ={value:g}" for value in points["threshold"]],
            textposition="top center",
            customdata=np.stack([points["skipped_fraction"], points["seconds_per_image"] * 1e3], axis=1),
            hovertemplate="%{text}: accuracy %{y:.4f}, %{x:.2f} M MACs<br>skipped %{customdata[0]:.3f}, "
            "%{customdata[1]:.3f} ms per image<extra></extra>",
            name="hard skip at τ",
        )
    )
    figure.add_vline(x=full_macs / 1e6, line_dash="dot", line_color="grey", annotation_text="no image skips")
    if baseline is not None:
        figure.add_trace(
            go.Scatter(
                x=[baseline["macs_per_image"] / 1e6],
                y=[baseline["test_accuracy"]],
                mode="markers+text",
                marker={"symbol": "star", "size": 16, "color": "#e76f51"},
                text=[f"ungated baseline (run {baseline['run_id']})"],
                textposition="bottom center",
                name="ungated baseline",
            )
        )
    figure.update_layout(
        xaxis_title="multiply-accumulates per image (millions)",
        yaxis_title="test accuracy",
        height=420,
        margin={"t": 30, "b": 40},
        legend={"orientation": "h", "y": -0.25},
    )
    return figure
