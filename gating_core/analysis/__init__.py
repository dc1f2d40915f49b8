"""Per-sample analyses of finished runs, in numpy, scipy and torch only.

- `ood`: AUROC and FPR at 95% TPR of the gate, MSP and energy detectors.
- `difficulty`: Spearman correlations and skip rates by score decile.
- `distributions`: gate histograms, skip rate per class, mean gate per unit and class.
- `seeds`: the results table over seeds per gate-loss weight.
- `compare`: images whose skip decision differs between two runs.
- `hard_skip`: accuracy, compute and wall time when skipped images really skip the stage.
"""
