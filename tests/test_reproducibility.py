"""Same input, settings and seed: the same model and forecasts, bit for bit, from any fresh process.

What may differ between two runs of a user's machine is exercised here: the data dir's path, the working
directory and PYTHONHASHSEED (set iteration order), besides whatever Prefect's background threads do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.registry import load_champion
from tests.conftest import FORECAST_VALUES, REFERENCE_ARGS, published, run_cli


def test_two_fresh_processes_train_identical_models_and_publish_identical_forecasts(
        prefect_server, reference_inbox, reference_run, tmp_path):
    elsewhere = tmp_path / "another place" / "deeper"  # another path, with a space, another depth
    elsewhere.mkdir(parents=True)
    data_dir = elsewhere / "store"
    done = run_cli(prefect_server, "run", "--input", str(reference_inbox), "--data-dir", str(data_dir),
                   *REFERENCE_ARGS, cwd=elsewhere, hash_seed="4242")  # the reference ran with seed 0
    assert done.returncode == 0, done.stderr[-3000:]

    ours, theirs = published(data_dir)[0], published(reference_run)[0]
    pd.testing.assert_frame_equal(ours[FORECAST_VALUES], theirs[FORECAST_VALUES])  # exactly, not approximately
    assert (ours["model_version"] != "seasonal-naive").all()  # a trained model published them

    mine, reference = load_champion(data_dir / "models"), load_champion(reference_run / "models")
    for a, b in zip(mine.model.get_weights(), reference.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    for fact in ("val_loss", "epochs_run", "best_epoch", "holdout", "interval", "training_fingerprint"):
        assert mine.metadata[fact] == reference.metadata[fact], fact
